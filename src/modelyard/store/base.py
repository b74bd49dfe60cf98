"""The metadata-store interface: a handful of generic methods over resource records.

Every SageMaker resource (a training job, a model, an endpoint ...) is one :class:`Record`,
addressed by ``(kind, name)``. A record carries the request that created it (``spec``, never
changed after creation) and what the platform has observed since (``state``, replaced as a whole
by :meth:`MetadataStore.update`). A few fields are columns so that lists can filter and sort
without reading documents: ``status``, ``created``, ``modified``.

Contract for every implementation:

- Thread-safe and process-safe: several threads and several server processes may share one
  store. Updates are optimistic: ``update`` succeeds only when the stored ``version`` equals the
  caller's, and bumps it; otherwise it raises :class:`~modelyard.core.errors.StaleRecord`.
- Records returned are frozen snapshots; changing the store never changes a record already read.
- ``create`` of an existing ``(kind, name)`` raises :class:`DuplicateRecord`; ``get``/``update``/
  ``delete`` of a missing one raise :class:`RecordNotFound`. Callers translate both into the
  SageMaker error their operation uses.
- Any failure of the database library is translated into
  :class:`~modelyard.core.errors.StoreError`, chained with ``from``.
- Deleting a record deletes its tags, metric points and links.
- Links are directed edges between two records' ARNs, grouped by ``relation`` (lineage
  associations, trial membership ...). Both ends must be stored records; adding a link that
  exists already changes nothing.
"""

from __future__ import annotations

import abc
import builtins
import dataclasses
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from modelyard.core.errors import ResourceInUse, ResourceNotFound


class RecordNotFound(ResourceNotFound):
    """No record exists under ``(kind, name)``."""


class DuplicateRecord(ResourceInUse):
    """A record already exists under ``(kind, name)``."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name} already exists.")
        self.kind = kind
        self.name = name


@dataclasses.dataclass(frozen=True)
class Record:
    """One resource as stored. ``spec`` and ``state`` are JSON-compatible mappings."""

    kind: str
    name: str
    arn: str
    status: str
    created: float
    modified: float
    version: int
    spec: Mapping[str, Any]
    state: Mapping[str, Any]


@dataclasses.dataclass(frozen=True)
class Query:
    """What ``list`` returns: filters, an order and a page window.

    ``name_contains`` is case-insensitive. Time bounds are exclusive epoch seconds.
    ``sort_by`` is one of ``name``, ``created``, ``modified``, ``status``.
    """

    kind: str
    name_contains: str | None = None
    status_in: Sequence[str] | None = None
    created_after: float | None = None
    created_before: float | None = None
    modified_after: float | None = None
    modified_before: float | None = None
    sort_by: str = "created"
    descending: bool = False
    offset: int = 0
    limit: int | None = None


@dataclasses.dataclass(frozen=True)
class MetricPoint:
    """One observed value of a named metric of a resource; ``seq`` orders points and dedupes.

    ``step`` is the iteration a value belongs to when its writer said (``BatchPutMetrics``'
    ``Step``); points read from logs have none.
    """

    name: str
    value: float
    timestamp: float
    seq: int
    step: int | None = None


@dataclasses.dataclass(frozen=True)
class Link:
    """A directed edge from one record's ARN to another's, within one ``relation``.

    ``attributes`` is a small JSON-compatible mapping the relation's owner defines (for a
    lineage association: its ``AssociationType``).
    """

    relation: str
    source: str
    destination: str
    created: float
    attributes: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class MetadataStore(abc.ABC):
    """Records, tags and metric points. See the module docstring for the contract."""

    # --- records -------------------------------------------------------------------------
    @abc.abstractmethod
    def create(self, record: Record) -> Record:
        """Insert a new record (its ``version`` is set to 1). Raises DuplicateRecord."""

    @abc.abstractmethod
    def get(self, kind: str, name: str) -> Record:
        """Read one record. Raises RecordNotFound."""

    @abc.abstractmethod
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
        """Replace ``status`` and/or ``state`` if the stored version is ``version``.

        Returns the new record (version + 1). Raises StaleRecord or RecordNotFound.
        """

    @abc.abstractmethod
    def delete(self, kind: str, name: str) -> None:
        """Remove one record with its tags and metric points. Raises RecordNotFound."""

    @abc.abstractmethod
    def list(self, query: Query) -> list[Record]:
        """Records of ``query.kind`` that pass its filters, ordered and windowed."""

    @abc.abstractmethod
    def count(self, query: Query) -> int:
        """How many records pass the filters of ``query`` (ignoring offset and limit)."""

    def iter_kind(self, kind: str, status_in: Sequence[str] | None = None) -> Iterator[Record]:
        """Every record of a kind (optionally in some statuses), oldest first."""
        yield from self.list(Query(kind=kind, status_in=status_in))

    # --- tags ----------------------------------------------------------------------------
    @abc.abstractmethod
    def set_tags(self, arn: str, tags: Mapping[str, str]) -> None:
        """Add or overwrite tags on a resource ARN. Raises RecordNotFound for an unknown ARN."""

    @abc.abstractmethod
    def remove_tags(self, arn: str, keys: Sequence[str]) -> None:
        """Remove tags by key; missing keys are ignored."""

    @abc.abstractmethod
    def get_tags(self, arn: str) -> dict[str, str]:
        """All tags of an ARN, in key order."""

    # --- metrics -------------------------------------------------------------------------
    @abc.abstractmethod
    def add_metric_points(self, arn: str, points: Sequence[MetricPoint]) -> None:
        """Record points; a point whose ``(name, seq)`` is already stored is ignored.

        Raises RecordNotFound when no record has ``arn`` (so a re-created resource never
        inherits the points of a deleted one).
        """

    # builtins.list: inside this class body a bare ``list`` names the method above.
    @abc.abstractmethod
    def get_metric_points(
        self, arn: str, name: str | None = None
    ) -> builtins.list[MetricPoint]:
        """Points of one ARN (optionally one metric), ordered by ``seq``."""

    # --- links ---------------------------------------------------------------------------
    @abc.abstractmethod
    def add_link(self, link: Link) -> bool:
        """Store a link; False (and nothing changes) when ``(relation, source, destination)``
        is stored already. Raises RecordNotFound when either ARN has no record."""

    @abc.abstractmethod
    def remove_link(self, relation: str, source: str, destination: str) -> bool:
        """Remove one link; whether it existed."""

    @abc.abstractmethod
    def list_links(
        self,
        relation: str,
        *,
        sources: Sequence[str] | None = None,
        destinations: Sequence[str] | None = None,
        offset: int = 0,
        limit: int | None = None,
    ) -> builtins.list[Link]:
        """Links of ``relation`` (optionally only from ``sources`` and/or to ``destinations``),
        ordered by creation time, then source and destination, and windowed."""

    @abc.abstractmethod
    def by_arn(self, arns: Sequence[str]) -> dict[str, Record]:
        """The records with these ARNs, by ARN; unknown ARNs are left out."""

    # --- lifecycle -----------------------------------------------------------------------
    def close(self) -> None:
        """Release connections. The default does nothing."""
