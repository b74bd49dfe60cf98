"""Endpoint metrics, alarms and autoscaling through boto3 against a real server.

The server runs with 1-second target-tracking datapoints, so autoscaling reacts in seconds.
"""

from __future__ import annotations

import datetime as dt
import time
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from tests.integration.endpoint_helpers import (
    create_model,
    csv_rows,
    endpoint_config,
    model_tar,
    wait_in_service,
    wait_until,
)
from tests.support.server import RunningServer, start_server

xgboost = pytest.importorskip("xgboost")

NAMESPACE = "AWS/SageMaker"
RESOURCE = "endpoint/scaled/variant/AllTraffic"
TARGET = {"ServiceNamespace": "sagemaker", "ResourceId": RESOURCE,
          "ScalableDimension": "sagemaker:variant:DesiredInstanceCount"}


def _dims(endpoint: str) -> list[dict[str, str]]:
    return [{"Name": "EndpointName", "Value": endpoint}, {"Name": "VariantName", "Value": "AllTraffic"}]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("home"), {"MODELYARD_AUTOSCALING_PERIOD_SECONDS": "1"})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def model(sm: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    from sklearn.datasets import load_breast_cancer

    data = load_breast_cancer()
    booster = xgboost.train({"objective": "binary:logistic", "max_depth": 2},
                            xgboost.DMatrix(data.data, label=data.target), num_boost_round=3)
    tar = model_tar(tmp_path_factory.mktemp("model"), {"xgboost-model": bytes(booster.save_raw("ubj"))})
    create_model(sm, "metered-model", tar)
    endpoint_config(sm, "metered-config", [("AllTraffic", "metered-model", 1.0)])
    return "metered-config"


def _endpoint(sm: Any, name: str, config: str) -> str:
    sm.create_endpoint(EndpointName=name, EndpointConfigName=config)
    wait_in_service(sm, name)
    return name


def _invoke(runtime: Any, endpoint: str, good: int, bad: int) -> None:
    body = csv_rows(1)[1]
    for _ in range(good):
        runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)
    for _ in range(bad):
        with pytest.raises(ClientError):
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType="application/x-unknown", Body=b"abc")


def _sum(cw: Any, endpoint: str, metric: str, statistic: str = "Sum") -> float:
    now = dt.datetime.now(dt.UTC)
    points = cw.get_metric_statistics(
        Namespace=NAMESPACE, MetricName=metric, Dimensions=_dims(endpoint), Period=60,
        StartTime=now - dt.timedelta(minutes=10), EndTime=now + dt.timedelta(minutes=1), Statistics=[statistic],
    )["Datapoints"]
    return sum(p[statistic] for p in points)


def test_invocation_metrics_in_cloudwatch_and_prometheus(server: RunningServer, sm: Any, model: str) -> None:
    endpoint = _endpoint(sm, "metered", model)
    _invoke(server.client("sagemaker-runtime"), endpoint, good=12, bad=3)
    cw = server.client("cloudwatch")
    assert _sum(cw, endpoint, "Invocations") == 15
    assert _sum(cw, endpoint, "Invocation4XXErrors") == 3
    assert _sum(cw, endpoint, "Invocation5XXErrors") == 0
    assert _sum(cw, endpoint, "ModelLatency", "SampleCount") == 15
    assert _sum(cw, endpoint, "ModelLatency", "Minimum") > 0
    assert _sum(cw, endpoint, "InvocationsPerInstance") == 15  # one instance
    listed = cw.list_metrics(Namespace=NAMESPACE, Dimensions=[{"Name": "EndpointName", "Value": endpoint}])["Metrics"]
    assert {"Invocations", "ModelLatency", "Invocation4XXErrors"} <= {m["MetricName"] for m in listed}
    with urllib.request.urlopen(server.url + "/metrics", timeout=10) as response:  # unsigned on loopback
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        lines = response.read().decode().splitlines()
    labels = f'endpoint="{endpoint}",variant="AllTraffic"'
    assert f"modelyard_endpoint_invocations_total{{{labels}}} 15" in lines
    assert f'modelyard_endpoint_invocation_errors_total{{{labels},status="4xx"}} 3' in lines
    assert f"modelyard_endpoint_model_latency_seconds_count{{{labels}}} 15" in lines


def test_an_alarm_on_4xx_errors_fires_and_clears(server: RunningServer, sm: Any, model: str) -> None:
    endpoint = "metered" if _exists(sm, "metered") else _endpoint(sm, "metered", model)
    cw = server.client("cloudwatch")
    cw.put_metric_alarm(
        AlarmName="metered-4xx", Namespace=NAMESPACE, MetricName="Invocation4XXErrors", Dimensions=_dims(endpoint),
        Statistic="Sum", Period=1, EvaluationPeriods=3, DatapointsToAlarm=1, Threshold=0.0,
        ComparisonOperator="GreaterThanThreshold", TreatMissingData="notBreaching",
    )

    def state() -> str:
        return str(cw.describe_alarms(AlarmNames=["metered-4xx"])["MetricAlarms"][0]["StateValue"])

    wait_until(lambda: state() == "OK", 15, "the alarm never evaluated to OK")
    time.sleep(3.5)  # past the range: errors of the test before no longer count
    wait_until(lambda: state() == "OK", 15, "the alarm did not settle on OK")
    _invoke(server.client("sagemaker-runtime"), endpoint, good=2, bad=2)
    wait_until(lambda: state() == "ALARM", 15, "bad requests did not fire the alarm")
    [alarm] = cw.describe_alarms(StateValue="ALARM", AlarmNamePrefix="metered-")["MetricAlarms"]
    assert alarm["StateReason"].startswith("Threshold Crossed: 1 out of the last 3 datapoints [2.0 (")
    wait_until(lambda: state() == "OK", 15, "the alarm did not clear")
    cw.set_alarm_state(AlarmName="metered-4xx", StateValue="ALARM", StateReason="drill")
    assert state() == "ALARM"
    wait_until(lambda: state() == "OK", 15, "the drill did not end at the next evaluation")
    cw.delete_alarms(AlarmNames=["metered-4xx"])
    assert cw.describe_alarms(AlarmNames=["metered-4xx"])["MetricAlarms"] == []


def _exists(sm: Any, name: str) -> bool:
    try:
        sm.describe_endpoint(EndpointName=name)
    except ClientError:
        return False
    return True


def test_target_tracking_scales_out_under_load_and_back_in_when_idle(server: RunningServer, sm: Any, model: str) -> None:
    endpoint = _endpoint(sm, "scaled", model)
    aas = server.client("application-autoscaling")
    aas.register_scalable_target(**TARGET, MinCapacity=1, MaxCapacity=2)
    aas.put_scaling_policy(
        PolicyName="ipi", **TARGET, PolicyType="TargetTrackingScaling",
        TargetTrackingScalingPolicyConfiguration={
            "TargetValue": 5.0, "ScaleOutCooldown": 0, "ScaleInCooldown": 0,
            "PredefinedMetricSpecification": {"PredefinedMetricType": "SageMakerVariantInvocationsPerInstance"}},
    )

    def variant() -> dict[str, Any]:
        return dict(sm.describe_endpoint(EndpointName=endpoint)["ProductionVariants"][0])

    # bounded load: about 20 requests a second (1,200 per minute, far above 5) until it scales
    runtime = server.client("sagemaker-runtime")
    body = csv_rows(1)[1]
    sent = 0
    while sent < 600 and variant()["DesiredInstanceCount"] < 2:
        for _ in range(4):
            runtime.invoke_endpoint(EndpointName=endpoint, ContentType="text/csv", Body=body)
            sent += 1
        time.sleep(0.2)
    assert variant()["DesiredInstanceCount"] == 2, f"no scale-out after {sent} requests"
    described = wait_until(lambda: (v := variant())["CurrentInstanceCount"] == 2 and
                       sm.describe_endpoint(EndpointName=endpoint)["EndpointStatus"] == "InService" and v, 120,
                       "the second instance never served")
    assert described["DesiredInstanceCount"] == 2

    def activities() -> list[dict[str, Any]]:
        return list(aas.describe_scaling_activities(ServiceNamespace="sagemaker", ResourceId=RESOURCE)["ScalingActivities"])

    out = wait_until(lambda: [a for a in activities() if a["StatusCode"] == "Successful"], 30, "scale-out never succeeded")
    assert out[0]["Description"] == "Setting desired instance count to 2."
    assert "SageMakerVariantInvocationsPerInstance" in out[0]["Cause"]
    # idle: 15 one-second datapoints below target scale it back in
    wait_until(lambda: variant()["DesiredInstanceCount"] == 1, 60, "no scale-in when idle")
    wait_until(lambda: variant()["CurrentInstanceCount"] == 1, 60, "the extra instance never went away")
    latest = wait_until(lambda: (a := activities())[0]["StatusCode"] == "Successful" and a, 30, "scale-in never succeeded")
    assert [a["Description"] for a in latest] == ["Setting desired instance count to 1.",
                                                  "Setting desired instance count to 2."]
