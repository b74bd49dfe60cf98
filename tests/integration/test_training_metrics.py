"""MetricDefinitions values as a time series through the CloudWatch metrics API, on a live server."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from typing import Any

import pytest

from modelyard.sdk.analytics import training_job_metrics
from modelyard.sdk.session import Session
from tests.integration.conftest import make_sourcedir, script_job
from tests.support.server import RunningServer, wait_for_job

NAMESPACE = "/aws/sagemaker/TrainingJobs"
LOSSES = [0.9, 0.6, 0.35]
# More than a second apart, so each value lands in its own one-second bucket.
SCRIPT = f"""
import time
for step, loss in enumerate({LOSSES!r}):
    if step:
        time.sleep(1.1)
    print(f"step={{step}} loss={{loss}}", flush=True)
print("acc=0.5", flush=True)
"""
DEFINITIONS = [
    {"Name": "train:loss", "Regex": "loss=([0-9.]+)"},
    {"Name": "train:acc", "Regex": "acc=([0-9.]+)"},
]


@pytest.fixture(scope="module")
def job(server: RunningServer, sm: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    code = make_sourcedir(tmp_path_factory.mktemp("code"), SCRIPT)
    sm.create_training_job(**script_job(
        "metrics-1", code, "s3://b/o", AlgorithmSpecification={"MetricDefinitions": DEFINITIONS},
    ))
    described = wait_for_job(sm, "metrics-1")
    assert described["TrainingJobStatus"] == "Completed", described.get("FailureReason")
    return described


@pytest.fixture(scope="module")
def cw(server: RunningServer) -> Any:
    return server.client("cloudwatch")


def _window(job: dict[str, Any]) -> dict[str, dt.datetime]:
    return {
        "StartTime": job["TrainingStartTime"] - dt.timedelta(seconds=1),
        "EndTime": job["TrainingEndTime"] + dt.timedelta(seconds=2),
    }


def test_list_metrics_finds_each_metric_per_job_and_per_host(cw: Any, job: dict[str, Any]) -> None:
    by_job = cw.list_metrics(Namespace=NAMESPACE, Dimensions=[{"Name": "TrainingJobName", "Value": "metrics-1"}])
    assert [(m["Namespace"], m["MetricName"], m["Dimensions"]) for m in by_job["Metrics"]] == [
        (NAMESPACE, name, [{"Name": "TrainingJobName", "Value": "metrics-1"}])
        for name in ("train:acc", "train:loss")
    ]
    by_host = cw.list_metrics(Namespace=NAMESPACE, MetricName="train:loss", Dimensions=[{"Name": "Host", "Value": "metrics-1/algo-1"}])
    assert [m["Dimensions"] for m in by_host["Metrics"]] == [[{"Name": "Host", "Value": "metrics-1/algo-1"}]]


def test_statistics_per_second_match_the_printed_values(cw: Any, job: dict[str, Any]) -> None:
    for dimension in ({"Name": "Host", "Value": "metrics-1/algo-1"}, {"Name": "TrainingJobName", "Value": "metrics-1"}):
        answer = cw.get_metric_statistics(
            Namespace=NAMESPACE, MetricName="train:loss", Dimensions=[dimension], Period=1,
            Statistics=["Average", "SampleCount"], **_window(job),
        )
        points = sorted(answer["Datapoints"], key=lambda p: p["Timestamp"])
        assert [p["Average"] for p in points] == LOSSES
        assert [p["SampleCount"] for p in points] == [1.0] * len(LOSSES)
        assert all(p["Unit"] == "None" for p in points)
        assert all(_window(job)["StartTime"] <= p["Timestamp"] < _window(job)["EndTime"] for p in points)
    # the last value is also the job's final metric
    final = {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
    assert final == {"train:loss": LOSSES[-1], "train:acc": 0.5}


def test_sdk_style_minute_statistics(cw: Any, job: dict[str, Any]) -> None:
    # TrainingJobAnalytics' request: TrainingJobName dimension, Period 60, end padded a minute
    answer = cw.get_metric_statistics(
        Namespace=NAMESPACE, MetricName="train:loss",
        Dimensions=[{"Name": "TrainingJobName", "Value": "metrics-1"}],
        StartTime=job["TrainingStartTime"], EndTime=job["TrainingEndTime"] + dt.timedelta(minutes=1),
        Period=60, Statistics=["Average", "Minimum", "Maximum", "SampleCount"],
    )
    points = answer["Datapoints"]
    assert sum(p["SampleCount"] for p in points) == len(LOSSES)
    assert min(p["Minimum"] for p in points) == min(LOSSES)
    assert max(p["Maximum"] for p in points) == max(LOSSES)


def test_metric_data_returns_the_series(cw: Any, job: dict[str, Any]) -> None:
    metric = {"Namespace": NAMESPACE, "MetricName": "train:loss", "Dimensions": [{"Name": "TrainingJobName", "Value": "metrics-1"}]}
    answer = cw.get_metric_data(
        MetricDataQueries=[{"Id": "loss", "MetricStat": {"Metric": metric, "Period": 1, "Stat": "Average"}}],
        ScanBy="TimestampAscending", **_window(job),
    )
    [result] = answer["MetricDataResults"]
    assert (result["Id"], result["Label"], result["StatusCode"]) == ("loss", "train:loss", "Complete")
    assert result["Values"] == LOSSES
    assert result["Timestamps"] == sorted(result["Timestamps"])
    assert (result["Timestamps"][-1] - result["Timestamps"][0]).total_seconds() >= 2


def test_other_namespaces_and_jobs_are_empty(cw: Any, job: dict[str, Any]) -> None:
    assert cw.list_metrics(Namespace="AWS/SageMaker")["Metrics"] == []
    answer = cw.get_metric_statistics(
        Namespace="AWS/SageMaker", MetricName="train:loss", Period=1, Statistics=["Average"],
        Dimensions=[{"Name": "TrainingJobName", "Value": "metrics-1"}], **_window(job),
    )
    assert answer["Datapoints"] == []
    assert cw.list_metrics(Dimensions=[{"Name": "TrainingJobName", "Value": "no-such-job"}])["Metrics"] == []


def test_bad_period_is_invalid_parameter_value(cw: Any, job: dict[str, Any]) -> None:
    with pytest.raises(cw.exceptions.InvalidParameterValueException) as err:
        cw.get_metric_statistics(
            Namespace=NAMESPACE, MetricName="train:loss", Period=7, Statistics=["Average"],
            Dimensions=[{"Name": "TrainingJobName", "Value": "metrics-1"}], **_window(job),
        )
    assert err.value.response["Error"]["Code"] == "InvalidParameterValue"


def test_sdk_dataframe(server: RunningServer, job: dict[str, Any]) -> None:
    frame = training_job_metrics(Session(endpoint_url=server.url, home=server.home), "metrics-1")
    assert list(frame.columns) == ["timestamp", "metric_name", "value"]
    assert str(frame["timestamp"].dtype).startswith("datetime64") and str(frame["timestamp"].dt.tz) == "UTC"
    assert frame[frame.metric_name == "train:loss"]["value"].tolist() == LOSSES
    assert frame[frame.metric_name == "train:acc"]["value"].tolist() == [0.5]


def _cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args, "--home", str(server.home), "--endpoint-url", server.url],
        check=False, capture_output=True, text=True, timeout=60, env=server.env,
    )


def test_cli_prints_the_series(server: RunningServer, job: dict[str, Any]) -> None:
    result = _cli(server, "training-jobs", "metrics", "metrics-1", "-o", "json")
    assert result.returncode == 0, result.stderr
    rows = json.loads(result.stdout)
    assert [(r["metric_name"], r["value"]) for r in rows] == [("train:acc", 0.5)] + [("train:loss", v) for v in LOSSES]
    assert all(dt.datetime.fromisoformat(r["timestamp"]).tzinfo is not None for r in rows)
    table = _cli(server, "training-jobs", "metrics", "metrics-1")
    assert table.returncode == 0, table.stderr
    loss_lines = [line for line in table.stdout.splitlines() if "train:loss" in line]
    assert [line.split()[-1] for line in loss_lines] == [str(v) for v in LOSSES]
