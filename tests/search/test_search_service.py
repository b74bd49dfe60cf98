"""The Search operation over a registered kind: narrowing, sorting, paging and hit counts."""

from __future__ import annotations

from collections.abc import Collection, Iterator
from typing import Any

import pytest

from modelyard.core.errors import ValidationError
from modelyard.search.service import EVERYTHING, Searchable, SearchService
from modelyard.store import MetadataStore, Query, Record, open_store


@pytest.fixture
def store() -> Iterator[MetadataStore]:
    opened = open_store("sqlite://")
    yield opened
    opened.close()


def add(store: MetadataStore, name: str, status: str, created: float, score: float | None) -> None:
    state = {} if score is None else {"HyperParameters": {"score": str(score)}}
    store.create(Record(kind="Thing", name=name, arn=f"arn:thing/{name}", status=status,
                        created=created, modified=created, version=1, spec={}, state=state))


class Things:
    """A searchable kind that records which records it was asked to describe."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, bool]] = []

    def document(self, record: Record, include: Collection[str]) -> dict[str, Any]:
        self.seen.append((record.name, include is EVERYTHING))
        # shaped as a TrainingJob, the SearchRecord member its results go in
        return {"TrainingJobName": record.name, "TrainingJobStatus": record.status,
                "CreationTime": record.created, **record.state, "NotAMember": 1}


@pytest.fixture
def service(store: MetadataStore) -> tuple[SearchService, Things]:
    for i, (status, score) in enumerate([
        ("Completed", 0.5), ("Failed", 0.9), ("Completed", 0.7), ("Completed", None),
        ("Completed", 0.1), ("InProgress", 0.8),
    ]):
        add(store, f"thing-{i}", status, 1000.0 + i, score)
    things = Things()
    search = SearchService(store)
    search.register(Searchable("Thing", "TrainingJob", "Thing", things.document,
                               {"TrainingJobName": "name", "TrainingJobStatus": "status",
                                "CreationTime": "created"}))
    return search, things


def names(answer: dict[str, Any]) -> list[str]:
    assert all("NotAMember" not in r["TrainingJob"] for r in answer["Results"])
    return [r["TrainingJob"]["TrainingJobName"] for r in answer["Results"]]


def test_sorts_by_any_property_with_the_missing_last(service: tuple[SearchService, Things]) -> None:
    search, _ = service
    completed = {"Filters": [
        {"Name": "TrainingJobStatus", "Operator": "Equals", "Value": "Completed"},
    ]}
    by_score = {"Resource": "Thing", "SearchExpression": completed,
                "SortBy": "HyperParameters.score"}
    down = search.search(by_score)
    assert names(down) == ["thing-2", "thing-0", "thing-4", "thing-3"]
    assert down["TotalHits"] == {"Value": 4, "Relation": "EqualTo"}
    up = search.search({**by_score, "SortOrder": "Ascending"})
    assert names(up) == ["thing-4", "thing-0", "thing-2", "thing-3"]


def test_pages_with_next_token(service: tuple[SearchService, Things]) -> None:
    search, _ = service
    request: dict[str, Any] = {"Resource": "Thing", "SortBy": "CreationTime",
                               "SortOrder": "Ascending", "MaxResults": 4}
    first = search.search(request)
    second = search.search({**request, "NextToken": first["NextToken"]})
    assert names(first) == [f"thing-{i}" for i in range(4)]
    assert names(second) == ["thing-4", "thing-5"]
    assert "NextToken" not in second
    assert first["TotalHits"]["Value"] == second["TotalHits"]["Value"] == 6


def test_top_level_filters_narrow_the_store_read(
    service: tuple[SearchService, Things], monkeypatch: pytest.MonkeyPatch
) -> None:
    search, things = service
    queries: list[Query] = []
    original = search.store.list
    monkeypatch.setattr(search.store, "list", lambda q: queries.append(q) or original(q))
    answer = search.search({"Resource": "Thing", "SearchExpression": {"Filters": [
        {"Name": "TrainingJobStatus", "Operator": "In", "Value": "Failed,InProgress"},
        {"Name": "CreationTime", "Operator": "GreaterThanOrEqualTo", "Value": "1005"},
    ]}})
    assert names(answer) == ["thing-5"]
    assert queries[0].status_in == ["Failed", "InProgress"]
    assert queries[0].created_after is not None and 1004 < queries[0].created_after < 1005
    # only the records the store gave back were read, and only the result in full
    assert things.seen == [("thing-5", False), ("thing-5", True)]


def test_or_expressions_do_not_narrow(service: tuple[SearchService, Things]) -> None:
    search, _ = service
    answer = search.search({"Resource": "Thing", "SortBy": "TrainingJobName",
                            "SortOrder": "Ascending",
                            "SearchExpression": {"Operator": "Or", "Filters": [
        {"Name": "TrainingJobStatus", "Operator": "Equals", "Value": "Failed"},
        {"Name": "HyperParameters.score", "Operator": "LessThan", "Value": "0.2"},
    ]}})
    assert names(answer) == ["thing-1", "thing-4"]


def test_unknown_resources_are_refused(service: tuple[SearchService, Things]) -> None:
    search, _ = service
    with pytest.raises(ValidationError, match="Thing"):
        search.search({"Resource": "Pipeline"})
