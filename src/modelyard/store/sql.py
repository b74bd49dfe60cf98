"""The SQL metadata store: one implementation for SQLite and PostgreSQL, over SQLAlchemy Core.

Concurrency rests on the database, never on process-local locks:

- ``update`` is a compare-and-swap, ``UPDATE ... WHERE kind, name, version``. PostgreSQL (read
  committed) re-checks the ``WHERE`` after a competing writer commits; SQLite takes the write
  lock up front (``BEGIN IMMEDIATE``), so in both a stale version matches no row.
- Deleting a resource deletes its tags, metric points and links through ``ON DELETE CASCADE``
  foreign keys (enabled per connection on SQLite), so a resource re-created under the same name
  never inherits the tags, metrics or links of the one deleted before it.
- Opening a store migrates the database to the newest revision inside one transaction that holds
  the migration lock (a PostgreSQL advisory lock; SQLite's write lock), so processes that start
  at once apply each revision exactly once.

Python's ``sqlite3`` driver (before 3.12) does not BEGIN before SELECT or DDL statements, which
would let two processes both see an unmigrated file and both run CREATE TABLE. The store turns
the driver's own transaction handling off and emits BEGIN itself (SQLAlchemy's documented recipe),
choosing ``BEGIN IMMEDIATE`` for writes so that a read-then-write transaction never has to upgrade
its lock (which fails at once in WAL mode instead of waiting for ``busy_timeout``).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg_dialect
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import StaticPool

from modelyard.core.errors import StaleRecord, StoreError, ValidationError
from modelyard.store._engines import (
    WRITE_OPTION,
    create_store_engine,
    dump_json,
    translated,
    upgrade_to_head,
)
from modelyard.store.base import (
    DuplicateRecord,
    Link,
    MetadataStore,
    MetricPoint,
    Query,
    Record,
    RecordNotFound,
)
from modelyard.store.schema import links as link_table
from modelyard.store.schema import metric_points, resources
from modelyard.store.schema import tags as tag_table

__all__ = ["SqlMetadataStore", "create_store_engine", "upgrade_to_head"]

_SORT_COLUMNS: Mapping[str, sa.ColumnElement[Any]] = {
    "name": resources.c.name,
    "created": resources.c.created,
    "modified": resources.c.modified,
    "status": resources.c.status,
}


# --- the store ---------------------------------------------------------------------------------
class SqlMetadataStore(MetadataStore):
    """A :class:`MetadataStore` in a SQLite file or a PostgreSQL database.

    ``url`` is a ``sqlite:///path`` or ``postgresql://user@host/db`` URL (see
    :func:`create_store_engine`). The database is migrated to the newest schema first unless
    ``migrate`` is false. :func:`modelyard.store.open_store` is the usual way in.

    >>> store = SqlMetadataStore("sqlite://")
    >>> store.count(Query(kind="Model"))
    0
    """

    def __init__(self, url: str, *, busy_timeout_s: float = 30.0, migrate: bool = True) -> None:
        engine = create_store_engine(url, busy_timeout_s=busy_timeout_s)
        self._engine = engine
        self._dialect = engine.dialect.name
        self._insert = sqlite_dialect.insert if self._dialect == "sqlite" else pg_dialect.insert
        # An in-memory SQLite database is one shared connection: transactions must not interleave.
        shared = isinstance(engine.pool, StaticPool)
        self._serial: contextlib.AbstractContextManager[Any] = (
            threading.RLock() if shared else contextlib.nullcontext()
        )
        if migrate:
            try:
                upgrade_to_head(engine)
            except BaseException:
                engine.dispose()  # a store that failed to open must not keep connections
                raise

    @property
    def engine(self) -> Engine:
        """The underlying engine (for tests and diagnostics; not part of the store contract)."""
        return self._engine

    @contextlib.contextmanager
    def _transaction(
        self, *, write: bool, on_integrity: Callable[[], StoreError] | None = None
    ) -> Iterator[Connection]:
        """One transaction, committed on success; library errors become StoreError."""
        with self._serial, translated(on_integrity), self._engine.connect() as conn:
            if write:
                conn.execution_options(**{WRITE_OPTION: True})
            with conn.begin():
                yield conn

    # --- records ---------------------------------------------------------------------------
    def create(self, record: Record) -> Record:
        """Insert a new record with version 1. Raises DuplicateRecord."""
        row = {
            "kind": record.kind,
            "name": record.name,
            "name_lower": record.name.lower(),
            "arn": record.arn,
            "status": record.status,
            "created": record.created,
            "modified": record.modified,
            "version": 1,
            "spec": _json_document(record.spec, "spec"),
            "state": _json_document(record.state, "state"),
        }
        duplicate = lambda: DuplicateRecord(record.kind, record.name)  # noqa: E731
        with self._transaction(write=True, on_integrity=duplicate) as conn:
            stored = conn.execute(resources.insert().values(row).returning(*resources.c)).one()
        return _to_record(stored)

    def get(self, kind: str, name: str) -> Record:
        """Read one record. Raises RecordNotFound."""
        with self._transaction(write=False) as conn:
            row = conn.execute(sa.select(resources).where(*_key(kind, name))).one_or_none()
        if row is None:
            raise RecordNotFound(kind, name)
        return _to_record(row)

    def update(
        self,
        kind: str,
        name: str,
        version: int,
        *,
        status: str | None = None,
        state: Mapping[str, Any] | None = None,
        modified: float | None = None,
    ) -> Record:
        """Compare-and-swap on ``version``. Raises StaleRecord or RecordNotFound."""
        values: dict[str, Any] = {
            "version": resources.c.version + 1,
            "modified": time.time() if modified is None else modified,
        }
        if status is not None:
            values["status"] = status
        if state is not None:
            values["state"] = _json_document(state, "state")
        statement = (
            resources.update()
            .where(*_key(kind, name), resources.c.version == version)
            .values(values)
            .returning(*resources.c)
        )
        with self._transaction(write=True) as conn:
            row = conn.execute(statement).one_or_none()
            if row is None:
                exists = conn.execute(sa.select(resources.c.version).where(*_key(kind, name)))
                if exists.first() is None:
                    raise RecordNotFound(kind, name)
                raise StaleRecord(kind, name)
        return _to_record(row)

    def delete(self, kind: str, name: str) -> None:
        """Remove a record; its tags and metric points go with it. Raises RecordNotFound."""
        with self._transaction(write=True) as conn:
            if conn.execute(resources.delete().where(*_key(kind, name))).rowcount == 0:
                raise RecordNotFound(kind, name)

    def list(self, query: Query) -> builtins.list[Record]:
        """Records passing ``query``'s filters, sorted (ties broken by name) and windowed."""
        order = _order_by(query)
        _check_window(query)
        statement = sa.select(resources).where(*_filters(query)).order_by(*order)
        if query.offset:
            statement = statement.offset(query.offset)
        if query.limit is not None:
            statement = statement.limit(query.limit)
        with self._transaction(write=False) as conn:
            return [_to_record(row) for row in conn.execute(statement)]

    def count(self, query: Query) -> int:
        """How many records pass ``query``'s filters."""
        statement = sa.select(sa.func.count()).select_from(resources).where(*_filters(query))
        with self._transaction(write=False) as conn:
            return int(conn.execute(statement).scalar_one())

    # --- tags ------------------------------------------------------------------------------
    def set_tags(self, arn: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags. Raises RecordNotFound when no record has ``arn``."""
        if not tags:
            return
        columns = tag_table.c
        statement = self._insert(tag_table)
        statement = statement.on_conflict_do_update(
            index_elements=[columns.arn, columns.key], set_={"value": statement.excluded.value}
        )
        rows = [{"arn": arn, "key": key, "value": value} for key, value in tags.items()]
        with self._transaction(write=True, on_integrity=_missing_arn(arn)) as conn:
            conn.execute(statement, rows)

    def remove_tags(self, arn: str, keys: Sequence[str]) -> None:
        """Remove tags by key; missing keys (and ARNs) are ignored."""
        if not keys:
            return
        columns = tag_table.c
        statement = tag_table.delete().where(
            columns.arn == arn, columns.key.in_(builtins.list(keys))
        )
        with self._transaction(write=True) as conn:
            conn.execute(statement)

    def get_tags(self, arn: str) -> dict[str, str]:
        """All tags of ``arn`` in key order; empty for an unknown ARN."""
        columns = tag_table.c
        statement = (
            sa.select(columns.key, columns.value).where(columns.arn == arn).order_by(columns.key)
        )
        with self._transaction(write=False) as conn:
            return {key: value for key, value in conn.execute(statement)}

    # --- metrics ---------------------------------------------------------------------------
    def add_metric_points(self, arn: str, points: Sequence[MetricPoint]) -> None:
        """Store points, ignoring any whose ``(name, seq)`` is stored already.

        Raises RecordNotFound when no record has ``arn``.
        """
        if not points:
            return
        statement = self._insert(metric_points).on_conflict_do_nothing(
            index_elements=[metric_points.c.arn, metric_points.c.name, metric_points.c.seq]
        )
        rows = [
            {"arn": arn, "name": p.name, "seq": p.seq, "value": p.value,
             "timestamp": p.timestamp, "step": p.step}
            for p in points
        ]
        with self._transaction(write=True, on_integrity=_missing_arn(arn)) as conn:
            conn.execute(statement, rows)

    def get_metric_points(self, arn: str, name: str | None = None) -> builtins.list[MetricPoint]:
        """Points of ``arn`` (optionally of one metric) ordered by ``seq``, then name."""
        columns = metric_points.c
        statement = sa.select(
            columns.name, columns.value, columns.timestamp, columns.seq, columns.step
        ).where(columns.arn == arn)
        if name is not None:
            statement = statement.where(columns.name == name)
        statement = statement.order_by(columns.seq, columns.name)
        with self._transaction(write=False) as conn:
            return [
                # SQLite stores NaN as NULL; give NaN back so both backends read the same.
                MetricPoint(name=n, value=math.nan if v is None else v, timestamp=t, seq=s,
                            step=step)
                for n, v, t, s, step in conn.execute(statement)
            ]

    # --- links -----------------------------------------------------------------------------
    def add_link(self, link: Link) -> bool:
        """Store a link unless it exists; RecordNotFound when an end has no record."""
        columns = link_table.c
        row = {
            "relation": link.relation, "source": link.source, "destination": link.destination,
            "created": link.created, "attributes": _json_document(link.attributes, "attributes"),
        }
        statement = (
            self._insert(link_table).values(row)
            .on_conflict_do_nothing(
                index_elements=[columns.relation, columns.source, columns.destination]
            )
            # rowcount after ON CONFLICT DO NOTHING differs between drivers; a returned row
            # does not: one comes back only when the link was inserted.
            .returning(columns.relation)
        )
        ends = f"{link.source} or {link.destination}"
        with self._transaction(write=True, on_integrity=_missing_arn(ends)) as conn:
            return conn.execute(statement).first() is not None

    def remove_link(self, relation: str, source: str, destination: str) -> bool:
        """Remove one link; whether it existed."""
        columns = link_table.c
        statement = link_table.delete().where(
            columns.relation == relation, columns.source == source,
            columns.destination == destination,
        )
        with self._transaction(write=True) as conn:
            return bool(conn.execute(statement).rowcount)

    def list_links(
        self,
        relation: str,
        *,
        sources: Sequence[str] | None = None,
        destinations: Sequence[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> builtins.list[Link]:
        """Links of ``relation`` by creation time (then source, destination), windowed.

        Pass at most a few hundred ARNs in ``sources``/``destinations`` per call (SQLite bounds
        the parameters of one statement).
        """
        columns = link_table.c
        statement = sa.select(link_table).where(columns.relation == relation)
        if sources is not None:
            statement = statement.where(columns.source.in_(builtins.list(sources)))
        if destinations is not None:
            statement = statement.where(columns.destination.in_(builtins.list(destinations)))
        statement = statement.order_by(columns.created, columns.source, columns.destination)
        if offset < 0 or (limit is not None and limit < 0):
            raise ValidationError("list_links offset and limit must not be negative.")
        if offset:
            statement = statement.offset(offset)
        if limit is not None:
            statement = statement.limit(limit)
        with self._transaction(write=False) as conn:
            return [
                Link(relation=r.relation, source=r.source, destination=r.destination,
                     created=r.created, attributes=MappingProxyType(r.attributes))
                for r in conn.execute(statement)
            ]

    def by_arn(self, arns: Sequence[str]) -> dict[str, Record]:
        """The records with these ARNs, by ARN (the ARN column is unique and indexed)."""
        wanted = builtins.list(dict.fromkeys(arns))
        if not wanted:
            return {}
        found: dict[str, Record] = {}
        # Bounded IN lists: SQLite caps bound parameters per statement.
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            statement = sa.select(resources).where(resources.c.arn.in_(chunk))
            with self._transaction(write=False) as conn:
                for row in conn.execute(statement):
                    found[row.arn] = _to_record(row)
        return found

    # --- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        """Close pooled connections; the store must not be used afterwards."""
        self._engine.dispose()


# --- helpers -----------------------------------------------------------------------------------
def _key(kind: str, name: str) -> tuple[sa.ColumnElement[bool], ...]:
    """The WHERE clause addressing one record."""
    return (resources.c.kind == kind, resources.c.name == name)


def _filters(query: Query) -> builtins.list[sa.ColumnElement[bool]]:
    """The WHERE clauses of ``query`` (bounds are exclusive)."""
    c = resources.c
    clauses = [c.kind == query.kind]
    if query.name_contains:
        # autoescape: a "%" or "_" in the user's text matches itself, not a wildcard.
        clauses.append(c.name_lower.contains(query.name_contains.lower(), autoescape=True))
    if query.status_in is not None:
        if isinstance(query.status_in, str):
            raise ValidationError("Query.status_in must be a sequence of statuses, not a string.")
        clauses.append(c.status.in_(builtins.list(query.status_in)))
    for column, after, before in (
        (c.created, query.created_after, query.created_before),
        (c.modified, query.modified_after, query.modified_before),
    ):
        if after is not None:
            clauses.append(column > after)
        if before is not None:
            clauses.append(column < before)
    return clauses


def _order_by(query: Query) -> builtins.list[sa.ColumnElement[Any]]:
    """Sort column plus a name tiebreak (names are unique per kind), same direction."""
    column = _SORT_COLUMNS.get(query.sort_by)
    if column is None:
        raise ValidationError(
            f"Cannot sort by {query.sort_by!r}; use one of {', '.join(sorted(_SORT_COLUMNS))}."
        )
    columns = [column] if query.sort_by == "name" else [column, resources.c.name]
    return [col.desc() if query.descending else col.asc() for col in columns]


def _check_window(query: Query) -> None:
    """Refuse page windows that SQL would reject or misread."""
    if query.offset < 0 or (query.limit is not None and query.limit < 0):
        raise ValidationError("Query.offset and Query.limit must not be negative.")


def _to_record(row: sa.Row[Any]) -> Record:
    """A frozen record from a row; spec and state were freshly parsed, so nothing is shared."""
    return Record(
        kind=row.kind,
        name=row.name,
        arn=row.arn,
        status=row.status,
        created=row.created,
        modified=row.modified,
        version=row.version,
        # Read-only views: a caller who mutates a record it read would otherwise believe it
        # changed the store. Nested values are private to this record.
        spec=MappingProxyType(row.spec),
        state=MappingProxyType(row.state),
    )


def _json_document(value: Mapping[str, Any], field: str) -> dict[str, Any]:
    """A plain deep copy of ``value`` as it will be stored; ValidationError if it is not JSON.

    Checked here, before any SQL, because drivers serialise at different moments (psycopg
    inside ``execute``, bypassing SQLAlchemy's error wrapping) and the caller's mistake must
    read the same on every backend.
    """
    try:
        document = json.loads(dump_json(value))
    except (TypeError, ValueError) as e:
        raise ValidationError(f"Record {field} must be JSON-serialisable: {e}") from e
    if not isinstance(document, dict):
        raise ValidationError(f"Record {field} must be a JSON object, not {type(value).__name__}.")
    return document


def _missing_arn(arn: str) -> Callable[[], StoreError]:
    """The error for a tag or metric write whose ARN has no record (a foreign-key violation)."""
    return lambda: RecordNotFound("resource", arn)
