"""Read-modify-write of a record's state, retried until the compare-and-swap wins."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from modelyard.core.errors import StaleRecord
from modelyard.store.base import MetadataStore, Record

Mutation = Callable[[dict[str, Any]], dict[str, Any] | None]


def mutate(store: MetadataStore, kind: str, name: str, fn: Mutation, status_key: str = "Status") -> Record:
    """Apply ``fn`` to the latest state of ``(kind, name)`` and store what it returns.

    ``fn`` may run several times (once per lost race), so it must not have side effects; it
    returns None to leave the record as it is. The record's status column is taken from
    ``new[status_key]``. Raises RecordNotFound if the record is gone.
    """
    while True:
        record = store.get(kind, name)
        new = fn(dict(record.state))
        if new is None:
            return record
        try:
            return store.update(
                kind, name, record.version, status=new[status_key], state=new,
                modified=new.get("LastModifiedTime", time.time()),
            )
        except StaleRecord:
            continue
