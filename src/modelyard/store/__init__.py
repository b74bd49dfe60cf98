"""The metadata store: resource records, tags, metric points and links behind one interface.

:func:`open_store` picks a backend from the URL's scheme and imports it only then, so importing
this package costs nothing beyond the interface::

    store = open_store("sqlite:////home/me/.modelyard/modelyard.db")
    store = open_store("postgresql://modelyard@db.internal/modelyard")

| scheme                       | backend                                | extra          |
| ---------------------------- | -------------------------------------- | -------------- |
| ``sqlite``                   | ``SqlMetadataStore`` on a WAL file     | none           |
| ``postgresql``, ``postgres`` | ``SqlMetadataStore`` through psycopg 3 | ``postgresql`` |
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import ValidationError
from modelyard.store.base import (
    DuplicateRecord,
    Link,
    MetadataStore,
    MetricPoint,
    Query,
    Record,
    RecordNotFound,
)

if TYPE_CHECKING:
    from modelyard.store.sql import SqlMetadataStore

__all__ = [
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

# URL scheme (before any "+driver") -> "module:class" taking the URL as its only argument.
_BACKENDS: dict[str, str] = {
    "sqlite": "modelyard.store.sql:SqlMetadataStore",
    "postgresql": "modelyard.store.sql:SqlMetadataStore",
    "postgres": "modelyard.store.sql:SqlMetadataStore",
}


def supported_schemes() -> list[str]:
    """The URL schemes :func:`open_store` accepts, sorted."""
    return sorted(_BACKENDS)


def open_store(url: str) -> MetadataStore:
    """Open the metadata store at ``url``, migrating its schema to the newest revision.

    Raises :class:`~modelyard.core.errors.ValidationError` for an unknown scheme and
    :class:`~modelyard.core.errors.MissingExtra` when the backend's driver is not installed.

    >>> store = open_store("sqlite://")  # in memory
    >>> store.count(Query(kind="TrainingJob"))
    0
    """
    scheme = url.partition(":")[0].partition("+")[0].lower() if ":" in url else ""
    target = _BACKENDS.get(scheme)
    if target is None:
        raise ValidationError(
            f"Unsupported metadata store URL {_redact(url)!r}; "
            f"supported schemes: {', '.join(supported_schemes())}."
        )
    module_name, _, class_name = target.partition(":")
    backend = getattr(importlib.import_module(module_name), class_name)
    store: MetadataStore = backend(url)
    return store


def _redact(url: str) -> str:
    """``url`` without a password, for error messages."""
    scheme, sep, rest = url.partition("://")
    if sep and "@" in rest:
        return f"{scheme}://****@{rest.split('@', 1)[1]}"
    return url


def __getattr__(name: str) -> Any:
    # SqlMetadataStore pulls in SQLAlchemy and Alembic; load it on first use only.
    if name == "SqlMetadataStore":
        from modelyard.store.sql import SqlMetadataStore

        return SqlMetadataStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
