"""Metric summaries and BatchGetMetrics aggregation, without a server."""

from __future__ import annotations

import statistics

import pytest

from modelyard.experiments.metrics import query_result, statistic, summaries
from modelyard.store.base import MetricPoint

T0 = 1_699_999_200.0  # a multiple of 3600: buckets below start exactly here


def point(value: float, at: float, seq: int, step: int | None = None,
          name: str = "loss") -> MetricPoint:
    return MetricPoint(name, value, T0 + at, seq, step=step)


def query(stat: str, period: str = "IterationNumber", axis: str = "IterationNumber",
          **bounds: int) -> dict[str, object]:
    return {"MetricName": "loss", "ResourceArn": "arn", "MetricStat": stat, "Period": period,
            "XAxisType": axis, **bounds}


STEPPED = [
    point(1.0, 0, 1, step=0), point(3.0, 1, 2, step=0),
    point(0.5, 70, 3, step=1),
    point(0.25, 130, 4, step=2), point(0.75, 131, 5, step=2),
]


@pytest.mark.parametrize(("stat", "values"), [
    ("Avg", [2.0, 0.5, 0.5]),
    ("Min", [1.0, 0.5, 0.25]),
    ("Max", [3.0, 0.5, 0.75]),
    ("Count", [2.0, 1.0, 2.0]),
    ("Last", [3.0, 0.5, 0.75]),
    ("StdDev", [statistics.stdev([1.0, 3.0]), 0.0, statistics.stdev([0.25, 0.75])]),
])
def test_each_statistic_per_iteration(stat: str, values: list[float]) -> None:
    result = query_result(STEPPED, query(stat))
    assert result == {"Status": "Complete", "XAxisValues": [0, 1, 2], "MetricValues": values}


def test_time_buckets_start_on_period_boundaries() -> None:
    result = query_result(STEPPED, query("Avg", "OneMinute", "Timestamp"))
    assert result["XAxisValues"] == [int(T0), int(T0) + 60, int(T0) + 120]
    assert result["MetricValues"] == [2.0, 0.5, 0.5]
    hourly = query_result(STEPPED, query("Count", "OneHour", "Timestamp"))
    assert (hourly["XAxisValues"], hourly["MetricValues"]) == ([int(T0)], [5.0])


def test_iterations_on_a_time_axis_sit_at_their_latest_point() -> None:
    result = query_result(STEPPED, query("Last", "IterationNumber", "Timestamp"))
    assert result["XAxisValues"] == [int(T0) + 1, int(T0) + 70, int(T0) + 131]
    assert result["MetricValues"] == [3.0, 0.5, 0.75]


def test_points_without_steps_are_numbered_in_time_order() -> None:
    # as read from a job's log: no steps, written out of order by two hosts
    points = [point(0.9, 5, 10), point(0.7, 1, 20), point(0.4, 9, 30)]
    result = query_result(points, query("Last"))
    assert result["XAxisValues"] == [0, 1, 2]
    assert result["MetricValues"] == [0.7, 0.9, 0.4]


def test_start_and_end_bound_the_x_values_inclusively() -> None:
    result = query_result(STEPPED, query("Max", Start=1, End=2))
    assert result["XAxisValues"] == [1, 2]
    timed = query_result(STEPPED, query("Max", "OneMinute", "Timestamp", Start=int(T0) + 60))
    assert timed["XAxisValues"] == [int(T0) + 60, int(T0) + 120]


def test_an_iteration_axis_needs_iteration_periods() -> None:
    result = query_result(STEPPED, query("Avg", "FiveMinute", "IterationNumber"))
    assert result["Status"] == "ValidationError"
    assert "IterationNumber" in result["Message"]
    assert result["XAxisValues"] == result["MetricValues"] == []


def test_many_values_are_truncated(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelyard.experiments import metrics

    monkeypatch.setattr(metrics, "MAX_VALUES", 2)
    result = query_result(STEPPED, query("Avg"))
    assert (result["Status"], result["XAxisValues"]) == ("Truncated", [0, 1])


def test_summaries_per_metric_and_source() -> None:
    job, component = "arn:job", "arn:component"
    found = summaries({
        job: [point(0.9, 0, 1), point(0.3, 2, 2), point(0.6, 1, 3)],
        component: [point(5.0, 0, 1, name="acc")],
    })
    assert found == [
        {"MetricName": "acc", "SourceArn": component, "TimeStamp": T0, "Max": 5.0, "Min": 5.0,
         "Last": 5.0, "Count": 1, "Avg": 5.0, "StdDev": 0.0},
        {"MetricName": "loss", "SourceArn": job, "TimeStamp": T0 + 2, "Max": 0.9, "Min": 0.3,
         "Last": 0.3, "Count": 3, "Avg": pytest.approx(0.6),
         "StdDev": pytest.approx(statistics.stdev([0.9, 0.3, 0.6]))},
    ]


def test_statistic_refuses_unknown_names() -> None:
    from modelyard.core.errors import ValidationError

    with pytest.raises(ValidationError):
        statistic("Median", [1.0])
