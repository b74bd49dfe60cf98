"""The part of CloudWatch metrics that reads modelyard's own metrics as time series.

Served on the same endpoint as the SageMaker API (awsJson 1.0,
``X-Amz-Target: GraniteServiceVersion20100801.<Op>``), so a ``cloudwatch`` client pointed at
modelyard's URL works, and with it the SDK's ``TrainingJobAnalytics``: ListMetrics,
GetMetricStatistics and GetMetricData.

The operations are written once over :class:`MetricSource`, one per namespace: a source lists
its series and gives a :class:`StatisticSet` (count, sum, min, max, as CloudWatch itself keeps
them) per period. Two sources exist: training-job metrics (below) and endpoint invocation
metrics under ``AWS/SageMaker`` (:mod:`modelyard.serving.metrics`). Alarms and autoscaling read
through :meth:`MetricsService.datapoints` too.

Training jobs: the points that a job's ``MetricDefinitions`` extracted from its logs. Each
metric of a job appears in namespace ``/aws/sagemaker/TrainingJobs`` under two dimension
sets, as SageMaker publishes them:

- ``TrainingJobName=<job>``: every host's points together (what ``TrainingJobAnalytics`` reads);
- ``Host=<job>/algo-<n>``: the points of one host.

As in CloudWatch, a dimension set names a series exactly (a query with both dimensions, or none,
matches nothing), and an unknown namespace, job or metric gives empty results, not an error.
Datapoints are buckets of ``Period`` seconds aligned to the epoch, so the first bucket may start
before ``StartTime`` (CloudWatch also rounds the start down); values are unit-less (``None``).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Protocol

from modelyard.core.errors import ValidationError
from modelyard.store.base import MetadataStore, MetricPoint, Query, RecordNotFound
from modelyard.training.controller import _SEQ_ATTEMPT, _SEQ_HOST, KIND

Handler = Callable[[dict[str, Any]], dict[str, Any]]

NAMESPACE = "/aws/sagemaker/TrainingJobs"
JOB_DIMENSION = "TrainingJobName"
HOST_DIMENSION = "Host"

_LIST_PAGE = 500  # ListMetrics answers at most this many metrics per call, as CloudWatch does
_MAX_STATISTICS_POINTS = 1440  # GetMetricStatistics' limit on requested datapoints
_MAX_DATA_POINTS = 100_800  # GetMetricData's default MaxDatapoints
_RECENT_SECONDS = 3 * 3600  # RecentlyActive=PT3H
_HIGH_RESOLUTION_PERIODS = frozenset({1, 5, 10, 20, 30})
_UNIT = "None"


class InvalidParameterValue(ValidationError):
    """A parameter has a value CloudWatch rejects (query code ``InvalidParameterValue``)."""

    code = "InvalidParameterValueException"


class InvalidParameterCombination(ValidationError):
    """Parameters that cannot go together (query code ``InvalidParameterCombination``)."""

    code = "InvalidParameterCombinationException"


class MissingParameter(ValidationError):
    """A parameter required in this combination is absent (query code ``MissingParameter``)."""

    code = "MissingRequiredParameterException"


@dataclasses.dataclass(frozen=True)
class StatisticSet:
    """The summary CloudWatch keeps of the values in one period; every statistic derives from it."""

    count: float
    total: float
    minimum: float
    maximum: float

    @classmethod
    def of(cls, values: Sequence[float]) -> StatisticSet:
        """The summary of some values (at least one)."""
        return cls(float(len(values)), math.fsum(values), min(values), max(values))

    def value(self, name: str) -> float:
        """One statistic: ``Average``, ``Sum``, ``Minimum``, ``Maximum`` or ``SampleCount``."""
        if name == "SampleCount":
            return self.count
        if name == "Sum":
            return self.total
        if name == "Average":
            return self.total / self.count
        if name == "Minimum":
            return self.minimum
        if name == "Maximum":
            return self.maximum
        raise InvalidParameterValue(f"The statistic {name} is not supported by modelyard.")


#: A series' unit and its statistics by period start (epoch seconds).
Reading = tuple[str, dict[float, StatisticSet]]
Dimensions = Sequence[Mapping[str, str]]


class MetricSource(Protocol):
    """The metrics of one namespace.

    A dimension set names a series exactly: ``read`` answers ``None`` for any set that is not
    exactly one series' (CloudWatch matches dimension sets whole, in any order).
    """

    namespace: str

    def series(
        self, metric: str | None, filters: Dimensions
    ) -> Iterable[tuple[str, list[dict[str, str]], float]]:
        """``(metric, dimensions, time of the last value)`` of every series with data.

        ``metric`` and ``filters`` (ListMetrics' dimension filters) are hints a source may use
        to read less; the caller applies them again.
        """

    def read(self, metric: str, dimensions: Dimensions, start: float, end: float,
             period: int) -> Reading | None:
        """Statistics per ``period`` over ``[start, end)``, ``start`` rounded down to a period."""


@dataclasses.dataclass(frozen=True)
class Series:
    """One CloudWatch metric: a job's metric over all hosts (``host=None``) or over one host."""

    job: str
    metric: str
    host: int | None = None  # 1-based, as in ``algo-1``

    def dimensions(self) -> list[dict[str, str]]:
        if self.host is None:
            return [{"Name": JOB_DIMENSION, "Value": self.job}]
        return [{"Name": HOST_DIMENSION, "Value": f"{self.job}/algo-{self.host}"}]

    def selects(self, point: MetricPoint) -> bool:
        return point.name == self.metric and (self.host is None or host_of(point) == self.host)


def host_of(point: MetricPoint) -> int:
    """The 1-based host number of a point, from the line number the controller gave it."""
    return (point.seq % _SEQ_ATTEMPT) // _SEQ_HOST + 1


def series_of(namespace: str, metric: str, dimensions: Sequence[Mapping[str, str]]) -> Series | None:
    """The series an exact ``(namespace, metric, dimensions)`` names, or ``None`` if none can."""
    if namespace != NAMESPACE or len(dimensions) != 1:
        return None
    name, value = dimensions[0]["Name"], dimensions[0]["Value"]
    if name == JOB_DIMENSION:
        return Series(value, metric)
    if name == HOST_DIMENSION:
        job, _, host = value.partition("/")
        number = host.removeprefix("algo-")
        if host.startswith("algo-") and number.isdigit() and int(number) >= 1:
            return Series(job, metric, int(number))
    return None


def bucket_values(
    points: Iterable[MetricPoint], start: float, end: float, period: int
) -> dict[float, list[float]]:
    """Values by bucket start: epoch multiples of ``period``, over ``[start, end)``.

    ``start`` is first rounded down to a bucket boundary, so that every bucket is whole.
    """
    first = math.floor(start / period) * period
    buckets: dict[float, list[float]] = {}
    for point in points:
        if first <= point.timestamp < end:
            key = float(math.floor(point.timestamp / period) * period)
            buckets.setdefault(key, []).append(point.value)
    return dict(sorted(buckets.items()))


def statistic(name: str, values: Sequence[float]) -> float:
    """One CloudWatch statistic (``Average``, ``Sum``, ``Minimum``, ``Maximum``, ``SampleCount``)."""
    return StatisticSet.of(values).value(name)


def check_period(period: int, where: str = "Period") -> None:
    """Periods CloudWatch accepts for high-resolution metrics: 1, 5, 10, 20, 30 or n × 60."""
    if period not in _HIGH_RESOLUTION_PERIODS and period % 60:
        raise InvalidParameterValue(
            f"The parameter {where} must be 1, 5, 10, 20, 30, or a multiple of 60."
        )


def check_range(start: float, end: float) -> None:
    if start >= end:
        raise InvalidParameterValue("The parameter StartTime must be less than the parameter EndTime.")


class TrainingJobMetrics:
    """The training-job metric source: points extracted from job logs, in the metadata store."""

    namespace = NAMESPACE

    def __init__(self, store: MetadataStore) -> None:
        self.store = store

    def series(
        self, metric: str | None, filters: Dimensions
    ) -> Iterator[tuple[str, list[dict[str, str]], float]]:
        for series, last_seen in self._all_series(_job_filter(filters), metric):
            yield series.metric, series.dimensions(), last_seen

    def read(self, metric: str, dimensions: Dimensions, start: float, end: float,
             period: int) -> Reading | None:
        series = series_of(NAMESPACE, metric, dimensions)
        if series is None:
            return None
        points = [p for p in self._points(series.job) if series.selects(p)]
        buckets = bucket_values(points, start, end, period)
        return _UNIT, {at: StatisticSet.of(values) for at, values in buckets.items()}

    def _points(self, job: str) -> list[MetricPoint]:
        try:
            record = self.store.get(KIND, job)
        except RecordNotFound:
            return []
        return self.store.get_metric_points(record.arn)

    def _all_series(self, job: str | None, metric: str | None) -> Iterator[tuple[Series, float]]:
        """Every series with data, with the time of its last point, in a stable order."""
        records = [job] if job else [r.name for r in self.store.list(Query(kind=KIND, sort_by="name"))]
        for name in records:
            last_seen: dict[Series, float] = {}
            for point in self._points(name):
                if metric is not None and point.name != metric:
                    continue
                for series in (Series(name, point.name), Series(name, point.name, host_of(point))):
                    last_seen[series] = max(last_seen.get(series, point.timestamp), point.timestamp)
            yield from sorted(last_seen.items(), key=lambda item: _series_order(item[0]))


class MetricsService:
    """ListMetrics, GetMetricStatistics and GetMetricData over every metric source.

    Training-job metrics are always served; ``sources`` adds more namespaces.
    """

    def __init__(self, store: MetadataStore, clock: Callable[[], float] = time.time,
                 sources: Sequence[MetricSource] = ()) -> None:
        self.store = store
        self.clock = clock
        every: list[MetricSource] = [TrainingJobMetrics(store), *sources]
        self.sources = {source.namespace: source for source in every}

    def operations(self) -> dict[str, Handler]:
        return {
            "ListMetrics": self.list_metrics,
            "GetMetricStatistics": self.get_metric_statistics,
            "GetMetricData": self.get_metric_data,
        }

    def datapoints(self, namespace: str, metric: str, dimensions: Dimensions, start: float,
                   end: float, period: int, unit: str | None = None) -> Reading:
        """The statistics of one series per period; no periods for a series that does not exist.

        Asking for a unit other than the series' own finds nothing, as in CloudWatch.
        """
        source = self.sources.get(namespace)
        reading = source.read(metric, dimensions, start, end, period) if source else None
        if reading is None or unit not in (None, reading[0]):
            return unit or _UNIT, {}
        return reading

    # --- operations ----------------------------------------------------------------------
    def list_metrics(self, params: dict[str, Any]) -> dict[str, Any]:
        namespace = params.get("Namespace")
        sources = [self.sources[namespace]] if namespace in self.sources else []
        if namespace is None:
            sources = list(self.sources.values())
        filters = params.get("Dimensions", [])
        wanted = params.get("MetricName")
        recent_after = self.clock() - _RECENT_SECONDS if params.get("RecentlyActive") else None
        found = [
            {"Namespace": source.namespace, "MetricName": metric, "Dimensions": dimensions}
            for source in sources
            for metric, dimensions, last_seen in source.series(wanted, filters)
            if (wanted is None or metric == wanted) and _matches(dimensions, filters)
            and (recent_after is None or last_seen >= recent_after)
        ]
        start = _offset(params.get("NextToken"))
        out: dict[str, Any] = {"Metrics": found[start : start + _LIST_PAGE]}
        if start + _LIST_PAGE < len(found):
            out["NextToken"] = str(start + _LIST_PAGE)
        return out

    def get_metric_statistics(self, params: dict[str, Any]) -> dict[str, Any]:
        start, end, period = params["StartTime"], params["EndTime"], params["Period"]
        statistics = _requested_statistics(params)
        check_range(start, end)
        check_period(period)
        requested = math.ceil((end - start) / period)
        if requested > _MAX_STATISTICS_POINTS:
            raise InvalidParameterCombination(
                f"You have requested up to {requested:,} datapoints, which exceeds the limit of "
                f"{_MAX_STATISTICS_POINTS:,}. You may reduce the datapoints requested by increasing "
                "Period, or decreasing the time range."
            )
        metric = params["MetricName"]
        unit, buckets = self.datapoints(params["Namespace"], metric, params.get("Dimensions", []),
                                        start, end, period, params.get("Unit"))
        datapoints = [
            {"Timestamp": at, "Unit": unit, **{s: summary.value(s) for s in statistics}}
            for at, summary in buckets.items()
        ]
        return {"Label": metric, "Datapoints": datapoints}

    def get_metric_data(self, params: dict[str, Any]) -> dict[str, Any]:
        start, end = params["StartTime"], params["EndTime"]
        check_range(start, end)
        queries = params["MetricDataQueries"]
        _check_ids(queries)
        descending = params.get("ScanBy", "TimestampDescending") == "TimestampDescending"
        results = [self._query_result(q, start, end, descending) for q in queries]
        results = [r for q, r in zip(queries, results) if q.get("ReturnData", True)]
        limit = int(params.get("MaxDatapoints", _MAX_DATA_POINTS))
        if limit < 1:
            raise InvalidParameterValue("The parameter MaxDatapoints must be greater than 0.")
        page, token = _page_results(results, _offset(params.get("NextToken")), limit)
        out: dict[str, Any] = {"MetricDataResults": page, "Messages": []}
        if token is not None:
            out["NextToken"] = token
        return out

    def _query_result(
        self, query: Mapping[str, Any], start: float, end: float, descending: bool
    ) -> dict[str, Any]:
        stat = query.get("MetricStat")
        if stat is None:
            raise InvalidParameterValue(
                f"The query {query['Id']} has no MetricStat; metric math expressions are not "
                "supported by modelyard."
            )
        check_period(stat["Period"], "MetricStat.Period")
        metric = stat["Metric"]
        name = metric.get("MetricName", "")
        _, buckets = self.datapoints(metric.get("Namespace", ""), name, metric.get("Dimensions", []),
                                     start, end, stat["Period"], stat.get("Unit"))
        pairs = [(at, summary.value(stat["Stat"])) for at, summary in buckets.items()]
        if descending:
            pairs.reverse()
        return {
            "Id": query["Id"],
            "Label": query.get("Label") or name,
            "Timestamps": [at for at, _ in pairs],
            "Values": [value for _, value in pairs],
        }


def _series_order(series: Series) -> tuple[str, int]:
    # the job-wide series first, then hosts by number (algo-2 before algo-10)
    return series.metric, series.host or 0


def _job_filter(filters: Sequence[Mapping[str, str]]) -> str | None:
    """The one job a dimension filter pins down, so that only its points are read."""
    for f in filters:
        value = f.get("Value")
        if value is not None and f["Name"] in (JOB_DIMENSION, HOST_DIMENSION):
            return value.partition("/")[0]
    return None


def _matches(dimensions: Dimensions, filters: Dimensions) -> bool:
    """ListMetrics semantics: every filter names a dimension the series has (with that value)."""
    have = {d["Name"]: d["Value"] for d in dimensions}
    return all(
        f["Name"] in have and f.get("Value", have[f["Name"]]) == have[f["Name"]] for f in filters
    )


def _requested_statistics(params: Mapping[str, Any]) -> list[str]:
    statistics = list(params.get("Statistics", []))
    if params.get("ExtendedStatistics"):
        if statistics:
            raise InvalidParameterCombination(
                "The parameters Statistics and ExtendedStatistics are mutually exclusive."
            )
        raise InvalidParameterValue("ExtendedStatistics (percentiles) are not supported by modelyard.")
    if not statistics:
        raise MissingParameter("Must specify either Statistics or ExtendedStatistics.")
    return list(dict.fromkeys(statistics))


def _check_ids(queries: Sequence[Mapping[str, Any]]) -> None:
    ids = [q["Id"] for q in queries]
    if len(set(ids)) != len(ids):
        raise InvalidParameterValue("The values for parameter Id in MetricDataQueries are not unique.")


def _offset(token: str | None) -> int:
    if token is None:
        return 0
    if not token.isdigit():
        raise InvalidParameterValue("The NextToken is not valid.")
    return int(token)


def _page_results(
    results: list[dict[str, Any]], offset: int, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of at most ``limit`` values over all results, ``offset`` values in.

    Every query keeps its entry on every page; one with values beyond the page says
    ``PartialData``, as CloudWatch does, and the caller passes NextToken back for the rest.
    """
    page: list[dict[str, Any]] = []
    seen = 0
    for result in results:
        count = len(result["Values"])
        lo = min(max(offset - seen, 0), count)
        hi = min(max(offset + limit - seen, 0), count)
        status = "PartialData" if hi < count else "Complete"
        page.append({
            **result,
            "Timestamps": result["Timestamps"][lo:hi],
            "Values": result["Values"][lo:hi],
            "StatusCode": status,
        })
        seen += count
    return page, (str(offset + limit) if offset + limit < seen else None)
