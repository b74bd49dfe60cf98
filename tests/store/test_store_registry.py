"""open_store's URL registry, the package surface, and how backend failures are reported."""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

import pytest
import sqlalchemy as sa

import modelyard.store
from modelyard.core.errors import MissingExtra, StoreError, ValidationError
from modelyard.store import Query, Record, SqlMetadataStore, open_store, supported_schemes
from modelyard.store.sql import create_store_engine


def test_public_surface_is_pinned() -> None:
    assert sorted(modelyard.store.__all__) == [
        "DuplicateRecord",
        "Link",
        "MetadataStore",
        "MetricPoint",
        "Query",
        "Record",
        "RecordNotFound",
        "SqlMetadataStore",
        "open_store",
        "supported_schemes",
    ]
    for name in modelyard.store.__all__:
        assert getattr(modelyard.store, name) is not None


def test_supported_schemes() -> None:
    assert supported_schemes() == ["postgres", "postgresql", "sqlite"]


@pytest.mark.parametrize("url", ["mysql://u:s3cret@db/x", "not a url", "/tmp/x.db"])
def test_unknown_scheme_names_the_supported_ones_and_hides_passwords(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        open_store(url)
    message = str(caught.value)
    assert "supported schemes: postgres, postgresql, sqlite" in message
    assert "s3cret" not in message


@pytest.mark.parametrize(
    "url", ["postgresql+psycopg2://u@127.0.0.1/db", "sqlite+aiosqlite:///x.db"]
)
def test_other_drivers_are_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="not (psycopg2|aiosqlite)"):
        open_store(url)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@127.0.0.1:5432/db",
        "postgres://u@127.0.0.1:5432/db",
        "postgresql+psycopg://u@127.0.0.1:5432/db",
    ],
)
def test_postgresql_urls_get_the_psycopg_driver(url: str) -> None:
    engine = create_store_engine(url)  # lazy: nothing connects
    try:
        assert engine.url.drivername == "postgresql+psycopg"
        assert (engine.url.host, engine.url.port, engine.url.database) == ("127.0.0.1", 5432, "db")
    finally:
        engine.dispose()


def test_missing_psycopg_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # makes "import psycopg" fail
    with pytest.raises(MissingExtra) as caught:
        open_store("postgresql://u@127.0.0.1:5432/db")
    assert (caught.value.module, caught.value.extra) == ("psycopg", "postgresql")
    assert "pip install 'modelyard[postgresql]'" in str(caught.value)


def test_sqlite_file_gets_its_folder_wal_and_foreign_keys(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "modelyard.db"
    store = open_store(f"sqlite:///{path}")
    try:
        assert path.is_file()
        assert isinstance(store, SqlMetadataStore)
        with store.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
    finally:
        store.close()


def test_in_memory_sqlite_is_shared_by_threads() -> None:
    store = open_store("sqlite://")
    try:
        def create(i: int) -> None:
            store.create(
                Record("Model", f"m{i}", f"arn:m{i}", "InService", float(i), float(i), 0, {}, {})
            )

        threads = [threading.Thread(target=create, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert store.count(Query(kind="Model")) == 8
        assert [r.name for r in store.list(Query(kind="Model"))] == [f"m{i}" for i in range(8)]
    finally:
        store.close()


def test_unreachable_postgresql_raises_store_error_chained() -> None:
    with socket.socket() as sock:  # a port that was free a moment ago: nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(StoreError) as caught:
        open_store(f"postgresql://u:pw@127.0.0.1:{port}/db")
    assert isinstance(caught.value.__cause__, sa.exc.OperationalError)
    assert caught.value.code == "InternalFailure"


def test_unopenable_sqlite_file_raises_store_error_chained(tmp_path: Path) -> None:
    (tmp_path / "is-a-folder.db").mkdir()
    with pytest.raises(StoreError) as caught:
        open_store(f"sqlite:///{tmp_path / 'is-a-folder.db'}")
    assert isinstance(caught.value.__cause__, sa.exc.OperationalError)


def test_unparseable_url_raises_validation_error() -> None:
    with pytest.raises(ValidationError, match="Cannot parse"):
        open_store("postgresql://u@host:notaport/db")


def test_database_from_a_newer_version_raises_store_error(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'modelyard.db'}"
    store = open_store(url)
    assert isinstance(store, SqlMetadataStore)
    with store.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    store.close()
    with pytest.raises(StoreError, match="newer modelyard") as caught:
        open_store(url)
    assert "9999" in str(caught.value)
