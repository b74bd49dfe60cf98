"""Endpoint invocation metrics: aggregation, CloudWatch reads through botocore, Prometheus text."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from botocore.session import get_session

from modelyard.api.cloudwatch_metrics import MetricsService
from modelyard.api.dispatch import JsonDispatcher
from modelyard.runtime.serving.loading import HEADER, Loading
from modelyard.serving.metrics import HISTORY_SECONDS, NAMESPACE, EndpointMetrics
from modelyard.store import open_store
from tests.api.test_cloudwatch_metrics import Dispatching
from tests.api.wire import ACCESS_KEY, ENDPOINT, REGION, SECRET_KEY

T0 = 1_700_000_040.0  # a whole minute
DIMS = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0)


@pytest.fixture
def metrics(clock: Clock) -> EndpointMetrics:
    instances = {("ep", "AllTraffic"): 2}
    made = EndpointMetrics(lambda e, v: instances.get((e, v), 1), clock=clock)
    # second 0: two good calls and a 4xx; second 1: a 5xx; second 61: one good call
    for offset, status, model, total in ((0.1, 200, 0.002, 0.003), (0.5, 200, 0.004, 0.0045),
                                         (0.9, 415, 0.001, 0.002), (1.2, 500, 0.010, 0.012),
                                         (61.0, 200, 0.003, 0.004)):
        clock.now = T0 + offset
        made.observe("ep", "AllTraffic", status, model, total)
    clock.now = T0 + 120
    return made


@pytest.fixture
def cw(tmp_path: Any, metrics: EndpointMetrics, clock: Clock) -> Any:
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    service = MetricsService(store, clock=clock, sources=[metrics])
    made = get_session().create_client(
        "cloudwatch", region_name=REGION, endpoint_url=ENDPOINT,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
    )
    made.meta.events.register("before-send", Dispatching(JsonDispatcher("cloudwatch", service.operations(), strict=True)))
    yield made
    store.close()


def _at(offset: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(T0 + offset, tz=dt.UTC)


def _stats(cw: Any, metric: str, period: int, dims: list[dict[str, str]] = DIMS) -> list[dict[str, Any]]:
    points = cw.get_metric_statistics(
        Namespace=NAMESPACE, MetricName=metric, Dimensions=dims, StartTime=_at(0), EndTime=_at(120),
        Period=period, Statistics=["Sum", "SampleCount", "Minimum", "Maximum", "Average"],
    )["Datapoints"]
    return sorted(points, key=lambda p: p["Timestamp"])


def test_minute_buckets_count_invocations_and_errors(cw: Any) -> None:
    invocations = _stats(cw, "Invocations", 60)
    assert [(p["Timestamp"], p["Sum"], p["SampleCount"]) for p in invocations] == [(_at(0), 4.0, 4.0), (_at(60), 1.0, 1.0)]
    [first, second] = _stats(cw, "Invocation4XXErrors", 60)
    assert (first["Sum"], first["Average"], first["Minimum"], first["Maximum"]) == (1.0, 0.25, 0.0, 1.0)
    assert (second["Sum"], second["Maximum"]) == (0.0, 0.0)
    assert [p["Sum"] for p in _stats(cw, "Invocation5XXErrors", 60)] == [1.0, 0.0]


def test_latency_is_in_microseconds_with_min_max(cw: Any) -> None:
    [first, _] = _stats(cw, "ModelLatency", 60)
    assert first["Unit"] == "Microseconds"
    assert (first["SampleCount"], first["Sum"], first["Minimum"], first["Maximum"]) == (4.0, 17000.0, 1000.0, 10000.0)
    overhead = _stats(cw, "OverheadLatency", 60)[0]
    assert overhead["Sum"] == pytest.approx(1000 + 500 + 1000 + 2000, abs=4)


def test_one_second_buckets_and_per_instance_share(cw: Any) -> None:
    seconds = _stats(cw, "Invocations", 1)
    assert [(p["Timestamp"], p["Sum"]) for p in seconds] == [(_at(0), 3.0), (_at(1), 1.0), (_at(61), 1.0)]
    per_instance = _stats(cw, "InvocationsPerInstance", 60)
    assert [p["Sum"] for p in per_instance] == [2.0, 0.5]  # two instances: each call counts 1/2


def test_dimension_sets_name_series_exactly(cw: Any) -> None:
    assert _stats(cw, "Invocations", 60, DIMS[:1]) == []
    assert _stats(cw, "Invocations", 60, [*DIMS[::-1]]) != []  # order does not matter
    listed = cw.list_metrics(Namespace=NAMESPACE)["Metrics"]
    assert {m["MetricName"] for m in listed} == {"Invocations", "Invocation4XXErrors", "Invocation5XXErrors",
                                                 "ModelLatency", "OverheadLatency", "InvocationsPerInstance"}
    assert all(m["Dimensions"] == DIMS for m in listed)
    assert cw.list_metrics(Namespace=NAMESPACE, Dimensions=[{"Name": "EndpointName", "Value": "other"}])["Metrics"] == []
    everything = cw.list_metrics()["Metrics"]
    assert {m["Namespace"] for m in everything} == {NAMESPACE}


def test_get_metric_data_reads_the_same_buckets(cw: Any) -> None:
    result = cw.get_metric_data(StartTime=_at(0), EndTime=_at(120), ScanBy="TimestampAscending", MetricDataQueries=[
        {"Id": "errors", "MetricStat": {"Metric": {"Namespace": NAMESPACE, "MetricName": "Invocation4XXErrors",
                                                   "Dimensions": DIMS}, "Period": 60, "Stat": "Sum"}}])
    [series] = result["MetricDataResults"]
    assert series["Values"] == [1.0, 0.0]


def test_history_is_bounded(metrics: EndpointMetrics, clock: Clock) -> None:
    clock.now = T0 + HISTORY_SECONDS + 100
    metrics.observe("ep", "AllTraffic", 200, 0.001, 0.002)
    reading = metrics.read("Invocations", DIMS, T0, clock.now + 1, 60)
    assert reading is not None
    assert list(reading[1]) == [float((int(clock.now) // 60) * 60)]  # the old seconds are gone


def test_prometheus_text(metrics: EndpointMetrics) -> None:
    lines = metrics.render_prometheus().splitlines()
    labels = '{endpoint="ep",variant="AllTraffic"}'
    assert f"modelyard_endpoint_invocations_total{labels} 5" in lines
    assert 'modelyard_endpoint_invocation_errors_total{endpoint="ep",variant="AllTraffic",status="4xx"} 1' in lines
    assert 'modelyard_endpoint_invocation_errors_total{endpoint="ep",variant="AllTraffic",status="5xx"} 1' in lines
    assert 'modelyard_endpoint_model_latency_seconds_bucket{endpoint="ep",variant="AllTraffic",le="0.001"} 1' in lines
    assert 'modelyard_endpoint_model_latency_seconds_bucket{endpoint="ep",variant="AllTraffic",le="0.005"} 4' in lines
    assert 'modelyard_endpoint_model_latency_seconds_bucket{endpoint="ep",variant="AllTraffic",le="+Inf"} 5' in lines
    assert f"modelyard_endpoint_model_latency_seconds_count{labels} 5" in lines
    assert "# TYPE modelyard_endpoint_overhead_latency_seconds histogram" in lines


def test_label_values_are_escaped(clock: Clock) -> None:
    made = EndpointMetrics(clock=clock)
    made.observe('we"ird\\', "v", 200, 0.001, 0.001)
    assert 'endpoint="we\\"ird\\\\"' in made.render_prometheus()


def test_multi_model_loading_metrics_have_their_own_samples(tmp_path: Any, clock: Clock) -> None:
    made = EndpointMetrics(clock=clock)
    mme = [{"Name": "EndpointName", "Value": "mme"}, {"Name": "VariantName", "Value": "AllTraffic"}]
    # a miss that downloaded and evicted, a miss with the files on disk, then two hits
    for offset, loading in ((0.1, Loading(False, download=3000, load=20000, unload=500)),
                            (0.5, Loading(False, download=0, load=10000, unload=0)),
                            (0.7, Loading()), (1.5, Loading())):
        clock.now = T0 + offset
        made.observe("mme", "AllTraffic", 200, 0.002, 0.003)
        made.observe_loading("mme", "AllTraffic", loading)
    made.observe("ep", "AllTraffic", 200, 0.002, 0.003)  # a single-model variant: none of them
    clock.now = T0 + 120
    store = open_store(f"sqlite:///{tmp_path / 'm.db'}")
    cw = get_session().create_client(
        "cloudwatch", region_name=REGION, endpoint_url=ENDPOINT,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
    )
    service = MetricsService(store, clock=clock, sources=[made])
    cw.meta.events.register("before-send", Dispatching(JsonDispatcher("cloudwatch", service.operations(), strict=True)))
    [hits] = _stats(cw, "ModelCacheHit", 60, mme)
    assert (hits["SampleCount"], hits["Sum"], hits["Average"]) == (4.0, 2.0, 0.5)
    [wait] = _stats(cw, "ModelLoadingWaitTime", 60, mme)
    assert wait["Unit"] == "Microseconds"
    assert (wait["SampleCount"], wait["Sum"], wait["Minimum"], wait["Maximum"]) == (2.0, 33500.0, 10000.0, 23500.0)
    assert [(p["SampleCount"], p["Sum"]) for p in _stats(cw, "ModelLoadingTime", 60, mme)] == [(2.0, 30000.0)]
    assert [(p["SampleCount"], p["Sum"]) for p in _stats(cw, "ModelDownloadingTime", 60, mme)] == [(1.0, 3000.0)]
    assert [(p["SampleCount"], p["Sum"]) for p in _stats(cw, "ModelUnloadingTime", 60, mme)] == [(1.0, 500.0)]
    per_second = _stats(cw, "ModelCacheHit", 1, mme)  # seconds 0 and 1
    assert [(p["SampleCount"], p["Sum"]) for p in per_second] == [(3.0, 1.0), (1.0, 1.0)]
    listed = {(m["MetricName"], m["Dimensions"][0]["Value"]) for m in cw.list_metrics(Namespace=NAMESPACE)["Metrics"]}
    assert ("ModelCacheHit", "mme") in listed and ("ModelCacheHit", "ep") not in listed
    assert _stats(cw, "ModelCacheHit", 60) == []  # the single-model variant has no samples
    store.close()


def test_loading_header_round_trip() -> None:
    miss = Loading(False, download=12, load=345, unload=6)
    name, value = miss.header()
    assert name == HEADER and value == b"miss;download=12;load=345;unload=6"
    assert Loading.parse(value) == miss and miss.wait == 363
    assert Loading.parse(Loading().header()[1]) == Loading()
    for bad in (None, b"", b"miss;load=1", b"miss;download=1;load=x;unload=0", b"maybe"):
        assert Loading.parse(bad) is None
