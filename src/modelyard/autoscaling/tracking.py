"""Target tracking as SageMaker does it: a pure decision from the recent datapoints.

The metric is invocations per instance per minute (the Sum of ``InvocationsPerInstance`` over
each period, scaled to a minute). Like the two CloudWatch alarms that AWS creates for a target
tracking policy:

- scale out when the last :data:`SCALE_OUT_DATAPOINTS` datapoints are all above the target;
- scale in when the last :data:`SCALE_IN_DATAPOINTS` are all below 90 % of it (never with
  ``DisableScaleIn``);

to the capacity that brings the metric back to the target, ``ceil(current × metric / target)``
(``metric`` the mean of the datapoints). Clamping to Min/MaxCapacity and cooldowns are the
controller's. A period without invocations counts as 0: an idle variant scales in (AWS's alarms
see no data there and wait, which surprises most users).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any, Final

SCALE_OUT_DATAPOINTS: Final = 3
SCALE_IN_DATAPOINTS: Final = 15
SCALE_IN_RATIO: Final = 0.9


@dataclasses.dataclass(frozen=True)
class Proposal:
    """A capacity one policy asks for, and why."""

    capacity: int
    metric: float
    datapoints: int


def propose(config: Mapping[str, Any], current: int, rates: Sequence[float]) -> Proposal | None:
    """What the policy ``config`` asks of a variant at ``current`` instances, if anything.

    ``rates`` are the per-minute datapoints, oldest first, since the policy could first judge
    (its creation or the target's last scaling); too few of them decide nothing.
    """
    target = config["TargetValue"]
    recent = list(rates[-SCALE_OUT_DATAPOINTS:])
    if len(recent) == SCALE_OUT_DATAPOINTS and all(r > target for r in recent):
        return _proportional(current, recent, target)
    window = list(rates[-SCALE_IN_DATAPOINTS:])
    if (not config["DisableScaleIn"] and len(window) == SCALE_IN_DATAPOINTS
            and all(r < SCALE_IN_RATIO * target for r in window)):
        return _proportional(current, window, target)
    return None


def _proportional(current: int, rates: Sequence[float], target: float) -> Proposal:
    metric = sum(rates) / len(rates)
    return Proposal(math.ceil(current * metric / target - 1e-9), metric, len(rates))
