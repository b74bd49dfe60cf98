"""Walking a lineage graph: directions, depth, filters and the paths kept with edges."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest

from modelyard.lineage.graph import Edge, select, walk

# data-a ──▶ job ──▶ model ──▶ deploy ──▶ endpoint
# data-b ──┘          ▲
# image ──────────────┘ (image also went into the model's deployment)
# data-a ──▶ other-job (a sibling: neither up- nor downstream of the model)
EDGES = [
    Edge("data-a", "job", "ContributedTo"),
    Edge("data-b", "job", "ContributedTo"),
    Edge("job", "model", "Produced"),
    Edge("model", "deploy", "ContributedTo"),
    Edge("image", "deploy", "ContributedTo"),
    Edge("deploy", "endpoint", "AssociatedWith"),
    Edge("data-a", "other-job", "ContributedTo"),
]
calls: list[tuple[tuple[str, ...], bool]] = []


def neighbours(arns: Sequence[str], forward: bool) -> Iterable[Edge]:
    calls.append((tuple(arns), forward))
    wanted = set(arns)
    return [e for e in EDGES if (e.source if forward else e.destination) in wanted]


def everything(arn: str) -> bool:
    return True


def vertices(start: str, direction: str, depth: int = 10) -> list[str]:
    return select(walk([start], neighbours, direction, depth), [start], everything, False)[0]


def test_ascendants_follow_associations_backwards() -> None:
    assert vertices("endpoint", "Ascendants") == [
        "deploy", "image", "model", "job", "data-a", "data-b",
    ]


def test_descendants_follow_them_forwards_and_siblings_stay_out() -> None:
    assert vertices("data-a", "Descendants") == ["job", "other-job", "model", "deploy", "endpoint"]
    assert "other-job" not in vertices("model", "Both")


def test_both_is_the_union_of_the_two_walks() -> None:
    assert vertices("model", "Both") == ["deploy", "job", "data-a", "data-b", "endpoint"]


def test_max_depth_counts_associations_and_the_walk_reads_level_by_level() -> None:
    calls.clear()
    assert vertices("endpoint", "Ascendants", depth=2) == ["deploy", "image", "model"]
    assert calls == [(("endpoint",), False), (("deploy",), False)]
    assert vertices("endpoint", "Ascendants", depth=0) == []


def test_filters_pick_results_but_the_walk_goes_through_everything() -> None:
    datasets = select(walk(["endpoint"], neighbours, "Ascendants", 10), ["endpoint"],
                      lambda arn: arn.startswith("data"), include_edges=False)
    assert datasets == (["data-a", "data-b"], [])


def test_with_edges_the_paths_to_the_results_come_too() -> None:
    found, edges = select(walk(["endpoint"], neighbours, "Ascendants", 10), ["endpoint"],
                          lambda arn: arn == "data-b", include_edges=True)
    assert found == ["deploy", "model", "job", "data-b"]
    assert set(edges) == {
        Edge("deploy", "endpoint", "AssociatedWith"), Edge("model", "deploy", "ContributedTo"),
        Edge("job", "model", "Produced"), Edge("data-b", "job", "ContributedTo"),
    }


def test_cycles_end() -> None:
    loop = [Edge("a", "b", "SameAs"), Edge("b", "a", "SameAs")]

    def around(arns: Sequence[str], forward: bool) -> list[Edge]:
        return [e for e in loop if (e.source if forward else e.destination) in arns]

    result = walk(["a"], around, "Descendants", 10)
    assert result.depth == {"a": 0, "b": 1}
    assert select(result, ["a"], everything, True) == (["b"], loop)


def test_unknown_direction() -> None:
    with pytest.raises(ValueError):
        walk(["a"], neighbours, "Sideways", 3)
