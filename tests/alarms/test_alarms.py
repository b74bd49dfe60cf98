"""Metric alarms: evaluation rules, and the CloudWatch operations with the controller over a clock."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.session import get_session

from modelyard.alarms import AlarmController, AlarmService, firing_alarms
from modelyard.alarms.evaluation import evaluate
from modelyard.api.cloudwatch_metrics import MetricsService
from modelyard.api.dispatch import JsonDispatcher
from modelyard.core.settings import Settings
from modelyard.serving.metrics import NAMESPACE, EndpointMetrics
from modelyard.store import MetadataStore, open_store
from tests.api.test_cloudwatch_metrics import Dispatching
from tests.api.wire import ACCESS_KEY, ENDPOINT, REGION, SECRET_KEY

T0 = 1_700_000_040.0
DIMS = [{"Name": "EndpointName", "Value": "ep"}, {"Name": "VariantName", "Value": "AllTraffic"}]
CONFIG = {"Period": 1, "EvaluationPeriods": 3, "DatapointsToAlarm": 2, "Threshold": 0.0,
          "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "missing", "Statistic": "Sum"}


@pytest.mark.parametrize(
    ("values", "treat", "expected"),
    [
        ({7.0: 1.0, 8.0: 2.0, 9.0: 0.0}, "missing", "ALARM"),  # 2 of 3 breach
        ({9.0: 3.0}, "missing", "OK"),  # 1 of 3 present breaches: fewer than DatapointsToAlarm
        ({}, "missing", "INSUFFICIENT_DATA"),
        ({}, "notBreaching", "OK"),
        ({9.0: 1.0}, "breaching", "ALARM"),  # missing ones count as breaching
        ({}, "ignore", None),  # keeps the state
        ({6.0: 5.0, 5.0: 5.0}, "missing", "INSUFFICIENT_DATA"),  # older than the range
    ],
)
def test_evaluation_rules(values: dict[float, float], treat: str, expected: str | None) -> None:
    verdict = evaluate({**CONFIG, "TreatMissingData": treat}, values, end=10.0, current="OK")
    assert (verdict.state if verdict else None) == expected


def test_reason_names_the_datapoints() -> None:
    verdict = evaluate(CONFIG, {8.0: 2.0, 9.0: 1.0}, end=10.0, current="OK")
    assert verdict is not None
    assert verdict.reason.startswith("Threshold Crossed: 2 out of the last 3 datapoints [1.0 (")
    assert "greater than the threshold (0.0)" in verdict.reason
    data = json.loads(verdict.reason_data)
    assert (data["recentDatapoints"], data["period"], data["statistic"]) == ([2.0, 1.0], 1, "Sum")


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> Iterator[MetadataStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'modelyard.db'}")
    yield opened
    opened.close()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def endpoint_metrics(clock: Clock) -> EndpointMetrics:
    return EndpointMetrics(clock=clock)


@pytest.fixture
def controller(store: MetadataStore, endpoint_metrics: EndpointMetrics, clock: Clock) -> AlarmController:
    return AlarmController(store, MetricsService(store, clock=clock, sources=[endpoint_metrics]), clock=clock)


@pytest.fixture
def cw(tmp_path: Path, store: MetadataStore, clock: Clock) -> Any:
    settings = Settings.load({}, home=tmp_path)
    service = AlarmService(settings, store, wake=lambda: None, clock=clock)
    made = get_session().create_client(
        "cloudwatch", region_name=REGION, endpoint_url=ENDPOINT,
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
    )
    made.meta.events.register("before-send", Dispatching(JsonDispatcher("cloudwatch", service.operations(), strict=True)))
    return made


def _put(cw: Any, name: str, **extra: Any) -> None:
    request = {"AlarmName": name, "Namespace": NAMESPACE, "MetricName": "Invocation4XXErrors", "Dimensions": DIMS,
               "Statistic": "Sum", "Period": 1, "EvaluationPeriods": 3, "DatapointsToAlarm": 1, "Threshold": 0.0,
               "ComparisonOperator": "GreaterThanThreshold", "TreatMissingData": "notBreaching"}
    cw.put_metric_alarm(**{**request, **extra})


def _state(cw: Any, name: str) -> dict[str, Any]:
    [alarm] = cw.describe_alarms(AlarmNames=[name])["MetricAlarms"]
    return alarm


def test_an_alarm_follows_its_metric(cw: Any, controller: AlarmController, endpoint_metrics: EndpointMetrics, clock: Clock, store: MetadataStore) -> None:
    _put(cw, "errors")
    assert _state(cw, "errors")["StateValue"] == "INSUFFICIENT_DATA"
    clock.now = T0 + 1.5
    controller.reconcile_all()
    assert _state(cw, "errors")["StateValue"] == "OK"  # no data is not breaching
    endpoint_metrics.observe("ep", "AllTraffic", 400, 0.001, 0.002)  # in second T0+1
    controller.reconcile_all()
    assert _state(cw, "errors")["StateValue"] == "OK"  # that second has not ended yet
    clock.now = T0 + 2.1
    controller.reconcile_all()
    alarm = _state(cw, "errors")
    assert alarm["StateValue"] == "ALARM"
    assert "1 out of the last 3 datapoints [1.0 (" in alarm["StateReason"]
    assert firing_alarms(store)(["errors", "unknown"]) == ["errors"]
    assert [a["AlarmName"] for a in cw.describe_alarms(StateValue="ALARM")["MetricAlarms"]] == ["errors"]
    clock.now = T0 + 5.2  # the error's second (T0+1) leaves the range [T0+2, T0+5)
    controller.reconcile_all()
    assert _state(cw, "errors")["StateValue"] == "OK"
    history = cw.describe_alarm_history(AlarmName="errors", HistoryItemType="StateUpdate")["AlarmHistoryItems"]
    assert [h["HistorySummary"] for h in history] == [
        "Alarm updated from ALARM to OK", "Alarm updated from OK to ALARM", "Alarm updated from INSUFFICIENT_DATA to OK"]


def test_set_alarm_state_holds_until_the_next_evaluation(cw: Any, controller: AlarmController, clock: Clock) -> None:
    _put(cw, "drill")
    clock.now = T0 + 1.5
    controller.reconcile_all()
    cw.set_alarm_state(AlarmName="drill", StateValue="ALARM", StateReason="drill")
    alarm = _state(cw, "drill")
    assert (alarm["StateValue"], alarm["StateReason"]) == ("ALARM", "drill")
    controller.reconcile_all()  # same period: not evaluated again
    assert _state(cw, "drill")["StateValue"] == "ALARM"
    clock.now = T0 + 2.5
    controller.reconcile_all()
    assert _state(cw, "drill")["StateValue"] == "OK"
    with pytest.raises(ClientError) as err:
        cw.set_alarm_state(AlarmName="drill", StateValue="OK", StateReason="x", StateReasonData="not json")
    assert err.value.response["Error"]["Code"] == "InvalidFormat"


def test_describe_filters_and_pages(cw: Any) -> None:
    for name in ("b-1", "a-1", "a-2", "a-3"):
        _put(cw, name)
    assert [a["AlarmName"] for a in cw.describe_alarms(AlarmNamePrefix="a-")["MetricAlarms"]] == ["a-1", "a-2", "a-3"]
    first = cw.describe_alarms(MaxRecords=3)
    assert [a["AlarmName"] for a in first["MetricAlarms"]] == ["a-1", "a-2", "a-3"]
    rest = cw.describe_alarms(MaxRecords=3, NextToken=first["NextToken"])
    assert [a["AlarmName"] for a in rest["MetricAlarms"]] == ["b-1"] and "NextToken" not in rest
    assert cw.describe_alarms(StateValue="ALARM")["MetricAlarms"] == []
    alarm = _state(cw, "a-1")
    assert (alarm["Period"], alarm["Threshold"], alarm["Dimensions"], alarm["TreatMissingData"]) == (1, 0.0, DIMS, "notBreaching")
    assert alarm["AlarmArn"] == "arn:aws:cloudwatch:us-east-1:000000000000:alarm:a-1"


def test_put_again_replaces_the_config_and_keeps_the_state(cw: Any) -> None:
    _put(cw, "x")
    cw.set_alarm_state(AlarmName="x", StateValue="ALARM", StateReason="drill")
    _put(cw, "x", Threshold=5.0)
    alarm = _state(cw, "x")
    assert (alarm["Threshold"], alarm["StateValue"]) == (5.0, "ALARM")


def test_delete_is_all_or_nothing(cw: Any) -> None:
    _put(cw, "keep")
    with pytest.raises(ClientError) as err:
        cw.delete_alarms(AlarmNames=["keep", "missing"])
    assert err.value.response["Error"]["Code"] == "ResourceNotFound"
    assert _state(cw, "keep")["AlarmName"] == "keep"
    cw.delete_alarms(AlarmNames=["keep"])
    assert cw.describe_alarms()["MetricAlarms"] == []


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"ComparisonOperator": "LessThanLowerOrGreaterThanUpperThreshold"}, "InvalidParameterValue"),
        ({"Period": 7}, "InvalidParameterValue"),
        ({"DatapointsToAlarm": 4}, "InvalidParameterCombination"),
        ({"TreatMissingData": "sometimes"}, "InvalidParameterValue"),
        ({"Statistic": None, "ExtendedStatistic": "p99"}, "InvalidParameterValue"),
    ],
)
def test_invalid_alarms_are_refused(cw: Any, change: dict[str, Any], code: str) -> None:
    request = {"AlarmName": "bad", "Namespace": NAMESPACE, "MetricName": "Invocations", "Dimensions": DIMS,
               "Statistic": "Sum", "Period": 1, "EvaluationPeriods": 3, "Threshold": 0.0,
               "ComparisonOperator": "GreaterThanThreshold", **change}
    with pytest.raises(ClientError) as err:
        cw.put_metric_alarm(**{k: v for k, v in request.items() if v is not None})
    assert err.value.response["Error"]["Code"] == code
