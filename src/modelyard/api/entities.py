"""Records of SageMaker's newer resource kinds (experiments, lineage entities), written once.

Newer kinds answer differently from the legacy ones in :mod:`modelyard.serving.service`: a
missing one is ``ResourceNotFound``, a duplicate one ``ValidationException: ... already exists``
(the SageMaker SDK's ``_load_or_create`` helpers create first and match exactly that phrase).

A record's ``spec`` is the create request as sent; ``state`` is the resource as it is now (the
create request's mutable members, then every Update* applied), so Describe answers
``{**spec, **state}`` plus ARN and times. Names are unique ignoring case, as their ARNs are
(the ARN lower-cases the name), and lookups by name ignore case too: ``sagemaker-metrics``
addresses trial components by their lower-cased names.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from modelyard.api import pagination
from modelyard.core.arns import make_arn, name_from_arn
from modelyard.core.errors import ResourceNotFound, StaleRecord, ValidationError
from modelyard.core.settings import Settings
from modelyard.store.base import DuplicateRecord, MetadataStore, Query, Record

Handler = Callable[[dict[str, Any]], dict[str, Any]]

_SCAN_CHUNK = 200
_SORT = {"Name": "name", "CreationTime": "created"}


class Kind:
    """The records of one resource kind: their ARNs, and storing a new one with its tags.

    :class:`Entities` (newer kinds) and :class:`modelyard.serving.service.Catalog` (legacy
    definitions) build on it; they differ in the errors SageMaker answers with.
    """

    def __init__(self, settings: Settings, store: MetadataStore, kind: str, arn_type: str,
                 noun: str) -> None:
        self.settings = settings
        self.store = store
        self.kind = kind
        self.arn_type = arn_type
        self.noun = noun  # as messages name it: "Experiment", "model", "endpoint configuration"

    def arn(self, name: str) -> str:
        """The ARN a record of this kind named ``name`` has."""
        return make_arn(self.settings.region, self.settings.account_id, self.arn_type, name)

    def store_new(self, record: Record, tags: list[dict[str, str]] | None, duplicate: str) -> Record:
        """Create ``record`` and tag it; ValidationException ``duplicate`` if the name is taken."""
        try:
            created = self.store.create(record)
        except DuplicateRecord as e:
            raise ValidationError(duplicate) from e
        if tags:
            self.store.set_tags(created.arn, {t["Key"]: t["Value"] for t in tags})
        return created


class Entities(Kind):
    """Create, find, change and delete records of one newer kind::

        experiments = Entities(settings, store, "Experiment", "experiment", "Experiment")
        experiments.get("My-Exp").arn   # also "my-exp" or the ARN
        # 'arn:aws:sagemaker:us-east-1:000000000000:experiment/my-exp'
    """

    def create(self, name: str, spec: Mapping[str, Any], state: Mapping[str, Any], *,
               status: str = "Created", tags: list[dict[str, str]] | None = None,
               now: float | None = None) -> Record:
        """Store a new record; ValidationException ``... already exists`` if the name is taken."""
        now = time.time() if now is None else now
        record = Record(
            kind=self.kind, name=name, arn=self.arn(name), status=status, created=now,
            modified=now, version=1, spec=dict(spec),
            state={**state, "LastModifiedTime": now},
        )
        return self.store_new(record, tags, f"{self.noun} {name} already exists.")

    def find(self, name_or_arn: str) -> Record | None:
        """The record named (or with the ARN) ``name_or_arn``, ignoring case; None if none."""
        arn = self.arn(name_from_arn(name_or_arn))
        return self.store.by_arn([arn]).get(arn)

    def get(self, name_or_arn: str) -> Record:
        """Like :meth:`find`, but ResourceNotFound when there is none."""
        record = self.find(name_or_arn)
        if record is None:
            raise ResourceNotFound(self.noun, name_from_arn(name_or_arn))
        return record

    def change(self, record: Record, fn: Callable[[dict[str, Any]], dict[str, Any] | None],
               status: Callable[[dict[str, Any]], str] | None = None) -> Record:
        """Apply ``fn`` to the latest state until the compare-and-swap wins; stamps
        LastModifiedTime. ``fn`` may run more than once, so it must have no side effects; it
        returns None to change nothing. ``status`` derives the status column from the new
        state (default: the column keeps its value)."""
        while True:
            current = self.store.get(self.kind, record.name)
            new = fn(dict(current.state))
            if new is None:
                return current
            now = time.time()
            new["LastModifiedTime"] = now
            try:
                return self.store.update(
                    self.kind, current.name, current.version, state=new, modified=now,
                    status=status(new) if status is not None else None,
                )
            except StaleRecord:
                continue

    def delete(self, record: Record) -> None:
        """Remove a record with its tags, metric points and links."""
        self.store.delete(self.kind, record.name)


def describe(record: Record) -> dict[str, Any]:
    """``{**spec, **state}`` without private members (``_name``) and without Tags."""
    out = {**record.spec, **record.state}
    out.pop("Tags", None)
    return {k: v for k, v in out.items() if not k.startswith("_")}


def scan(store: MetadataStore, query: Query, chunk: int = _SCAN_CHUNK) -> Iterator[Record]:
    """Every record ``query`` selects, read ``chunk`` at a time (memory stays bounded)."""
    offset = query.offset
    while True:
        page = store.list(dataclasses.replace(query, offset=offset, limit=chunk))
        yield from page
        if len(page) < chunk:
            return
        offset += chunk


def list_query(kind: str, params: Mapping[str, Any], *, default_order: str = "Descending",
               created_keys: tuple[str, str] = ("CreatedAfter", "CreatedBefore")) -> Query:
    """The store query for a List* request of the newer kinds: time bounds and order."""
    after, before = created_keys
    return Query(
        kind=kind,
        created_after=params.get(after),
        created_before=params.get(before),
        sort_by=_SORT.get(params.get("SortBy", "CreationTime"), "created"),
        descending=params.get("SortOrder", default_order) == "Descending",
    )


def filtered_page(
    store: MetadataStore, query: Query, params: Mapping[str, Any],
    keep: Callable[[Record], bool] | None = None,
) -> tuple[list[Record], str | None]:
    """One page of the records ``query`` selects that ``keep`` accepts, and its NextToken.

    Without ``keep`` the store windows the page itself; with it, records are scanned in order
    until the page is full, so only the filter's work grows with the table, not memory.
    """
    offset, limit = pagination.page_window(params)
    if keep is None:
        records = store.list(dataclasses.replace(query, offset=offset, limit=limit + 1))
    else:
        matching = (r for r in scan(store, query) if keep(r))
        records = list(itertools.islice(matching, offset, offset + limit + 1))
    token = None
    if len(records) > limit:
        records = records[:limit]
        token = pagination.next_token(params, offset + limit)
    return records, token


def records_page(
    records: list[Record], params: Mapping[str, Any]
) -> tuple[list[Record], str | None]:
    """One page of an already selected, ordered list of records, and its NextToken."""
    offset, limit = pagination.page_window(params)
    page = records[offset : offset + limit]
    token = pagination.next_token(params, offset + limit) if offset + limit < len(records) else None
    return page, token


def order_records(records: list[Record], query: Query) -> list[Record]:
    """``records`` filtered by ``query``'s time bounds and sorted as the store would sort them."""
    kept = [
        r for r in records
        if (query.created_after is None or r.created > query.created_after)
        and (query.created_before is None or r.created < query.created_before)
    ]
    if query.sort_by == "name":
        kept.sort(key=lambda r: r.name, reverse=query.descending)
    else:
        kept.sort(key=lambda r: (r.created, r.name), reverse=query.descending)
    return kept
