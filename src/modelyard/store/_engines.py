"""Engines for the SQL store: connection setup per dialect, migrations, error translation.

SQLite gets WAL mode, a busy timeout, foreign keys and explicit ``BEGIN [IMMEDIATE]`` (see
:mod:`modelyard.store.sql` for why); PostgreSQL goes through psycopg 3. Migrations run with
Alembic inside one transaction that holds the migration lock.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.util import CommandError
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.pool import StaticPool

from modelyard.core.errors import MissingExtra, StoreError, ValidationError

MIGRATIONS_DIR = Path(__file__).with_name("migrations")

# Key of the PostgreSQL advisory lock held while migrating: the bytes b"mdlyard\x01" as a
# big-endian signed 64-bit integer, unlikely to collide with another application's lock.
_PG_MIGRATION_LOCK = int.from_bytes(b"mdlyard\x01", "big")

# Execution option that marks a connection as about to write (SQLite: BEGIN IMMEDIATE).
WRITE_OPTION = "modelyard_write"


# --- engines -----------------------------------------------------------------------------------
def create_store_engine(url: str, *, busy_timeout_s: float = 30.0) -> Engine:
    """An engine for a ``sqlite://`` or ``postgresql://`` URL, configured as the store needs.

    SQLite: the file's folder is created; ``sqlite://`` (or ``:memory:``) is a private in-memory
    database. PostgreSQL: ``postgresql://`` and ``postgres://`` get the psycopg 3 driver.
    """
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError) as e:  # ValueError: e.g. a non-numeric port
        raise ValidationError(f"Cannot parse the metadata store URL: {e}") from e
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "sqlite":
        if driver not in ("", "pysqlite"):
            raise ValidationError(f"SQLite URLs use the built-in driver (sqlite://), not {driver}.")
        return _sqlite_engine(parsed, busy_timeout_s)
    if backend in ("postgresql", "postgres"):
        if driver not in ("", "psycopg"):
            raise ValidationError(f"PostgreSQL URLs use psycopg (postgresql://), not {driver}.")
        return _postgresql_engine(parsed)
    raise ValidationError(f"The SQL store serves sqlite:// and postgresql:// URLs, not {url!r}.")


def _postgresql_engine(url: URL) -> Engine:
    """A pooled psycopg 3 engine; a missing psycopg is reported as a missing extra."""
    try:
        import psycopg  # noqa: F401  (imported only to name the missing extra)
    except ImportError as e:
        raise MissingExtra("psycopg", "postgresql") from e
    return sa.create_engine(
        url.set(drivername="postgresql+psycopg"),
        json_serializer=dump_json,
        # A server restart or an idle timeout leaves dead connections in the pool.
        pool_pre_ping=True,
    )


def _sqlite_engine(url: URL, busy_timeout_s: float) -> Engine:
    """An engine whose connections use WAL, foreign keys, a busy timeout and our BEGIN."""
    memory = url.database in (None, "", ":memory:")
    options: dict[str, Any] = {
        "connect_args": {"check_same_thread": False},
        "json_serializer": dump_json,
    }
    if memory:
        # One shared connection: every new connection to :memory: would be a new, empty database.
        options["poolclass"] = StaticPool
    elif url.database and not url.database.startswith("file:"):
        Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, **options)
    busy_ms = int(busy_timeout_s * 1000)

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the driver; the "begin" listener emits BEGIN.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not memory:
                # Readers do not block the writer and vice versa; persistent in the file.
                # Switching a new file to WAL needs a moment alone with it, and SQLite may
                # answer "locked" at once instead of waiting (processes starting together).
                retry_locked(lambda: cursor.execute("PRAGMA journal_mode = WAL"), busy_timeout_s)
        finally:
            cursor.close()

    def on_begin(conn: Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    sa.event.listen(engine, "connect", on_connect)
    sa.event.listen(engine, "begin", on_begin)
    return engine


def retry_locked(action: Callable[[], Any], timeout_s: float) -> Any:
    """Run ``action``, again after a short pause while SQLite says the database is locked."""
    deadline = time.monotonic() + timeout_s
    delay = 0.01
    while True:
        try:
            return action()
        except (sqlite3.OperationalError, sa_exc.OperationalError, StoreError) as e:
            locked = "database is locked" in str(e) or "database is locked" in str(e.__cause__)
            if not locked or time.monotonic() > deadline:
                raise
        time.sleep(delay)
        delay = min(delay * 2, 0.5)


def upgrade_to_head(engine: Engine) -> None:
    """Migrate the database to the newest revision; a no-op when it is already there.

    Safe when several processes call it at once: the whole upgrade runs in one transaction that
    first takes the migration lock, so a second process waits and then finds nothing to do.
    """
    config = AlembicConfig()
    # configparser interpolates "%"; a folder name containing one must be escaped.
    config.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    retry_locked(lambda: _upgrade(engine, config), 30.0)


def _upgrade(engine: Engine, config: AlembicConfig) -> None:
    with translated(), engine.connect() as conn:
        conn.execution_options(**{WRITE_OPTION: True})
        with conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            config.attributes["connection"] = conn
            try:
                command.upgrade(config, "head")
            except CommandError as e:
                # Typically a database migrated by a newer modelyard than this one.
                raise StoreError(
                    f"Cannot migrate the metadata store schema ({e}); is this database from a "
                    "newer modelyard version?"
                ) from e


@contextlib.contextmanager
def translated(on_integrity: Callable[[], StoreError] | None = None) -> Iterator[None]:
    """Translate SQLAlchemy errors into StoreError (or ``on_integrity()``), chained."""
    try:
        yield
    except sa_exc.IntegrityError as e:
        if on_integrity is not None:
            raise on_integrity() from e
        raise StoreError(f"Metadata store constraint violated: {_describe(e)}") from e
    except sa_exc.SQLAlchemyError as e:
        raise StoreError(f"Metadata store failed: {_describe(e)}") from e


def _describe(error: sa_exc.SQLAlchemyError) -> str:
    """The driver's own first line, without the SQL text and parameters SQLAlchemy appends."""
    cause = getattr(error, "orig", None) or error
    first_line = str(cause).strip().splitlines()[0] if str(cause).strip() else ""
    return f"{type(cause).__name__}: {first_line}"


def dump_json(value: Any) -> str:
    """JSON for spec/state columns; mappings (e.g. another record's state) become objects.

    NaN and infinities are refused on every backend because PostgreSQL's JSON type refuses them.
    """
    return json.dumps(value, allow_nan=False, default=_jsonable, separators=(",", ":"))


def _jsonable(value: Any) -> Any:
    """``json.dumps`` fallback: read-only mappings become dicts; anything else is an error."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")
