"""Trial-component metrics: summaries for DescribeTrialComponent and ``sagemaker-metrics``.

A component's metric points live in the metadata store under the ARN that produced them: the
component's own (``BatchPutMetrics``, the SDK's ``Run.log_metric``) and, for a training job's
component, the job's (values its ``MetricDefinitions`` matched in the logs). Both read the same.

``BatchGetMetrics`` aggregates one metric of one resource per query:

- ``Period`` ``IterationNumber`` groups the points by step. Points logged without a step (every
  point read from a job's log) take their position in time order as their step: 0, 1, 2 ...
- ``Period`` ``OneMinute``/``FiveMinute``/``OneHour`` groups them into time buckets aligned to
  the epoch; the x value of a bucket is its start.
- ``XAxisType`` ``IterationNumber`` gives the step as x (only with ``Period`` IterationNumber);
  ``Timestamp`` gives epoch seconds (for an iteration: the time of its latest point).
- ``Start``/``End`` bound the x values, both inclusive.
- ``MetricStat`` reduces each group: ``Min``, ``Max``, ``Avg``, ``Count``, ``StdDev`` (the
  sample standard deviation, 0 for one value) or ``Last`` (the latest value by time).

A query's problem (an unknown resource, a period that cannot go with the x-axis) is answered in
its own result (``Status: ValidationError`` with a ``Message``), not by failing the whole call.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from modelyard.core.errors import ResourceNotFound, ValidationError
from modelyard.store.base import MetadataStore, MetricPoint

Handler = Callable[[dict[str, Any]], dict[str, Any]]
#: resource ARN -> the ARNs whose points are its metrics, or None when it does not exist
SeriesResolver = Callable[[str], list[str] | None]
#: trial component name (any case) -> its ARN, ResourceNotFound when there is none
ComponentResolver = Callable[[str], str]

PERIOD_SECONDS = {"OneMinute": 60, "FiveMinute": 300, "OneHour": 3600}
MAX_VALUES = 10_000  # values per query result; beyond it the result is Truncated


def statistic(name: str, values: Sequence[float]) -> float:
    """One ``MetricStat`` over values in time order (at least one value)."""
    if name == "Min":
        return min(values)
    if name == "Max":
        return max(values)
    if name == "Avg":
        return math.fsum(values) / len(values)
    if name == "Count":
        return float(len(values))
    if name == "StdDev":
        return statistics.stdev(values) if len(values) > 1 else 0.0
    if name == "Last":
        return values[-1]
    raise ValidationError(f"MetricStat {name} is not supported.")


def in_time_order(points: Iterable[MetricPoint]) -> list[MetricPoint]:
    """Points by timestamp, ties by write order."""
    return sorted(points, key=lambda p: (p.timestamp, p.seq))


def summaries(points_by_source: Mapping[str, Sequence[MetricPoint]]) -> list[dict[str, Any]]:
    """``TrialComponentMetricSummary`` entries: one per metric and source ARN, by name."""
    out = []
    for source, points in points_by_source.items():
        by_name: dict[str, list[MetricPoint]] = {}
        for point in in_time_order(points):
            if math.isfinite(point.value):
                by_name.setdefault(point.name, []).append(point)
        for name, series in by_name.items():
            values = [p.value for p in series]
            out.append({
                "MetricName": name, "SourceArn": source, "TimeStamp": series[-1].timestamp,
                "Max": max(values), "Min": min(values), "Last": values[-1],
                "Count": len(values), "Avg": statistic("Avg", values),
                "StdDev": statistic("StdDev", values),
            })
    return sorted(out, key=lambda s: (s["MetricName"], s["SourceArn"]))


def query_result(points: Sequence[MetricPoint], query: Mapping[str, Any]) -> dict[str, Any]:
    """One ``MetricQueryResult`` for the points of the queried metric (see the module doc)."""
    period, axis = query["Period"], query["XAxisType"]
    if axis == "IterationNumber" and period != "IterationNumber":
        return _invalid(f"XAxisType IterationNumber needs Period IterationNumber, not {period}.")
    ordered = in_time_order(p for p in points if math.isfinite(p.value))
    groups = _by_iteration(ordered, axis) if period == "IterationNumber" \
        else _by_bucket(ordered, PERIOD_SECONDS[period])
    start, end = query.get("Start"), query.get("End")
    pairs = [
        (x, statistic(query["MetricStat"], values)) for x, values in sorted(groups.items())
        if (start is None or x >= start) and (end is None or x <= end)
    ]
    status = "Complete"
    if len(pairs) > MAX_VALUES:
        pairs, status = pairs[:MAX_VALUES], "Truncated"
    return {
        "Status": status,
        "XAxisValues": [x for x, _ in pairs],
        "MetricValues": [y for _, y in pairs],
    }


def _by_iteration(points: Sequence[MetricPoint], axis: str) -> dict[int, list[float]]:
    """Values by step (step-less points numbered in time order), keyed by the x value."""
    steps: dict[int, list[MetricPoint]] = {}
    ordinal = 0
    for point in points:
        step = point.step
        if step is None:
            step, ordinal = ordinal, ordinal + 1
        steps.setdefault(step, []).append(point)
    if axis == "IterationNumber":
        return {step: [p.value for p in group] for step, group in steps.items()}
    # Timestamp axis: each iteration sits at the time of its latest point (two iterations
    # logged in the same second share the x value, so their values are pooled).
    out: dict[int, list[float]] = {}
    for group in steps.values():
        out.setdefault(int(group[-1].timestamp), []).extend(p.value for p in group)
    return out


def _by_bucket(points: Sequence[MetricPoint], seconds: int) -> dict[int, list[float]]:
    buckets: dict[int, list[float]] = {}
    for point in points:
        start = int(math.floor(point.timestamp / seconds) * seconds)
        buckets.setdefault(start, []).append(point.value)
    return buckets


def _invalid(message: str) -> dict[str, Any]:
    return {"Status": "ValidationError", "Message": message, "XAxisValues": [],
            "MetricValues": []}


class MetricsApi:
    """``sagemaker-metrics``: BatchPutMetrics into a component, BatchGetMetrics out of any."""

    def __init__(self, store: MetadataStore, component_arn: ComponentResolver,
                 series: SeriesResolver, clock: Callable[[], int] = time.time_ns) -> None:
        self.store = store
        self.component_arn = component_arn
        self.series = series
        self.clock = clock

    def operations(self) -> dict[str, Handler]:
        return {"BatchPutMetrics": self.put, "BatchGetMetrics": self.get}

    def put(self, params: dict[str, Any]) -> dict[str, Any]:
        """Store the valid points; each invalid one is reported by its index."""
        arn = self.component_arn(params["TrialComponentName"])
        base = self.clock()  # nanoseconds: unique, increasing sequence numbers per call
        points, errors = [], []
        for index, datum in enumerate(params["MetricData"]):
            value, stamp = datum["Value"], datum["Timestamp"]
            if not math.isfinite(value) or not math.isfinite(stamp) or stamp <= 0:
                errors.append({"Code": "VALIDATION_ERROR", "MetricIndex": index})
                continue
            points.append(MetricPoint(datum["MetricName"], value, stamp, base + index,
                                      step=datum.get("Step")))
        try:
            self.store.add_metric_points(arn, points)
        except ResourceNotFound:  # deleted between lookup and write
            raise ResourceNotFound("Trial component", params["TrialComponentName"]) from None
        return {"Errors": errors}

    def get(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"MetricQueryResults": [self._answer(q) for q in params["MetricQueries"]]}

    def _answer(self, query: Mapping[str, Any]) -> dict[str, Any]:
        sources = self.series(query["ResourceArn"])
        if sources is None:
            return _invalid(f"Resource {query['ResourceArn']} does not exist.")
        name = query["MetricName"]
        points = [p for arn in sources for p in self.store.get_metric_points(arn, name)]
        return query_result(points, query)
