"""Backends for the store conformance suite: a SQLite file and a real PostgreSQL server.

The PostgreSQL server is started once per session and every test gets a database of its own.
Where PostgreSQL cannot run, its tests are skipped with the reason, or fail when
``MODELYARD_REQUIRE_BACKENDS=1`` (CI sets it so that a missing backend cannot pass silently).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import pytest

from modelyard.store import MetadataStore, open_store
from tests.support.postgres import PostgresServer, PostgresUnavailable, start_postgres

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgresql)]


def _unavailable(reason: str) -> NoReturn:
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
        _unavailable("psycopg is not installed (pip install 'modelyard[postgresql]')")
    try:
        server = start_postgres()
    except PostgresUnavailable as e:
        _unavailable(str(e))
    try:
        yield server
    finally:
        server.stop()


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
