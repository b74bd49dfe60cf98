"""CloudWatch metrics over training-job metric points, through a real botocore client.

Requests are serialised and responses parsed by botocore exactly as on the network; only the
transport is replaced by a call into the dispatcher, so no server process is needed.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse
from botocore.exceptions import ClientError
from botocore.session import get_session

from modelyard.api.cloudwatch_metrics import (
    NAMESPACE,
    MetricsService,
    bucket_values,
    host_of,
)
from modelyard.api.dispatch import JsonDispatcher
from modelyard.store import MetadataStore, MetricPoint, Record, open_store
from modelyard.training.controller import _SEQ_ATTEMPT, _SEQ_HOST
from tests.api.wire import (
    ACCESS_KEY,
    ENDPOINT,
    REGION,
    SECRET_KEY,
    Capture,
    RawBody,
    client,
)

T0 = 1_699_999_980.0  # a whole minute, so that 60-second buckets start at T0
NOW = T0 + 600


def _seq(attempt: int, host_index: int, line: int) -> int:
    return attempt * _SEQ_ATTEMPT + host_index * _SEQ_HOST + line


# job-a: two hosts; algo-1 logs loss at T0+0.2, +1.3, +2.1 (and +2.6); algo-2 logs at T0+0.7.
POINTS_A = [
    MetricPoint("loss", 0.9, T0 + 0.2, _seq(1, 0, 3)),
    MetricPoint("loss", 0.5, T0 + 1.3, _seq(1, 0, 7)),
    MetricPoint("loss", 0.3, T0 + 2.1, _seq(1, 0, 9)),
    MetricPoint("loss", 0.1, T0 + 2.6, _seq(1, 0, 10)),
    MetricPoint("loss", 0.8, T0 + 0.7, _seq(1, 1, 2)),
    MetricPoint("acc", 0.75, T0 + 2.2, _seq(1, 0, 11)),
]


def _record(name: str) -> Record:
    return Record(
        kind="TrainingJob", name=name, status="Completed", created=T0, modified=T0, version=0,
        arn=f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{name}",
        spec={}, state={},
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'modelyard.db'}")
    for name in ("job-a", "job-b", "job-none"):
        opened.create(_record(name))
    opened.add_metric_points(_record("job-a").arn, POINTS_A)
    opened.add_metric_points(_record("job-b").arn, [MetricPoint("loss", 2.0, T0 - 5 * 3600, _seq(1, 0, 1))])
    yield opened
    opened.close()


class Dispatching:
    """A ``before-send`` hook that answers each request by running the dispatcher."""

    def __init__(self, dispatcher: JsonDispatcher) -> None:
        self.dispatcher = dispatcher
        self.headers: list[dict[str, str]] = []

    def __call__(self, request: Any, **kwargs: Any) -> AWSResponse:
        operation = request.headers["X-Amz-Target"].decode().partition(".")[2]
        status, headers, body = self.dispatcher.dispatch(operation, request.body)
        self.headers.append(headers)
        return AWSResponse(request.url, status, {k.lower(): v for k, v in headers.items()}, RawBody(body))


@pytest.fixture
def served(store: MetadataStore) -> Dispatching:
    return Dispatching(JsonDispatcher("cloudwatch", MetricsService(store, clock=lambda: NOW).operations(), strict=True))


@pytest.fixture
def cw(served: Dispatching) -> Any:
    made = get_session().create_client(
        "cloudwatch", region_name=REGION, endpoint_url=ENDPOINT,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
    )
    made.meta.events.register("before-send", served)
    return made


def _at(offset: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(T0 + offset, tz=dt.UTC)


def _stats(cw: Any, dimensions: list[dict[str, str]], period: int = 1, **extra: Any) -> list[dict[str, Any]]:
    request: dict[str, Any] = {
        "Namespace": NAMESPACE, "MetricName": "loss", "Dimensions": dimensions, "StartTime": _at(0),
        "EndTime": _at(60), "Period": period,
        "Statistics": ["Average", "Sum", "Minimum", "Maximum", "SampleCount"],
    }
    request.update(extra)
    points = cw.get_metric_statistics(**{k: v for k, v in request.items() if v is not None})["Datapoints"]
    return sorted(points, key=lambda p: p["Timestamp"])


JOB_A = [{"Name": "TrainingJobName", "Value": "job-a"}]


def test_the_client_speaks_json_1_0_with_the_granite_target() -> None:
    # pins the wire format app.py routes on: a botocore upgrade that changes it fails here
    capture = Capture(reply=b'{"Metrics":[]}')
    client("cloudwatch", capture).list_metrics(Namespace=NAMESPACE)
    [sent] = capture.sent
    assert sent.headers["x-amz-target"] == "GraniteServiceVersion20100801.ListMetrics"
    assert sent.headers["content-type"] == "application/x-amz-json-1.0"
    assert json.loads(sent.body) == {"Namespace": NAMESPACE}


def test_host_comes_from_the_point_sequence() -> None:
    assert host_of(MetricPoint("m", 1.0, T0, _seq(1, 0, 5))) == 1
    assert host_of(MetricPoint("m", 1.0, T0, _seq(3, 11, 99))) == 12


def test_buckets_align_to_the_epoch_and_round_the_start_down() -> None:
    buckets = bucket_values(POINTS_A[:4], start=T0 + 0.5, end=T0 + 2.6, period=1)
    assert buckets == {T0: [0.9], T0 + 1: [0.5], T0 + 2: [0.3]}  # 2.6 is at the exclusive end


def test_list_metrics_has_a_job_series_and_one_per_host(cw: Any) -> None:
    metrics = cw.list_metrics(Namespace=NAMESPACE, Dimensions=[{"Name": "TrainingJobName", "Value": "job-a"}])["Metrics"]
    assert metrics == [
        {"Namespace": NAMESPACE, "MetricName": "acc", "Dimensions": JOB_A},
        {"Namespace": NAMESPACE, "MetricName": "loss", "Dimensions": JOB_A},
    ]
    hosts = cw.list_metrics(Namespace=NAMESPACE, MetricName="loss", Dimensions=[{"Name": "Host"}])["Metrics"]
    assert [m["Dimensions"][0]["Value"] for m in hosts] == ["job-a/algo-1", "job-a/algo-2", "job-b/algo-1"]
    one = cw.list_metrics(Dimensions=[{"Name": "Host", "Value": "job-a/algo-2"}])["Metrics"]
    assert one == [{"Namespace": NAMESPACE, "MetricName": "loss", "Dimensions": [{"Name": "Host", "Value": "job-a/algo-2"}]}]


def test_list_metrics_filters_and_empty_answers(cw: Any) -> None:
    everything = cw.list_metrics()["Metrics"]
    assert len(everything) == 3 + 2 + 2  # job-a: loss×(job, 2 hosts), acc×(job, 1 host); job-b: 2
    assert "NextToken" not in cw.list_metrics()
    recent = cw.list_metrics(RecentlyActive="PT3H")["Metrics"]
    assert {m["Dimensions"][0]["Value"].split("/")[0] for m in recent} == {"job-a"}
    assert cw.list_metrics(Namespace="AWS/EC2")["Metrics"] == []
    assert cw.list_metrics(Dimensions=[{"Name": "TrainingJobName", "Value": "no-such-job"}])["Metrics"] == []
    assert cw.list_metrics(Dimensions=[{"Name": "TrainingJobName", "Value": "job-none"}])["Metrics"] == []


def test_list_metrics_pages_with_next_token(store: MetadataStore, cw: Any) -> None:
    arn = _record("job-none").arn
    store.add_metric_points(arn, [MetricPoint(f"m{i:03}", 1.0, T0, _seq(1, 0, i)) for i in range(600)])
    pages = list(cw.get_paginator("list_metrics").paginate(Dimensions=[{"Name": "Host", "Value": "job-none/algo-1"}]))
    assert [len(p["Metrics"]) for p in pages] == [500, 100]
    names = [m["MetricName"] for p in pages for m in p["Metrics"]]
    assert names == [f"m{i:03}" for i in range(600)]
    pages = list(cw.get_paginator("list_metrics").paginate(Dimensions=[{"Name": "TrainingJobName"}]))
    assert [len(p["Metrics"]) for p in pages] == [500, 2 + 1 + 600 - 500]  # job-a: acc, loss; job-b: loss
    with pytest.raises(cw.exceptions.InvalidParameterValueException):
        cw.list_metrics(NextToken="not-a-token")


def test_statistics_per_second_over_all_hosts(cw: Any) -> None:
    points = _stats(cw, JOB_A)
    assert [(p["Timestamp"], p["SampleCount"], p["Average"]) for p in points] == [
        (_at(0), 2.0, pytest.approx(0.85)),
        (_at(1), 1.0, 0.5),
        (_at(2), 2.0, pytest.approx(0.2)),
    ]
    assert points[2]["Minimum"] == 0.1 and points[2]["Maximum"] == 0.3
    assert points[2]["Sum"] == pytest.approx(0.4)
    assert all(p["Unit"] == "None" for p in points)


def test_statistics_of_one_host_and_of_a_minute(cw: Any) -> None:
    algo2 = _stats(cw, [{"Name": "Host", "Value": "job-a/algo-2"}])
    assert [(p["Timestamp"], p["Average"]) for p in algo2] == [(_at(0), 0.8)]
    minute = _stats(cw, [{"Name": "Host", "Value": "job-a/algo-1"}], period=60)
    assert [(p["Timestamp"], p["SampleCount"], p["Maximum"]) for p in minute] == [(_at(0), 4.0, 0.9)]
    only = cw.get_metric_statistics(
        Namespace=NAMESPACE, MetricName="loss", Dimensions=JOB_A, StartTime=_at(0), EndTime=_at(60),
        Period=60, Statistics=["Maximum"],
    )
    assert only["Label"] == "loss"
    assert [sorted(p) for p in only["Datapoints"]] == [["Maximum", "Timestamp", "Unit"]]


def test_statistics_that_match_no_series_are_empty(cw: Any) -> None:
    assert _stats(cw, JOB_A, Namespace="AWS/EC2") == []
    assert _stats(cw, []) == []
    assert _stats(cw, JOB_A + [{"Name": "Host", "Value": "job-a/algo-1"}]) == []  # dimension sets are exact
    assert _stats(cw, [{"Name": "Host", "Value": "job-a/algo-3"}]) == []
    assert _stats(cw, [{"Name": "TrainingJobName", "Value": "no-such-job"}]) == []
    assert _stats(cw, JOB_A, Unit="Seconds") == []
    assert _stats(cw, JOB_A, StartTime=_at(3)) == []


def test_statistics_errors_parse_to_cloudwatch_codes(cw: Any, served: Dispatching) -> None:
    with pytest.raises(cw.exceptions.InvalidParameterValueException) as err:
        _stats(cw, JOB_A, Period=7)
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"
    assert "multiple of 60" in err.value.response["Error"]["Message"]
    assert served.headers[-1]["x-amzn-query-error"] == "InvalidParameterValue;Sender"
    assert served.headers[-1]["Content-Type"] == "application/x-amz-json-1.0"
    with pytest.raises(cw.exceptions.InvalidParameterValueException):
        _stats(cw, JOB_A, StartTime=_at(60), EndTime=_at(0))
    with pytest.raises(cw.exceptions.InvalidParameterCombinationException) as err:
        _stats(cw, JOB_A, EndTime=_at(3600))  # 3,600 one-second datapoints > 1,440
    assert "3,600 datapoints" in err.value.response["Error"]["Message"]
    with pytest.raises(cw.exceptions.MissingRequiredParameterException):
        _stats(cw, JOB_A, Statistics=None)
    with pytest.raises(ClientError) as err:
        _stats(cw, JOB_A, MetricName="x" * 256)
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert "metricName" in err.value.response["Error"]["Message"]


def _query(query_id: str, dimensions: list[dict[str, str]], stat: str = "Average", **extra: Any) -> dict[str, Any]:
    metric = {"Namespace": NAMESPACE, "MetricName": "loss", "Dimensions": dimensions}
    return {"Id": query_id, "MetricStat": {"Metric": metric, "Period": 1, "Stat": stat}, **extra}


def test_metric_data_returns_each_query_in_scan_order(cw: Any) -> None:
    answer = cw.get_metric_data(
        MetricDataQueries=[
            _query("all", JOB_A, Label="loss (all hosts)"),
            _query("host2", [{"Name": "Host", "Value": "job-a/algo-2"}], stat="Maximum"),
            _query("hidden", JOB_A, ReturnData=False),
            _query("elsewhere", JOB_A, MetricStat={"Metric": {"Namespace": "AWS/EC2", "MetricName": "loss"}, "Period": 1, "Stat": "Sum"}),
        ],
        StartTime=_at(0), EndTime=_at(60), ScanBy="TimestampAscending",
    )
    results = {r["Id"]: r for r in answer["MetricDataResults"]}
    assert set(results) == {"all", "host2", "elsewhere"}
    assert results["all"]["Label"] == "loss (all hosts)"
    assert results["all"]["Timestamps"] == [_at(0), _at(1), _at(2)]
    assert results["all"]["Values"] == [pytest.approx(0.85), 0.5, pytest.approx(0.2)]
    assert results["all"]["StatusCode"] == "Complete"
    assert (results["host2"]["Label"], results["host2"]["Values"]) == ("loss", [0.8])
    assert results["elsewhere"]["Values"] == [] and results["elsewhere"]["StatusCode"] == "Complete"
    newest_first = cw.get_metric_data(MetricDataQueries=[_query("all", JOB_A)], StartTime=_at(0), EndTime=_at(60))
    assert newest_first["MetricDataResults"][0]["Timestamps"] == [_at(2), _at(1), _at(0)]


def test_metric_data_pages_by_max_datapoints(cw: Any) -> None:
    pages = list(cw.get_paginator("get_metric_data").paginate(
        MetricDataQueries=[_query("all", JOB_A), _query("host1", [{"Name": "Host", "Value": "job-a/algo-1"}])],
        StartTime=_at(0), EndTime=_at(60), ScanBy="TimestampAscending", MaxDatapoints=4,
    ))
    assert len(pages) == 2
    first = {r["Id"]: r for r in pages[0]["MetricDataResults"]}
    second = {r["Id"]: r for r in pages[1]["MetricDataResults"]}
    assert (len(first["all"]["Values"]), first["all"]["StatusCode"]) == (3, "Complete")
    assert (len(first["host1"]["Values"]), first["host1"]["StatusCode"]) == (1, "PartialData")
    assert first["host1"]["Values"] + second["host1"]["Values"] == [0.9, 0.5, pytest.approx(0.2)]
    assert second["all"]["Values"] == [] and second["host1"]["StatusCode"] == "Complete"


def test_metric_data_rejects_expressions_and_duplicate_ids(cw: Any) -> None:
    with pytest.raises(cw.exceptions.InvalidParameterValueException) as err:
        cw.get_metric_data(MetricDataQueries=[{"Id": "e1", "Expression": "SUM(METRICS())"}], StartTime=_at(0), EndTime=_at(60))
    assert "expressions are not supported" in err.value.response["Error"]["Message"]
    with pytest.raises(cw.exceptions.InvalidParameterValueException):
        cw.get_metric_data(MetricDataQueries=[_query("q", JOB_A), _query("q", JOB_A)], StartTime=_at(0), EndTime=_at(60))


def test_extended_statistics_are_refused(cw: Any) -> None:
    with pytest.raises(cw.exceptions.InvalidParameterValueException):
        _stats(cw, JOB_A, Statistics=None, ExtendedStatistics=["p99"])
    with pytest.raises(cw.exceptions.InvalidParameterCombinationException):
        _stats(cw, JOB_A, ExtendedStatistics=["p99"])


def test_json_1_1_services_keep_their_content_type_and_no_query_header(store: MetadataStore) -> None:
    sagemaker = JsonDispatcher("sagemaker", {})
    status, headers, body = sagemaker.dispatch("DescribeTrainingJob", b"{}")
    assert (status, headers["Content-Type"]) == (400, "application/x-amz-json-1.1")
    assert "x-amzn-query-error" not in headers
    assert json.loads(body)["__type"] == "UnknownOperationException"
    cloudwatch = JsonDispatcher("cloudwatch", MetricsService(store).operations())
    status, headers, body = cloudwatch.dispatch("PutMetricData", b"{}")
    assert (status, headers["Content-Type"]) == (400, "application/x-amz-json-1.0")
    assert headers["x-amzn-query-error"] == "UnknownOperationException;Sender"
