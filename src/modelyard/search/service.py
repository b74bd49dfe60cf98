"""The SageMaker ``Search`` operation over every resource kind registered with it.

A capability makes its resource searchable by registering a :class:`Searchable`: the
``Resource`` name Search takes, the ``SearchRecord`` member its results go in, its store kind and
a function giving a record's document. The platform registers training jobs, experiments, trials
and trial components (:mod:`modelyard.search.resources`); another capability adds its own::

    search.register(Searchable("HyperParameterTuningJob", "HyperParameterTuningJob",
                               "HyperParameterTuningJob", tuning_document,
                               columns={"HyperParameterTuningJobName": "name"}))

Records are read from the store a chunk at a time and only the best ``offset + MaxResults``
matches are kept while sorting, so memory does not grow with the table. The filters that every
match must pass and that name a store column (``columns``: name, status, creation or
modification time) narrow the read itself. ``TotalHits`` counts every match exactly.
"""

from __future__ import annotations

import dataclasses
import functools
import heapq
import itertools
from collections.abc import Callable, Collection, Iterator, Mapping
from typing import Any

from modelyard.api import pagination
from modelyard.api.entities import scan
from modelyard.api.models import service_model
from modelyard.api.validation import parse_timestamp
from modelyard.core.errors import ValidationError
from modelyard.search import expression as ex
from modelyard.store.base import MetadataStore, Query, Record

Handler = Callable[[dict[str, Any]], dict[str, Any]]

#: pass as ``include`` to ask a document function for every member
EVERYTHING: Collection[str] = frozenset({"*"})
_NUDGE = 1e-6  # store time bounds are exclusive; inclusive filters widen them by this much


def wants(include: Collection[str], member: str) -> bool:
    """Whether a document function should compute a costly ``member`` (Tags, Metrics ...)."""
    return include is EVERYTHING or member in include


@dataclasses.dataclass(frozen=True)
class Searchable:
    """One resource kind Search can find.

    ``document(record, include)`` returns the record as its ``SearchRecord`` member shows it;
    ``include`` names the top-level members the search reads (or is :data:`EVERYTHING` for a
    result), so costly members may be left out when not named. ``columns`` maps property names
    to the store columns that hold the same value (``name``, ``status``, ``created``,
    ``modified``), so that filters on them narrow the read.
    """

    resource: str
    member: str
    kind: str
    document: Callable[[Record, Collection[str]], dict[str, Any]]
    columns: Mapping[str, str] = dataclasses.field(default_factory=dict)


class SearchService:
    """Search, over the registered :class:`Searchable` kinds."""

    def __init__(self, store: MetadataStore) -> None:
        self.store = store
        self.searchables: dict[str, Searchable] = {}

    def register(self, searchable: Searchable) -> None:
        """Make a resource kind searchable (a later registration replaces an earlier one)."""
        self.searchables[searchable.resource] = searchable

    def operations(self) -> dict[str, Handler]:
        return {"Search": self.search}

    def search(self, params: dict[str, Any]) -> dict[str, Any]:
        searchable = self.searchables.get(params["Resource"])
        if searchable is None:
            supported = ", ".join(sorted(self.searchables))
            raise ValidationError(
                f"Search over {params['Resource']} is not supported by modelyard; it searches "
                f"{supported}."
            )
        expression = params.get("SearchExpression")
        if expression is not None:
            ex.check(expression)
        if params.get("VisibilityConditions"):
            raise ValidationError("VisibilityConditions are not supported by modelyard.")
        sort_by = params.get("SortBy", "LastModifiedTime")
        descending = params.get("SortOrder", "Descending") == "Descending"
        offset, limit = pagination.page_window(params)
        include = ex.referenced(expression, sort_by)
        counter = itertools.count()
        hits = [0]

        def ranked() -> Iterator[tuple[tuple[Any, ...], Record]]:
            for record in scan(self.store, _narrowed(searchable, expression)):
                view = ex.searchable_view(searchable.document(record, include))
                if ex.matches(expression, view, searchable.member):
                    hits[0] += 1
                    value = ex.sort_value(view, sort_by, searchable.member)
                    yield _rank(value, descending, next(counter)), record

        best = heapq.nsmallest(offset + limit + 1, ranked(), key=lambda pair: pair[0])
        page = [record for _, record in best[offset : offset + limit]]
        out: dict[str, Any] = {
            "Results": [{searchable.member: _only_members(searchable.member,
                                                         searchable.document(r, EVERYTHING))}
                        for r in page],
            "TotalHits": {"Value": hits[0], "Relation": "EqualTo"},
        }
        if len(best) > offset + limit:
            out["NextToken"] = pagination.next_token(params, offset + limit)
        return out


@functools.cache
def _record_members(member: str) -> frozenset[str]:
    """The members botocore's model gives a ``SearchRecord`` member (e.g. ``TrainingJob``)."""
    record = service_model("sagemaker").shape_for("SearchRecord")
    shape = record.members[member]  # type: ignore[attr-defined]
    return frozenset(shape.members)


def _only_members(member: str, document: dict[str, Any]) -> dict[str, Any]:
    """A document without what its Search shape lacks (a Describe answer may have more, e.g.
    a training job's ``ProfilingStatus``)."""
    allowed = _record_members(member)
    return {k: v for k, v in document.items() if k in allowed}


class _Reversed:
    """Wraps a key so that larger sorts first."""

    __slots__ = ("key",)

    def __init__(self, key: Any) -> None:
        self.key = key

    def __lt__(self, other: _Reversed) -> bool:
        return bool(other.key < self.key)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Reversed) and self.key == other.key


def _rank(value: tuple[int, Any] | None, descending: bool, order: int) -> tuple[Any, ...]:
    """Sort key: documents without the property last in either order; ties in store order."""
    if value is None:
        return (1, 0, order)
    return (0, _Reversed(value) if descending else value, order)


def _narrowed(searchable: Searchable, expression: Mapping[str, Any] | None) -> Query:
    """The store query for a search: the kind, narrowed by filters every match must pass."""
    query = Query(kind=searchable.kind, sort_by="created")
    for item in ex.conjuncts(expression):
        column = searchable.columns.get(item["Name"])
        operator, value = item.get("Operator", "Equals"), item.get("Value")
        if column is None or value is None:
            continue
        if column == "name" and operator in ("Equals", "Contains"):
            query = dataclasses.replace(query, name_contains=value)
        elif column == "status" and operator in ("Equals", "In"):
            statuses = [value] if operator == "Equals" else [v.strip() for v in value.split(",")]
            query = dataclasses.replace(query, status_in=statuses)
        elif column in ("created", "modified"):
            query = _time_bound(query, column, operator, value)
    return query


def _time_bound(query: Query, column: str, operator: str, value: str) -> Query:
    moment = parse_timestamp(value)
    if moment is None:
        return query
    after = operator in ("GreaterThan", "GreaterThanOrEqualTo")
    before = operator in ("LessThan", "LessThanOrEqualTo")
    if column == "created" and after:
        return dataclasses.replace(query, created_after=moment - _NUDGE)
    if column == "created" and before:
        return dataclasses.replace(query, created_before=moment + _NUDGE)
    if column == "modified" and after:
        return dataclasses.replace(query, modified_after=moment - _NUDGE)
    if column == "modified" and before:
        return dataclasses.replace(query, modified_before=moment + _NUDGE)
    return query
