"""Deployment plans and their steps: blue/green shifting and rolling batches."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.core.errors import ValidationError
from modelyard.serving import rollout


def variants(*counts: int, serverless: bool = False) -> dict[str, dict[str, Any]]:
    return {f"v{i}": {"count": c, "serverless": {"MaxConcurrency": 1} if serverless else None}
            for i, c in enumerate(counts)}


def rolling(batch: dict[str, Any], wait: int = 10, rollback: dict[str, Any] | None = None) -> dict[str, Any]:
    policy: dict[str, Any] = {"MaximumBatchSize": batch, "WaitIntervalInSeconds": wait}
    if rollback:
        policy["RollbackMaximumBatchSize"] = rollback
    return {"RollingUpdatePolicy": policy}


def no_alarms(names: Any) -> list[str]:
    return []


def test_rolling_plan_steps_by_batch() -> None:
    plan = rollout.plan(rolling({"Type": "INSTANCE_COUNT", "Value": 1}), variants(3), now=0)
    assert plan["type"] == "ROLLING"
    assert plan["steps"] == pytest.approx([1 / 3, 2 / 3, 1.0])
    assert plan["rollback_batch"] == 1.0  # all of blue at once unless asked otherwise
    percent = rollout.plan(rolling({"Type": "CAPACITY_PERCENT", "Value": 50},
                                   rollback={"Type": "CAPACITY_PERCENT", "Value": 25}), variants(4), now=0)
    assert percent["steps"] == [0.5, 1.0] and percent["rollback_batch"] == 0.25


@pytest.mark.parametrize("config, counts, message", [
    (rolling({"Type": "INSTANCE_COUNT", "Value": 1}), variants(1), "between 5% and 50%"),
    (rolling({"Type": "CAPACITY_PERCENT", "Value": 60}), variants(4), "between 5% and 50%"),
    (rolling({"Type": "CAPACITY_PERCENT", "Value": 2}), variants(4), "between 5% and 50%"),
    (rolling({"Type": "INSTANCE_COUNT", "Value": 1}), variants(2, serverless=True), "serverless"),
    ({**rolling({"Type": "INSTANCE_COUNT", "Value": 1}),
      "BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0}}},
     variants(2), "one of"),
    ({}, variants(2), "needs a BlueGreenUpdatePolicy or a RollingUpdatePolicy"),
])
def test_bad_plans_are_refused(config: dict[str, Any], counts: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        rollout.plan(config, counts)


def test_rolling_update_provisions_shifts_and_bakes_batch_by_batch() -> None:
    plan = rollout.plan(rolling({"Type": "INSTANCE_COUNT", "Value": 1}, wait=10), variants(2), now=0)
    assert rollout.green_capacity(plan) == 0.5  # the first batch comes up before any shift
    action, plan = rollout.step(plan, 1, no_alarms, ready=False)
    assert action == "wait" and rollout.green_share(plan) == 0.0
    action, plan = rollout.step(plan, 2, no_alarms, ready=True)
    assert action == "shift" and rollout.green_share(plan) == 0.5
    assert rollout.green_capacity(plan) == 0.5  # baking: no new batch yet
    action, plan = rollout.step(plan, 5, no_alarms, ready=True)
    assert action == "bake"
    action, plan = rollout.step(plan, 12, no_alarms, ready=True)
    assert action == "provision" and rollout.green_capacity(plan) == 1.0
    assert rollout.green_share(plan) == 0.5  # traffic waits for the batch
    action, plan = rollout.step(plan, 13, no_alarms, ready=True)
    assert action == "shift" and rollout.green_share(plan) == 1.0
    action, plan = rollout.step(plan, 23, no_alarms, ready=True)
    assert action == "done"


def test_blue_green_keeps_green_whole_and_shifts_after_each_bake() -> None:
    config = {"BlueGreenUpdatePolicy": {"TrafficRoutingConfiguration": {
        "Type": "LINEAR", "WaitIntervalInSeconds": 5, "LinearStepSize": {"Type": "CAPACITY_PERCENT", "Value": 50}}}}
    plan = rollout.plan(config, variants(2), now=0)
    assert rollout.green_capacity(plan) == 1.0
    assert rollout.step(plan, 1, no_alarms, ready=False)[0] == "wait"
    action, plan = rollout.step(plan, 1, no_alarms, ready=True)
    assert action == "shift" and rollout.green_share(plan) == 0.5
    action, plan = rollout.step(plan, 7, no_alarms, ready=True)
    assert action == "shift" and rollout.green_share(plan) == 1.0
    assert rollout.step(plan, 13, no_alarms, ready=True)[0] == "done"


def test_alarms_and_deadline_roll_back() -> None:
    plan = rollout.plan(rolling({"Type": "INSTANCE_COUNT", "Value": 1}), variants(2), now=0)
    # alarms are not consulted before green has traffic
    assert rollout.step(plan, 1, lambda names: ["a"], ready=False)[0] == "wait"
    _, shifted = rollout.step(plan, 1, no_alarms, ready=True)
    action, _ = rollout.step(shifted, 2, lambda names: ["latency"], ready=True)
    assert action == "rollback:alarm latency is in ALARM"
    action, _ = rollout.step(shifted, 3601, no_alarms, ready=True)
    assert action.startswith("rollback:") and "MaximumExecutionTimeoutInSeconds" in action


def test_rolling_rollback_brings_blue_back_in_batches() -> None:
    plan = rollout.plan(rolling({"Type": "INSTANCE_COUNT", "Value": 1},
                                rollback={"Type": "INSTANCE_COUNT", "Value": 1}), variants(4), now=0)
    assert rollout.rolling_back(plan, {"v0": 4}, "why") is None  # no traffic moved: back at once
    _, plan = rollout.step(plan, 1, no_alarms, ready=True)
    plan = {**plan, "step": 1}  # half of the traffic on green
    back = rollout.rolling_back(plan, {"v0": 4}, "why")
    assert back is not None and back["share"] == 0.5 and back["green"] == {"v0": 4}
    assert rollout.next_rollback_share(back) == 0.25
    assert rollout.green_capacity(back) == 0.75  # blue (the target again) runs 3 of 4
    last = {**back, "share": 0.25}
    assert rollout.next_rollback_share(last) == 0.0 and rollout.green_capacity(last) == 1.0
