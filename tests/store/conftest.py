"""Backends for the store conformance suite: a SQLite file and a real PostgreSQL server.

The PostgreSQL server is started once per session and every test gets a database of its own.
Where PostgreSQL cannot run, its tests are skipped with the reason, or fail when
``MODELYARD_REQUIRE_BACKENDS=1`` (CI sets it so that a missing backend cannot pass silently).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from modelyard.store import MetadataStore, open_store
from tests.support.postgres import PostgresServer

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A URL for an empty store on each backend (the SQLite folder does not exist yet)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'home' / 'modelyard.db'}"
    server: PostgresServer = request.getfixturevalue("postgres_server")
    return server.create_database(f"store_{uuid.uuid4().hex[:16]}")


@pytest.fixture
def store(store_url: str) -> Iterator[MetadataStore]:
    """An opened, migrated, empty store; closed after the test."""
    opened = open_store(store_url)
    try:
        yield opened
    finally:
        opened.close()
