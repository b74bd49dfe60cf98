"""Fixtures of the runtime tests (helpers are in host_helpers.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from host_helpers import Job, job_factory


@pytest.fixture
def make_job(tmp_path: Path) -> Callable[..., Job]:
    """Build a job whose "S3" is local folders under tmp_path; fields override the plan."""
    return job_factory(tmp_path)
