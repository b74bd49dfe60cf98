"""Walking the lineage graph: which entities lie upstream or downstream of some others.

Pure logic over a ``neighbours`` function, so it is tested without a store:

- ``Descendants`` follows associations forward (source → destination): what was made from the
  start; ``Ascendants`` follows them backwards: what the start was made from; ``Both`` is the
  union of the two walks (not a zig-zag, which would reach unrelated siblings).
- ``max_depth`` bounds the number of associations between a start and a result.
- The results are the entities reached (not the starts) that pass the filters; filters do not
  stop the walk, so an endpoint's datasets are found through the model and job between them.
- With edges requested, the entities on the path from a start to each result come too, with
  every followed association between kept entities.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Sequence

DIRECTIONS = ("Ascendants", "Descendants", "Both")


@dataclasses.dataclass(frozen=True)
class Edge:
    """One association: ``source`` → ``destination``."""

    source: str
    destination: str
    association_type: str


#: (ARNs, forward) -> the edges leaving them (forward) or arriving at them (backward)
Neighbours = Callable[[Sequence[str], bool], Iterable[Edge]]


@dataclasses.dataclass
class Walk:
    """What a walk reached: hops from the nearest start, the edge that first reached each
    entity, and every edge followed (in the order followed, without repeats)."""

    depth: dict[str, int] = dataclasses.field(default_factory=dict)
    parent: dict[str, Edge] = dataclasses.field(default_factory=dict)
    edges: dict[Edge, None] = dataclasses.field(default_factory=dict)


def walk(starts: Sequence[str], neighbours: Neighbours, direction: str, max_depth: int) -> Walk:
    """Breadth-first from ``starts`` in ``direction`` for at most ``max_depth`` hops."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
    if direction != "Both":
        return _walk_one(starts, neighbours, direction == "Descendants", max_depth)
    up = _walk_one(starts, neighbours, False, max_depth)
    down = _walk_one(starts, neighbours, True, max_depth)
    merged = Walk(edges={**up.edges, **down.edges})
    for part in (up, down):
        for arn, hops in part.depth.items():
            if hops < merged.depth.get(arn, max_depth + 1):
                merged.depth[arn] = hops
                if arn in part.parent:
                    merged.parent[arn] = part.parent[arn]
    return merged


def _walk_one(starts: Sequence[str], neighbours: Neighbours, forward: bool,
              max_depth: int) -> Walk:
    result = Walk(depth={arn: 0 for arn in starts})
    frontier = list(dict.fromkeys(starts))
    for hops in range(1, max_depth + 1):
        if not frontier:
            break
        reached: list[str] = []
        for edge in neighbours(frontier, forward):
            result.edges[edge] = None
            other = edge.destination if forward else edge.source
            if other not in result.depth:
                result.depth[other] = hops
                result.parent[other] = edge
                reached.append(other)
        frontier = reached
    return result


def select(result: Walk, starts: Sequence[str], matches: Callable[[str], bool],
           include_edges: bool) -> tuple[list[str], list[Edge]]:
    """The vertices to answer (by depth, then ARN) and, when asked, the edges among them."""
    start_set = set(starts)
    matched = {arn for arn, hops in result.depth.items() if arn not in start_set and matches(arn)}
    if not include_edges:
        return _ordered(matched, result), []
    on_paths = set(matched)
    for arn in matched:
        # back along the edges that first reached each entity, until a start (or an entity
        # whose own way back is walked anyway) is met
        current = arn
        while (edge := result.parent.get(current)) is not None:
            previous = edge.source if edge.destination == current else edge.destination
            if previous in on_paths or previous in start_set:
                break
            on_paths.add(previous)
            current = previous
    kept = on_paths | start_set
    edges = [e for e in result.edges if e.source in kept and e.destination in kept]
    return _ordered(on_paths, result), edges


def _ordered(arns: set[str], result: Walk) -> list[str]:
    return sorted(arns, key=lambda arn: (result.depth[arn], arn))
