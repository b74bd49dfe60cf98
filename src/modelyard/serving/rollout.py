"""Blue/green deployments with traffic shifting, baking and automatic rollback.

An UpdateEndpoint with ``DeploymentConfig.BlueGreenUpdatePolicy`` provisions the new (green)
fleet beside the serving (blue) one, then moves traffic in steps:

- ``ALL_AT_ONCE``: 100 % to green, then bake ``WaitIntervalInSeconds``;
- ``CANARY``: ``CanarySize`` to green, bake, then the rest, bake;
- ``LINEAR``: ``LinearStepSize`` more after each bake until 100 %.

While a step bakes, any alarm of ``AutoRollbackConfiguration`` in ALARM — or running past
``MaximumExecutionTimeoutInSeconds`` — sends all traffic back to blue and drops green. After the
last bake, blue keeps its processes ``TerminationWaitInSeconds`` more, then stops.

The rollout is plain JSON in the endpoint's state, so a restarted server resumes it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from modelyard.core.errors import ValidationError

DEFAULT_MAX_SECONDS = 3600.0


def plan(config: dict[str, Any], green_instances: int, now: float | None = None) -> dict[str, Any]:
    """The rollout an UpdateEndpoint DeploymentConfig asks for (validated)."""
    if "RollingUpdatePolicy" in config:
        raise ValidationError("DeploymentConfig.RollingUpdatePolicy is not supported by modelyard yet; use BlueGreenUpdatePolicy.")
    policy = config.get("BlueGreenUpdatePolicy")
    if policy is None:
        raise ValidationError("DeploymentConfig needs a BlueGreenUpdatePolicy.")
    routing = policy["TrafficRoutingConfiguration"]
    kind = routing["Type"]
    if kind == "ALL_AT_ONCE":
        steps = [1.0]
    elif kind == "CANARY":
        steps = [_share(routing, "CanarySize", green_instances), 1.0]
    else:
        step = _share(routing, "LinearStepSize", green_instances)
        steps = [min(1.0, step * i) for i in range(1, math.ceil(1 / step) + 1)]
    alarms = [a["AlarmName"] for a in config.get("AutoRollbackConfiguration", {}).get("Alarms", [])]
    return {
        "type": kind,
        "steps": steps,
        "step": -1,  # not shifting yet: green is still being provisioned
        "wait": float(routing["WaitIntervalInSeconds"]),
        "termination_wait": float(policy.get("TerminationWaitInSeconds", 0)),
        "deadline": (now or time.time()) + float(policy.get("MaximumExecutionTimeoutInSeconds", DEFAULT_MAX_SECONDS)),
        "alarms": alarms,
        "step_started": None,
    }


def _share(routing: dict[str, Any], field: str, green_instances: int) -> float:
    size = routing.get(field)
    if size is None:
        raise ValidationError(f"TrafficRoutingConfiguration.{field} is required for {routing['Type']}.")
    value = float(size["Value"])
    share = value / max(1, green_instances) if size["Type"] == "INSTANCE_COUNT" else value / 100.0
    if not 0 < share <= 1:
        raise ValidationError(f"TrafficRoutingConfiguration.{field} must select between 0 and 100 % of the new fleet.")
    return share


def step(rollout: dict[str, Any], now: float, alarm_states: Callable[[Sequence[str]], list[str]]) -> tuple[str, dict[str, Any]]:
    """Where a rollout whose green fleet is ready goes next.

    Returns ``(action, rollout)`` with action ``shift`` (green's share changed), ``bake``
    (nothing to do yet), ``done`` (100 % baked: promote green) or ``rollback:<why>``.
    """
    rollout = dict(rollout)
    if now > rollout["deadline"]:
        return "rollback:the deployment ran past MaximumExecutionTimeoutInSeconds", rollout
    firing = alarm_states(rollout["alarms"]) if rollout["step"] >= 0 else []
    if firing:
        return f"rollback:alarm {firing[0]} is in ALARM", rollout
    if rollout["step"] < 0 or now - rollout["step_started"] >= rollout["wait"]:
        if rollout["step"] + 1 >= len(rollout["steps"]):
            return "done", rollout
        rollout.update(step=rollout["step"] + 1, step_started=now)
        return "shift", rollout
    return "bake", rollout


def green_share(rollout: dict[str, Any]) -> float:
    return rollout["steps"][rollout["step"]] if rollout["step"] >= 0 else 0.0
