"""Evaluating one metric alarm over its last periods: a pure function of the datapoints.

CloudWatch's rules, as modelyard applies them at the end of each period:

- the evaluation range is the last ``EvaluationPeriods`` whole periods;
- the alarm is ALARM when at least ``DatapointsToAlarm`` of them breach the threshold;
- a period without data is treated as ``TreatMissingData`` says: ``breaching`` or
  ``notBreaching`` count it as such; ``missing`` and ``ignore`` skip it. With no datapoint at
  all, ``missing`` gives INSUFFICIENT_DATA and ``ignore`` keeps the current state;
- otherwise the alarm is OK.

(CloudWatch's ``missing`` may also look further back than the range when datapoints are
sparse; modelyard does not.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from modelyard.alarms.spec import OPERATORS


@dataclasses.dataclass(frozen=True)
class Verdict:
    """The state an evaluation arrives at, with CloudWatch-style reason text and data."""

    state: str
    reason: str
    reason_data: str


def breaches(operator: str, value: float, threshold: float) -> bool:
    """Whether ``value`` is on the alarming side of ``threshold``."""
    if operator == "GreaterThanThreshold":
        return value > threshold
    if operator == "GreaterThanOrEqualToThreshold":
        return value >= threshold
    if operator == "LessThanThreshold":
        return value < threshold
    return value <= threshold  # LessThanOrEqualToThreshold


def evaluate(config: Mapping[str, Any], values: Mapping[float, float], end: float,
             current: str) -> Verdict | None:
    """The alarm's state for the periods ending at ``end``; None to keep ``current``.

    ``values`` maps period starts to the alarm's statistic; absent periods had no data.
    """
    period, periods = config["Period"], config["EvaluationPeriods"]
    starts = [end - (periods - i) * period for i in range(periods)]
    present = [(at, values[at]) for at in starts if at in values]
    missing = periods - len(present)
    operator, threshold = config["ComparisonOperator"], config["Threshold"]
    breaching = sum(breaches(operator, v, threshold) for _, v in present)
    treat = config["TreatMissingData"]
    if treat == "breaching":
        breaching += missing
    data = _reason_data(config, present, starts[0], end)
    if breaching >= config["DatapointsToAlarm"]:
        return Verdict("ALARM", _crossed(config, present, breaching, current), data)
    if not present and treat in ("missing", "ignore"):
        if treat == "ignore":
            return None
        return Verdict("INSUFFICIENT_DATA",
                       f"Insufficient Data: {periods} datapoint{'s were' if periods > 1 else ' was'} unknown.",
                       data)
    return Verdict("OK", _not_crossed(config, present, missing, treat), data)


def _crossed(config: Mapping[str, Any], present: list[tuple[float, float]], breaching: int,
             current: str) -> str:
    shown = _shown(present)
    word = OPERATORS[config["ComparisonOperator"]]
    needed = config["DatapointsToAlarm"]
    return (f"Threshold Crossed: {breaching} out of the last {config['EvaluationPeriods']} "
            f"datapoints [{shown}] {'was' if breaching == 1 else 'were'} {word} the threshold "
            f"({config['Threshold']!r}) (minimum {needed} datapoint{'s' if needed > 1 else ''} "
            f"for {current} -> ALARM transition).")


def _not_crossed(config: Mapping[str, Any], present: list[tuple[float, float]], missing: int,
                 treat: str) -> str:
    word = OPERATORS[config["ComparisonOperator"]]
    text = (f"Threshold Crossed: {len(present)} datapoint{'s' if len(present) != 1 else ''} "
            f"[{_shown(present)}] {'was' if len(present) == 1 else 'were'} not {word} the "
            f"threshold ({config['Threshold']!r}).")
    if missing and treat == "notBreaching":
        text += f" {missing} missing datapoint{'s were' if missing > 1 else ' was'} treated as not breaching."
    return text


def _shown(present: list[tuple[float, float]]) -> str:
    newest_first = sorted(present, reverse=True)
    return ", ".join(f"{value!r} ({_when(at)})" for at, value in newest_first)


def _when(at: float) -> str:
    return dt.datetime.fromtimestamp(at, tz=dt.UTC).strftime("%d/%m/%y %H:%M:%S")


def _iso(at: float) -> str:
    return dt.datetime.fromtimestamp(at, tz=dt.UTC).isoformat(timespec="milliseconds")


def _reason_data(config: Mapping[str, Any], present: list[tuple[float, float]], start: float,
                 end: float) -> str:
    """``StateReasonData``: the JSON document CloudWatch attaches to a threshold evaluation."""
    return json.dumps({
        "version": "1.0",
        "queryDate": _iso(end),
        "startDate": _iso(start),
        "statistic": config["Statistic"],
        "period": config["Period"],
        "recentDatapoints": [value for _, value in sorted(present)],
        "threshold": config["Threshold"],
        "evaluatedDatapoints": [{"timestamp": _iso(at), "value": value} for at, value in sorted(present, reverse=True)],
    }, separators=(",", ":"))
