"""Associations between lineage entities, and QueryLineage over them.

AddAssociation, DeleteAssociation, ListAssociations and QueryLineage. An association joins two
existing lineage entities (artifacts, actions, contexts, trial components); it is stored as a
link (:data:`modelyard.lineage.spec.LINEAGE`), found from either end through the store's
indexes, and goes away with either end. For QueryLineage's walk see
:mod:`modelyard.lineage.graph`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from modelyard.api import pagination
from modelyard.core.arns import name_from_arn
from modelyard.core.errors import ResourceNotFound
from modelyard.lineage import graph, spec
from modelyard.lineage.service import LineageService
from modelyard.store.base import Link, MetadataStore, Record

Handler = Callable[[dict[str, Any]], dict[str, Any]]

_CHUNK = 200  # ARNs per store call while walking
_LIST_SORT = {"SourceArn": "SourceArn", "DestinationArn": "DestinationArn",
              "SourceType": "SourceType", "DestinationType": "DestinationType"}


class AssociationService:
    """The edges of the lineage graph."""

    def __init__(self, store: MetadataStore, entities: LineageService) -> None:
        self.store = store
        self.entities = entities

    def operations(self) -> dict[str, Handler]:
        return {
            "AddAssociation": self.add,
            "DeleteAssociation": self.delete,
            "ListAssociations": self.list_associations,
            "QueryLineage": self.query,
        }

    # --- operations ----------------------------------------------------------------------
    def add(self, params: dict[str, Any]) -> dict[str, Any]:
        source = self.entities.entity(params["SourceArn"])
        destination = self.entities.entity(params["DestinationArn"])
        self.associate(source, destination, params.get("AssociationType", spec.DEFAULT_ASSOCIATION))
        return {"SourceArn": source.arn, "DestinationArn": destination.arn}

    def associate(self, source: Record, destination: Record, association_type: str) -> None:
        """Store an association (nothing changes if the two are associated already)."""
        attributes = {"AssociationType": association_type}
        link = Link(spec.LINEAGE, source.arn, destination.arn, time.time(), attributes)
        self.store.add_link(link)

    def delete(self, params: dict[str, Any]) -> dict[str, Any]:
        source, destination = params["SourceArn"].lower(), params["DestinationArn"].lower()
        if not self.store.remove_link(spec.LINEAGE, source, destination):
            ends = f"{params['SourceArn']} -> {params['DestinationArn']}"
            raise ResourceNotFound("Association", ends)
        return {"SourceArn": source, "DestinationArn": destination}

    def list_associations(self, params: dict[str, Any]) -> dict[str, Any]:
        source, destination = params.get("SourceArn"), params.get("DestinationArn")
        links = self.store.list_links(
            spec.LINEAGE,
            sources=None if source is None else [source.lower()],
            destinations=None if destination is None else [destination.lower()],
        )
        records = self._records(arn for link in links for arn in (link.source, link.destination))
        rows = [self._summary(link, records) for link in links]
        rows = [r for r in rows if _passes(r, params)]
        key = _LIST_SORT.get(params.get("SortBy", "CreationTime"))
        rows.sort(key=(lambda r: (r.get(key) or "", r["CreationTime"])) if key
                  else (lambda r: r["CreationTime"]),
                  reverse=params.get("SortOrder", "Descending") == "Descending")
        offset, limit = pagination.page_window(params)
        page = [{k: v for k, v in r.items() if not k.startswith("_")}
                for r in rows[offset : offset + limit]]
        out: dict[str, Any] = {"AssociationSummaries": page}
        if offset + limit < len(rows):
            out["NextToken"] = pagination.next_token(params, offset + limit)
        return out

    def query(self, params: dict[str, Any]) -> dict[str, Any]:
        starts = [self.entities.entity(arn).arn for arn in params.get("StartArns", [])]
        walked = graph.walk(starts, self._neighbours, params.get("Direction", "Both"),
                            int(params.get("MaxDepth", 10)))
        records = self._records(walked.depth)
        filters = params.get("Filters") or {}
        vertices, edges = graph.select(
            walked, starts, lambda arn: arn in records and _vertex_passes(records[arn], filters),
            bool(params.get("IncludeEdges", True)),
        )
        offset, limit = pagination.page_window(params, default_max=50, max_max=50)
        page = vertices[offset : offset + limit]
        shown = set(page) | set(starts)
        out: dict[str, Any] = {
            "Vertices": [_vertex(records[arn]) for arn in page if arn in records],
            "Edges": [
                {"SourceArn": e.source, "DestinationArn": e.destination,
                 "AssociationType": e.association_type}
                for e in edges if e.source in shown and e.destination in shown
            ],
        }
        if offset + limit < len(vertices):
            out["NextToken"] = pagination.next_token(params, offset + limit)
        return out

    # --- helpers -------------------------------------------------------------------------
    def _neighbours(self, arns: Sequence[str], forward: bool) -> list[graph.Edge]:
        edges: list[graph.Edge] = []
        for start in range(0, len(arns), _CHUNK):
            chunk = list(arns[start : start + _CHUNK])
            links = self.store.list_links(spec.LINEAGE, sources=chunk) if forward \
                else self.store.list_links(spec.LINEAGE, destinations=chunk)
            edges.extend(
                graph.Edge(x.source, x.destination,
                           str(x.attributes.get("AssociationType", spec.DEFAULT_ASSOCIATION)))
                for x in links
            )
        return edges

    def _records(self, arns: Iterable[str]) -> dict[str, Record]:
        return self.store.by_arn(list(dict.fromkeys(arns)))

    def _summary(self, link: Link, records: Mapping[str, Record]) -> dict[str, Any]:
        out: dict[str, Any] = {
            "SourceArn": link.source, "DestinationArn": link.destination,
            "AssociationType": link.attributes.get("AssociationType", spec.DEFAULT_ASSOCIATION),
            "CreationTime": link.created,
        }
        for side, arn in (("Source", link.source), ("Destination", link.destination)):
            record = records.get(arn)
            if record is None:
                continue
            out[f"{side}Type"] = spec.vertex_type(record) or spec.LINEAGE_TYPES[record.kind]
            out[f"_{side}LineageType"] = spec.LINEAGE_TYPES.get(record.kind)
            name = spec.display_name(record)
            if name and len(name) <= 120:
                out[f"{side}Name"] = name
        return out


def endpoint_context_name(endpoint_arn: str) -> str:
    """The name of the context the platform records for an endpoint (ARN in lower case)."""
    return f"{name_from_arn(endpoint_arn)}-{spec.short_hash(endpoint_arn.lower())}"


def _passes(row: Mapping[str, Any], params: Mapping[str, Any]) -> bool:
    """ListAssociations' filters; a type filter matches the entity's Type or LineageType."""
    for side in ("Source", "Destination"):
        wanted = params.get(f"{side}Type")
        if wanted and wanted not in (row.get(f"{side}Type"), row.get(f"_{side}LineageType")):
            return False
    if params.get("AssociationType") and row["AssociationType"] != params["AssociationType"]:
        return False
    after, before = params.get("CreatedAfter"), params.get("CreatedBefore")
    return (after is None or row["CreationTime"] > after) and \
        (before is None or row["CreationTime"] < before)


def _vertex(record: Record) -> dict[str, Any]:
    out = {"Arn": record.arn, "LineageType": spec.LINEAGE_TYPES[record.kind]}
    kind = spec.vertex_type(record)
    if kind:
        out["Type"] = kind
    return out


def _vertex_passes(record: Record, filters: Mapping[str, Any]) -> bool:
    """QueryLineage's Filters on one reached entity."""
    if record.kind not in spec.LINEAGE_TYPES:
        return False
    if filters.get("Types") and spec.vertex_type(record) not in filters["Types"]:
        return False
    lineage_types = filters.get("LineageTypes")
    if lineage_types and spec.LINEAGE_TYPES[record.kind] not in lineage_types:
        return False
    modified = record.state.get("LastModifiedTime", record.modified)
    for value, bound, newer in (
        (record.created, filters.get("CreatedAfter"), True),
        (record.created, filters.get("CreatedBefore"), False),
        (modified, filters.get("ModifiedAfter"), True),
        (modified, filters.get("ModifiedBefore"), False),
    ):
        if bound is not None and (value <= bound if newer else value >= bound):
            return False
    wanted: Mapping[str, str] = filters.get("Properties") or {}
    have = spec.properties(record)
    return all(have.get(k) == v for k, v in wanted.items())
