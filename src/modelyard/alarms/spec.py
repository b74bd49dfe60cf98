"""What a metric alarm is: the PutMetricAlarm fields modelyard evaluates, checked once.

An alarm is one record of kind ``Alarm`` named after the alarm. Its state holds the alarm's
``config`` (replaced whole by a later PutMetricAlarm, as in CloudWatch), its state value, reason
and timestamps, and the last state transitions (``history``). The record's status column is
the state value, so DescribeAlarms filters on it without reading documents.

Beyond CloudWatch: periods of 1, 5 and 20 seconds are accepted too (CloudWatch alarms take 10,
30 or a multiple of 60), so that tests and drills need not wait. Not supported (refused, never
ignored): metric math (``Metrics``), percentiles (``ExtendedStatistic``), anomaly-detection
operators and the newer query/evaluation fields. Actions are stored and shown but not run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Final

from modelyard.api.cloudwatch_metrics import (
    InvalidParameterCombination,
    InvalidParameterValue,
    MissingParameter,
    check_period,
)

KIND: Final = "Alarm"
STATES: Final = ("OK", "ALARM", "INSUFFICIENT_DATA")
OPERATORS: Final = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}
TREAT_MISSING: Final = ("missing", "notBreaching", "breaching", "ignore")
STATISTICS: Final = ("SampleCount", "Average", "Sum", "Minimum", "Maximum")
HISTORY_LIMIT: Final = 100  # state transitions kept per alarm

# The configuration members an alarm keeps, as DescribeAlarms shows them.
CONFIG_FIELDS: Final = (
    "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions", "InsufficientDataActions",
    "MetricName", "Namespace", "Statistic", "Dimensions", "Period", "Unit", "EvaluationPeriods",
    "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData",
)
_UNSUPPORTED: Final = {
    "Metrics": "metric math alarms",
    "ExtendedStatistic": "percentile statistics",
    "ThresholdMetricId": "anomaly detection alarms",
    "EvaluateLowSampleCountPercentile": "percentile statistics",
    "EvaluationCriteria": "query alarms",
    "EvaluationInterval": "query alarms",
    "EvaluationWindow": "custom evaluation windows",
    "WarmUpConfiguration": "warm-up configuration",
}
_MAX_RANGE_HIGH_RESOLUTION = 86_400  # Period × EvaluationPeriods for periods under a minute
_MAX_RANGE = 7 * 86_400


def alarm_arn(region: str, account: str, name: str) -> str:
    """CloudWatch's alarm ARN (the name keeps its case, unlike SageMaker ARNs)."""
    return f"arn:aws:cloudwatch:{region}:{account}:alarm:{name}"


def alarm_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """The configuration of a PutMetricAlarm request, with defaults filled in.

    Raises the CloudWatch error for a request modelyard cannot evaluate.
    """
    for field, what in _UNSUPPORTED.items():
        if params.get(field) is not None:
            raise InvalidParameterValue(f"{field}: {what} are not supported by modelyard.")
    for field in ("MetricName", "Namespace", "Period", "Statistic", "Threshold"):
        if params.get(field) is None:
            raise MissingParameter(f"The parameter {field} is required.")
    operator = params["ComparisonOperator"]
    if operator not in OPERATORS:
        raise InvalidParameterValue(
            f"The ComparisonOperator {operator} is not supported by modelyard (anomaly detection "
            "alarms are not); use one of " + ", ".join(OPERATORS) + "."
        )
    if params["Statistic"] not in STATISTICS:
        raise InvalidParameterValue(f"The parameter Statistic must be one of {', '.join(STATISTICS)}.")
    period, periods = int(params["Period"]), int(params["EvaluationPeriods"])
    check_period(period)
    limit = _MAX_RANGE_HIGH_RESOLUTION if period < 60 else _MAX_RANGE
    if periods < 1 or period * periods > limit:
        raise InvalidParameterValue(
            f"The evaluation range (Period × EvaluationPeriods) must be at most {limit} seconds."
        )
    to_alarm = int(params.get("DatapointsToAlarm", periods))
    if not 1 <= to_alarm <= periods:
        raise InvalidParameterCombination(
            "DatapointsToAlarm must be at least 1 and at most EvaluationPeriods."
        )
    treat = params.get("TreatMissingData", "missing")
    if treat not in TREAT_MISSING:
        raise InvalidParameterValue(f"The parameter TreatMissingData must be one of {', '.join(TREAT_MISSING)}.")
    config = {field: params[field] for field in CONFIG_FIELDS if params.get(field) is not None}
    config.update(Period=period, EvaluationPeriods=periods, DatapointsToAlarm=to_alarm,
                  Threshold=float(params["Threshold"]), TreatMissingData=treat,
                  ActionsEnabled=params.get("ActionsEnabled", True),
                  Dimensions=list(params.get("Dimensions", [])))
    for actions in ("OKActions", "AlarmActions", "InsufficientDataActions"):
        config[actions] = list(params.get(actions, []))
    return config


def transition(state: Mapping[str, Any], value: str, reason: str, reason_data: str | None,
               now: float) -> dict[str, Any]:
    """The alarm ``state`` moved to ``value``, with the change recorded in its history.

    Evaluating to the same state again only refreshes the reason (as CloudWatch's
    StateUpdatedTimestamp does); a real change also sets StateTransitionedTimestamp.
    """
    previous = state["StateValue"]
    new = {**state, "StateValue": value, "StateReason": reason, "StateReasonData": reason_data,
           "StateUpdatedTimestamp": now}
    if previous != value:
        new["StateTransitionedTimestamp"] = now
        item = {
            "Timestamp": now,
            "HistoryItemType": "StateUpdate",
            "HistorySummary": f"Alarm updated from {previous} to {value}",
            "HistoryData": json.dumps({
                "version": "1.0",
                "oldState": {"stateValue": previous, "stateReason": state.get("StateReason")},
                "newState": {"stateValue": value, "stateReason": reason},
            }, separators=(",", ":")),
        }
        new["history"] = [*state.get("history", []), item][-HISTORY_LIMIT:]
    return new
