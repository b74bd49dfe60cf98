"""Deployments with traffic shifting, baking and automatic rollback.

An UpdateEndpoint with ``DeploymentConfig.BlueGreenUpdatePolicy`` provisions the new (green)
fleet beside the serving (blue) one, then moves traffic in steps:

- ``ALL_AT_ONCE``: 100 % to green, then bake ``WaitIntervalInSeconds``;
- ``CANARY``: ``CanarySize`` to green, bake, then the rest, bake;
- ``LINEAR``: ``LinearStepSize`` more after each bake until 100 %.

``RollingUpdatePolicy`` replaces capacity in place instead: each step provisions one
``MaximumBatchSize`` batch of green, moves the same share of traffic to it, retires as much
blue, and bakes. A rollback of a rolling update brings blue back batch by batch
(``RollbackMaximumBatchSize``, all at once by default) while green keeps serving the rest, so
capacity never drops to nothing.

While a step bakes, any alarm of ``AutoRollbackConfiguration`` in ALARM — or running past
``MaximumExecutionTimeoutInSeconds`` — rolls back. After the last bake, blue keeps its processes
``TerminationWaitInSeconds`` more, then stops.

The rollout is plain JSON in the endpoint's state, so a restarted server resumes it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from modelyard.core.errors import ValidationError

DEFAULT_MAX_SECONDS = 3600.0


def plan(config: dict[str, Any], variants: dict[str, dict[str, Any]],
         now: float | None = None) -> dict[str, Any]:
    """The rollout an UpdateEndpoint DeploymentConfig asks for (validated) over the new
    config's ``variants``."""
    alarms = [a["AlarmName"] for a in config.get("AutoRollbackConfiguration", {}).get("Alarms", [])]
    if "RollingUpdatePolicy" in config:
        if config.get("BlueGreenUpdatePolicy"):
            raise ValidationError("Specify one of BlueGreenUpdatePolicy and RollingUpdatePolicy.")
        return _rolling(config["RollingUpdatePolicy"], variants, alarms, now)
    policy = config.get("BlueGreenUpdatePolicy")
    if policy is None:
        raise ValidationError("DeploymentConfig needs a BlueGreenUpdatePolicy or a RollingUpdatePolicy.")
    green_instances = sum(v["count"] for v in variants.values())
    routing = policy["TrafficRoutingConfiguration"]
    kind = routing["Type"]
    if kind == "ALL_AT_ONCE":
        steps = [1.0]
    elif kind == "CANARY":
        steps = [_share(routing, "CanarySize", green_instances), 1.0]
    else:
        steps = _linear(_share(routing, "LinearStepSize", green_instances))
    return {
        "type": kind,
        "steps": steps,
        "step": -1,  # not shifting yet: green is still being provisioned
        "phase": "bake",
        "wait": float(routing["WaitIntervalInSeconds"]),
        "termination_wait": float(policy.get("TerminationWaitInSeconds", 0)),
        "deadline": _deadline(policy, now),
        "alarms": alarms,
        "step_started": None,
    }


def _rolling(policy: dict[str, Any], variants: dict[str, dict[str, Any]], alarms: list[str],
             now: float | None) -> dict[str, Any]:
    if any(v.get("serverless") for v in variants.values()):
        raise ValidationError("RollingUpdatePolicy needs instances; serverless variants update with "
                              "BlueGreenUpdatePolicy or without a DeploymentConfig.")
    instances = sum(v["count"] for v in variants.values())
    batch = _capacity(policy["MaximumBatchSize"], instances, "RollingUpdatePolicy.MaximumBatchSize")
    if not 0.05 <= batch <= 0.5:
        raise ValidationError(
            "RollingUpdatePolicy.MaximumBatchSize must be between 5% and 50% of the variant's "
            f"instance count ({instances} instance(s) in the new config).")
    rollback = policy.get("RollbackMaximumBatchSize")
    return {
        "type": "ROLLING",
        "steps": _linear(batch),
        "step": -1,
        "phase": "provision",  # the first batch of green is coming up
        "wait": float(policy["WaitIntervalInSeconds"]),
        "termination_wait": 0.0,
        "deadline": _deadline(policy, now),
        "alarms": alarms,
        "step_started": None,
        "rollback_batch": _capacity(rollback, instances, "RollingUpdatePolicy.RollbackMaximumBatchSize")
        if rollback else 1.0,
    }


def _linear(step: float) -> list[float]:
    return [min(1.0, step * i) for i in range(1, math.ceil(round(1 / step, 9)) + 1)]


def _deadline(policy: dict[str, Any], now: float | None) -> float:
    limit = float(policy.get("MaximumExecutionTimeoutInSeconds", DEFAULT_MAX_SECONDS))
    return (time.time() if now is None else now) + limit


def _capacity(size: dict[str, Any], instances: int, field: str) -> float:
    """A CapacitySize as a share of ``instances``, in (0, 1]."""
    value = float(size["Value"])
    share = value / max(1, instances) if size["Type"] == "INSTANCE_COUNT" else value / 100.0
    if not 0 < share <= 1:
        raise ValidationError(f"{field} must select between 0 and 100 % of the new fleet.")
    return share


def _share(routing: dict[str, Any], field: str, green_instances: int) -> float:
    size = routing.get(field)
    if size is None:
        raise ValidationError(f"TrafficRoutingConfiguration.{field} is required for {routing['Type']}.")
    return _capacity(size, green_instances, f"TrafficRoutingConfiguration.{field}")


def step(rollout: dict[str, Any], now: float, alarm_states: Callable[[Sequence[str]], list[str]],
         ready: bool) -> tuple[str, dict[str, Any]]:
    """Where a rollout goes next; ``ready`` says whether green has the capacity
    :func:`green_capacity` asks for.

    Returns ``(action, rollout)`` with action ``shift`` (green's share changed), ``wait``
    (green is not ready yet), ``bake`` (nothing to do yet), ``provision`` (a rolling update's
    next batch is to be started), ``done`` (100 % baked: promote green) or ``rollback:<why>``.
    """
    rollout = dict(rollout)
    if now > rollout["deadline"]:
        return "rollback:the deployment ran past MaximumExecutionTimeoutInSeconds", rollout
    firing = alarm_states(rollout["alarms"]) if rollout["step"] >= 0 else []
    if firing:
        return f"rollback:alarm {firing[0]} is in ALARM", rollout
    if rollout.get("phase") == "provision" or rollout["step"] < 0:
        if not ready:
            return "wait", rollout
        rollout.update(step=rollout["step"] + 1, step_started=now, phase="bake")
        return "shift", rollout
    if now - rollout["step_started"] < rollout["wait"]:
        return "bake", rollout
    if rollout["step"] + 1 >= len(rollout["steps"]):
        return "done", rollout
    if rollout["type"] == "ROLLING":
        rollout["phase"] = "provision"
        return "provision", rollout
    rollout.update(step=rollout["step"] + 1, step_started=now)
    return "shift", rollout


def green_share(rollout: dict[str, Any]) -> float:
    """The share of traffic the new fleet has now."""
    if rollout["type"] == "ROLLBACK":
        return rollout["share"]
    return rollout["steps"][rollout["step"]] if rollout["step"] >= 0 else 0.0


def green_capacity(rollout: dict[str, Any] | None) -> float:
    """The share of the target config's instances to run now: all of them, except while a
    rolling update (or its rollback) moves batch by batch."""
    if rollout is None:
        return 1.0
    if rollout["type"] == "ROLLBACK":  # the target is blue again, coming back batch by batch
        return 1.0 - next_rollback_share(rollout)
    if rollout["type"] != "ROLLING":
        return 1.0
    index = rollout["step"] + (rollout.get("phase") == "provision")
    return rollout["steps"][index] if index >= 0 else 0.0


def rolling_back(rollout: dict[str, Any], green: dict[str, int], reason: str) -> dict[str, Any] | None:
    """The rollback of a rolling update that has moved traffic (None when it has not: then
    blue is whole and traffic goes back at once). ``green`` is the new config's instance
    count per variant."""
    if rollout["type"] != "ROLLING" or green_share(rollout) <= 0:
        return None
    return {"type": "ROLLBACK", "share": green_share(rollout), "batch": rollout["rollback_batch"],
            "green": green, "reason": reason}


def next_rollback_share(rollout: dict[str, Any]) -> float:
    """Green's share once the next batch of blue is back."""
    share = rollout["share"] - rollout["batch"]
    return share if share > 1e-9 else 0.0
