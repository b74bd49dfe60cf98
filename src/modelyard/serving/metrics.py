"""Endpoint invocation metrics: what SageMaker publishes under ``AWS/SageMaker``, kept in memory.

:class:`EndpointMetrics` is the router's invocation observer. Each call adds to a one-second
bucket of its endpoint/variant (a dozen number updates under a lock; a list is allocated only
when a new second starts), and the buckets of the last three hours are kept. From them it
answers, as a CloudWatch :class:`~modelyard.api.cloudwatch_metrics.MetricSource`, any period of
whole seconds, with dimensions ``EndpointName`` + ``VariantName``:

=========================  ============  ==================================================
metric                     unit          one value per invocation
=========================  ============  ==================================================
Invocations                None          1
Invocation4XXErrors        None          1 if the answer was 4xx, else 0
Invocation5XXErrors        None          1 if the answer was 5xx, else 0
ModelLatency               Microseconds  time the model server took
OverheadLatency            Microseconds  the rest of the request's time in modelyard
InvocationsPerInstance     None          1 / the variant's ready instances at that moment
=========================  ============  ==================================================

Multi-model variants add, from what the worker reports of each invocation
(:mod:`modelyard.runtime.serving.loading`), with their own samples:

=========================  ============  ==================================================
ModelCacheHit              None          1 if the model was in memory, else 0 (each call)
ModelLoadingWaitTime       Microseconds  time the call waited for its model (misses only)
ModelLoadingTime           Microseconds  time model_fn and warm-up took (misses only)
ModelDownloadingTime       Microseconds  time fetching the model's files (when fetched)
ModelUnloadingTime         Microseconds  time unloading other models (when any was)
=========================  ============  ==================================================

So ``Sum`` of Invocations counts requests, ``Average`` of Invocation4XXErrors is the 4xx rate,
and ``Sum`` of InvocationsPerInstance over a minute is what target tracking compares with its
target. The status counted is the model's own when it answered (a model's 500 is a 5XX error,
though the caller sees ``ModelError``), as SageMaker counts it.

The same object keeps cumulative counters and latency histograms for ``GET /metrics``
(:meth:`EndpointMetrics.render_prometheus`); they are never pruned while the variant is seen,
as Prometheus counters must not go down. A variant with no call for three hours is forgotten.
"""

from __future__ import annotations

import bisect
import dataclasses
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Final

from modelyard.api.cloudwatch_metrics import Dimensions, Reading, StatisticSet
from modelyard.runtime.serving.loading import Loading
from modelyard.serving.routes import RoutingTable

NAMESPACE: Final = "AWS/SageMaker"
ENDPOINT_DIMENSION: Final = "EndpointName"
VARIANT_DIMENSION: Final = "VariantName"
HISTORY_SECONDS: Final = 3 * 3600

# Slots of a one-second bucket: the count, then (sum, min, max) of each measured value.
_N, _E4, _E5 = 0, 1, 2
_MODEL, _OVERHEAD, _SHARE = 3, 6, 9  # first of three slots each: sum, min, max
_SLOTS = 12
_EMPTY = [0.0, 0.0, 0.0, 0.0, math.inf, -math.inf, 0.0, math.inf, -math.inf, 0.0, math.inf, -math.inf]

# Latency histogram bounds for Prometheus, in seconds.
LATENCY_BOUNDS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                         5.0, 10.0, 30.0, 60.0)

LOADING_METRICS: Final = ("ModelCacheHit", "ModelLoadingWaitTime", "ModelLoadingTime",
                          "ModelDownloadingTime", "ModelUnloadingTime")
_UNITS: Final = {"ModelLatency": "Microseconds", "OverheadLatency": "Microseconds",
                 **{name: "Microseconds" for name in LOADING_METRICS[1:]}}
METRIC_NAMES: Final = ("Invocations", "Invocation4XXErrors", "Invocation5XXErrors",
                       "ModelLatency", "OverheadLatency", "InvocationsPerInstance")


class _Variant:
    """One endpoint variant: its second buckets and its cumulative Prometheus counters."""

    __slots__ = ("seconds", "loading", "errors", "model_histogram", "overhead_histogram",
                 "model_total", "overhead_total", "last_seen")

    def __init__(self) -> None:
        self.seconds: dict[int, list[float]] = {}  # epoch second -> bucket; in insertion order
        # multi-model variants: epoch second -> loading metric -> [count, sum, min, max]
        self.loading: dict[int, dict[str, list[float]]] = {}
        self.errors = [0, 0]  # 4xx, 5xx since the server started
        self.model_histogram = [0] * (len(LATENCY_BOUNDS) + 1)
        self.overhead_histogram = [0] * (len(LATENCY_BOUNDS) + 1)
        self.model_total = 0.0
        self.overhead_total = 0.0
        self.last_seen = 0.0

    def bucket(self, second: int) -> list[float]:
        bucket = self.seconds.get(second)
        if bucket is None:
            bucket = self.seconds[second] = list(_EMPTY)
            self.prune(second - HISTORY_SECONDS)
        return bucket

    def prune(self, before: float) -> None:
        for buckets in (self.seconds, self.loading):
            _prune(buckets, before)


def _prune(buckets: dict[int, object], before: float) -> None:
    # seconds arrive in order (a clock stepping back only leaves a few out of order), so the
    # oldest are at the front and pruning stops at the first one to keep
    while buckets:
        oldest = next(iter(buckets))
        if oldest >= before:
            return
        del buckets[oldest]


@dataclasses.dataclass(frozen=True)
class _Snapshot:
    """A variant's cumulative counters, copied under the lock."""

    errors: tuple[int, ...]
    model_histogram: list[int]
    model_total: float
    overhead_histogram: list[int]
    overhead_total: float

    @classmethod
    def of(cls, variant: _Variant) -> _Snapshot:
        return cls(tuple(variant.errors), list(variant.model_histogram), variant.model_total,
                   list(variant.overhead_histogram), variant.overhead_total)


def _add(bucket: list[float], slot: int, value: float) -> None:
    bucket[slot] += value
    if value < bucket[slot + 1]:
        bucket[slot + 1] = value
    if value > bucket[slot + 2]:
        bucket[slot + 2] = value


class EndpointMetrics:
    """The router's invocation observer, and the ``AWS/SageMaker`` metric source.

    ``instances(endpoint, variant)`` gives the variant's ready instance count (for
    InvocationsPerInstance); see :func:`ready_instances`. Thread-safe: the router observes on
    the event loop while API threads and the reconcile loop read.
    """

    namespace = NAMESPACE

    def __init__(self, instances: Callable[[str, str], int] = lambda e, v: 1,
                 clock: Callable[[], float] = time.time) -> None:
        self.instances = instances
        self.clock = clock
        self._variants: dict[tuple[str, str], _Variant] = {}
        self._lock = threading.Lock()

    # --- the hot path --------------------------------------------------------------------
    def observe(self, endpoint: str, variant: str | None, status: int,
                model_seconds: float, total_seconds: float) -> None:
        """Count one invocation (``status`` is the model's answer, or modelyard's own)."""
        if variant is None:
            return
        now = self.clock()
        share = 1.0 / max(self.instances(endpoint, variant), 1)
        overhead = max(total_seconds - model_seconds, 0.0)
        model_us, overhead_us = int(model_seconds * 1e6), int(overhead * 1e6)
        error = 1 if 400 <= status < 500 else 2 if status >= 500 else 0
        with self._lock:
            series = self._variants.get((endpoint, variant))
            if series is None:
                series = self._variants[(endpoint, variant)] = _Variant()
            bucket = series.bucket(int(now))
            bucket[_N] += 1
            if error:
                bucket[error] += 1  # _E4 is 1, _E5 is 2
                series.errors[error - 1] += 1
            _add(bucket, _MODEL, model_us)
            _add(bucket, _OVERHEAD, overhead_us)
            _add(bucket, _SHARE, share)
            series.model_histogram[bisect.bisect_left(LATENCY_BOUNDS, model_seconds)] += 1
            series.overhead_histogram[bisect.bisect_left(LATENCY_BOUNDS, overhead)] += 1
            series.model_total += model_seconds
            series.overhead_total += overhead
            series.last_seen = now

    def observe_loading(self, endpoint: str, variant: str, loading: Loading) -> None:
        """Count what one multi-model invocation spent making its model ready."""
        values = {"ModelCacheHit": 1.0 if loading.hit else 0.0}
        if not loading.hit:
            values.update(ModelLoadingWaitTime=loading.wait, ModelLoadingTime=loading.load)
            if loading.download:
                values["ModelDownloadingTime"] = loading.download
            if loading.unload:
                values["ModelUnloadingTime"] = loading.unload
        second = int(self.clock())
        with self._lock:
            series = self._variants.get((endpoint, variant))
            if series is None:
                series = self._variants[(endpoint, variant)] = _Variant()
            bucket = series.loading.setdefault(second, {})
            for name, value in values.items():
                stats = bucket.get(name)
                if stats is None:
                    bucket[name] = [1.0, value, value, value]
                else:
                    stats[0] += 1
                    _add(stats, 1, value)

    # --- the metric source ---------------------------------------------------------------
    def series(self, metric: str | None, filters: Dimensions) -> Iterator[tuple[str, list[dict[str, str]], float]]:
        """Every metric of every variant observed in the kept history."""
        with self._lock:
            self._forget_idle()
            seen = sorted((key, v.last_seen, bool(v.loading)) for key, v in self._variants.items())
        for (endpoint, variant), last_seen, multi_model in seen:
            dimensions = [{"Name": ENDPOINT_DIMENSION, "Value": endpoint},
                          {"Name": VARIANT_DIMENSION, "Value": variant}]
            for name in METRIC_NAMES + (LOADING_METRICS if multi_model else ()):
                yield name, dimensions, last_seen

    def read(self, metric: str, dimensions: Dimensions, start: float, end: float,
             period: int) -> Reading | None:
        """Statistics per period; ``None`` unless the dimensions are exactly endpoint + variant."""
        key = _variant_key(dimensions)
        if key is None or metric not in METRIC_NAMES + LOADING_METRICS:
            return None
        first = math.floor(start / period) * period
        if metric in LOADING_METRICS:
            return _UNITS.get(metric, "None"), self._read_loading(key, metric, first, end, period)
        with self._lock:
            series = self._variants.get(key)
            buckets = [] if series is None else [
                (second, list(bucket)) for second, bucket in series.seconds.items()
                if first <= second < end
            ]
        merged: dict[float, list[float]] = {}
        for second, bucket in buckets:
            at = float(math.floor(second / period) * period)
            into = merged.get(at)
            if into is None:
                merged[at] = bucket
            else:
                _merge(into, bucket)
        summaries = {at: _summary(metric, merged[at]) for at in sorted(merged)}
        return _UNITS.get(metric, "None"), summaries

    def _read_loading(self, key: tuple[str, str], metric: str, first: float, end: float,
                      period: int) -> dict[float, StatisticSet]:
        with self._lock:
            series = self._variants.get(key)
            samples = [] if series is None else [
                (second, list(bucket[metric])) for second, bucket in series.loading.items()
                if first <= second < end and metric in bucket
            ]
        merged: dict[float, list[float]] = {}
        for second, stats in samples:
            at = float(math.floor(second / period) * period)
            into = merged.setdefault(at, [0.0, 0.0, math.inf, -math.inf])
            into[0] += stats[0]
            into[1] += stats[1]
            into[2], into[3] = min(into[2], stats[2]), max(into[3], stats[3])
        return {at: StatisticSet(*merged[at]) for at in sorted(merged)}

    # --- Prometheus ----------------------------------------------------------------------
    def render_prometheus(self) -> str:
        """Counters and latency histograms per endpoint and variant, in Prometheus text format."""
        with self._lock:
            self._forget_idle()
            rows = sorted(((key, _Snapshot.of(v)) for key, v in self._variants.items()),
                          key=lambda row: row[0])
        lines: list[str] = []
        _header(lines, "modelyard_endpoint_invocations_total", "counter",
                "InvokeEndpoint calls answered by a variant.")
        for (endpoint, variant), snap in rows:
            lines.append(f"modelyard_endpoint_invocations_total{_labels(endpoint, variant)} "
                         f"{sum(snap.model_histogram)}")
        _header(lines, "modelyard_endpoint_invocation_errors_total", "counter",
                "InvokeEndpoint calls that failed, by status class.")
        for (endpoint, variant), snap in rows:
            for status, count in zip(("4xx", "5xx"), snap.errors):
                lines.append("modelyard_endpoint_invocation_errors_total"
                             f"{_labels(endpoint, variant, status=status)} {count}")
        _header(lines, "modelyard_endpoint_model_latency_seconds", "histogram",
                "Time the model server took to answer.")
        for (endpoint, variant), snap in rows:
            _histogram(lines, "modelyard_endpoint_model_latency_seconds", endpoint, variant,
                       snap.model_histogram, snap.model_total)
        _header(lines, "modelyard_endpoint_overhead_latency_seconds", "histogram",
                "Time spent in modelyard around the model server.")
        for (endpoint, variant), snap in rows:
            _histogram(lines, "modelyard_endpoint_overhead_latency_seconds", endpoint, variant,
                       snap.overhead_histogram, snap.overhead_total)
        return "\n".join(lines) + "\n"

    def _forget_idle(self) -> None:
        """Drop variants with no call in the kept history (e.g. of deleted endpoints)."""
        before = self.clock() - HISTORY_SECONDS
        for key in [k for k, v in self._variants.items() if v.last_seen < before]:
            del self._variants[key]
        for variant in self._variants.values():
            variant.prune(before)


def ready_instances(table: RoutingTable) -> Callable[[str, str], int]:
    """``instances(endpoint, variant)`` read from the routing table the router uses."""

    def instances(endpoint: str, variant: str) -> int:
        route = table.routes.get(endpoint)
        if route is None:
            return 1
        for candidate in route.variants:
            if candidate.name == variant:
                return len(candidate.ports)
        return 1

    return instances


def _variant_key(dimensions: Dimensions) -> tuple[str, str] | None:
    named = {d["Name"]: d["Value"] for d in dimensions}
    if len(dimensions) != 2 or set(named) != {ENDPOINT_DIMENSION, VARIANT_DIMENSION}:
        return None
    return named[ENDPOINT_DIMENSION], named[VARIANT_DIMENSION]


def _merge(into: list[float], bucket: list[float]) -> None:
    for slot in (_N, _E4, _E5, _MODEL, _OVERHEAD, _SHARE):
        into[slot] += bucket[slot]
    for slot in (_MODEL, _OVERHEAD, _SHARE):
        into[slot + 1] = min(into[slot + 1], bucket[slot + 1])
        into[slot + 2] = max(into[slot + 2], bucket[slot + 2])


def _summary(metric: str, bucket: list[float]) -> StatisticSet:
    """One metric's statistics from a bucket: every invocation is one sample of every metric."""
    n = bucket[_N]
    if metric == "Invocations":
        return StatisticSet(n, n, 1.0, 1.0)
    if metric in ("Invocation4XXErrors", "Invocation5XXErrors"):
        errors = bucket[_E4 if metric == "Invocation4XXErrors" else _E5]
        return StatisticSet(n, errors, 1.0 if errors == n else 0.0, 1.0 if errors else 0.0)
    slot = {"ModelLatency": _MODEL, "OverheadLatency": _OVERHEAD}.get(metric, _SHARE)
    return StatisticSet(n, bucket[slot], bucket[slot + 1], bucket[slot + 2])


def _header(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _labels(endpoint: str, variant: str, **extra: str) -> str:
    pairs = {"endpoint": endpoint, "variant": variant, **extra}
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in pairs.items()) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _histogram(lines: list[str], name: str, endpoint: str, variant: str,
               counts: list[int], total: float) -> None:
    cumulative = 0
    for bound, count in zip((*LATENCY_BOUNDS, math.inf), counts):
        cumulative += count
        le = "+Inf" if bound == math.inf else repr(bound)
        lines.append(f"{name}_bucket{_labels(endpoint, variant, le=le)} {cumulative}")
    lines.append(f"{name}_sum{_labels(endpoint, variant)} {total!r}")
    lines.append(f"{name}_count{_labels(endpoint, variant)} {cumulative}")
