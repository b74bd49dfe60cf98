"""The scaling controller: target tracking on endpoint variants, applied like
UpdateEndpointWeightsAndCapacities.

Each pass, for each scalable target:

1. follow its in-progress activities: Successful once the endpoint is InService with the
   asked-for instances serving, Failed if the endpoint settled elsewhere (an update rolled back,
   someone else changed the count) or went away;
2. if the endpoint is InService: bring a count outside Min/MaxCapacity inside; otherwise ask
   each policy (:func:`~modelyard.autoscaling.tracking.propose`) over the per-minute
   ``InvocationsPerInstance`` datapoints since the policy was put or the target last scaled.
   Scale out to the largest capacity any policy asks for, once ScaleOutCooldown has passed
   since the last scale-out; scale in only when every policy asks to, to the largest of
   their asks, once ScaleInCooldown has passed since the last scaling;
3. apply the change through :meth:`EndpointService.update_weights` (the endpoint goes
   Updating → InService, as with the API call) and record the activity.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from modelyard.api.cloudwatch_metrics import MetricsService
from modelyard.autoscaling import spec
from modelyard.autoscaling.tracking import SCALE_IN_DATAPOINTS, Proposal, propose
from modelyard.core.errors import ValidationError
from modelyard.core.settings import Settings
from modelyard.serving import spec as serving_spec
from modelyard.serving.endpoints import EndpointService, describe_endpoint
from modelyard.serving.metrics import ENDPOINT_DIMENSION, NAMESPACE, VARIANT_DIMENSION
from modelyard.store.base import MetadataStore, Record, RecordNotFound
from modelyard.store.mutate import mutate

log = logging.getLogger(__name__)


class ScalingController:
    """Keeps every registered variant at the capacity its policies and bounds ask for."""

    def __init__(self, settings: Settings, store: MetadataStore, metrics: MetricsService,
                 endpoints: EndpointService, clock: Callable[[], float] = time.time) -> None:
        self.period = max(1, settings.autoscaling_period_seconds)
        self.store = store
        self.metrics = metrics
        self.endpoints = endpoints
        self.clock = clock

    def reconcile_all(self) -> int:
        busy = 0
        for record in self.store.iter_kind(spec.TARGET):
            try:
                busy += self.reconcile(record)
            except RecordNotFound:
                continue
            except Exception:
                log.exception("autoscaling %s failed", record.name)
        return busy

    def reconcile(self, record: Record) -> int:
        """One pass over one target; 1 while one of its activities is in progress."""
        now = self.clock()
        endpoint_name, variant = spec.parse_resource_id(record.name)
        try:
            endpoint: Record | None = self.store.get(serving_spec.ENDPOINT, endpoint_name)
        except RecordNotFound:
            endpoint = None
        activities = [_follow(a, endpoint, variant, now) for a in record.state.get("activities", [])]
        changes: dict[str, Any] = {}
        if activities != record.state.get("activities", []):
            changes["activities"] = activities
        decision = None
        if endpoint is not None and endpoint.status == "InService" and not _in_progress(activities):
            decision = self._decide(record.state, endpoint, variant, now)
        if decision is not None:
            changes.update(self._apply(record, endpoint_name, variant, activities, *decision, now))
        if changes:
            mutate(self.store, spec.TARGET, record.name, lambda state: {**state, **changes})
        return int(_in_progress(changes.get("activities", activities)))

    # --- deciding ------------------------------------------------------------------------
    def _decide(self, state: Mapping[str, Any], endpoint: Record, variant: str,
                now: float) -> tuple[int, str, str] | None:
        """``(capacity, direction, cause)`` to scale to, or None."""
        target_variant = endpoint.state["target"]["variants"].get(variant)
        if target_variant is None:
            return None
        current = int(target_variant["count"])
        low, high = state["MinCapacity"], state["MaxCapacity"]
        if current < low:
            return low, "out", f"minimum capacity was set to {low}"
        if current > high:
            return high, "in", f"maximum capacity was set to {high}"
        policies = state.get("policies", {})
        if not policies:
            return None
        asks = {name: self._ask(p, endpoint.name, variant, current, state, now) for name, p in policies.items()}
        suspended = state.get("SuspendedState", {})
        outs = {n: a for n, a in asks.items() if a is not None and a.capacity > current}
        if outs and not suspended.get("DynamicScalingOutSuspended"):
            name, ask = max(outs.items(), key=lambda item: item[1].capacity)
            cooldown = policies[name]["config"]["ScaleOutCooldown"]
            if now - state.get("last_scale_out", 0.0) >= cooldown and min(ask.capacity, high) > current:
                return min(ask.capacity, high), "out", _cause(name, ask, "above", policies[name])
            return None
        ins = {n: a for n, a in asks.items() if a is not None and a.capacity < current}
        if ins and len(ins) == len(asks) and not suspended.get("DynamicScalingInSuspended"):
            name, ask = max(ins.items(), key=lambda item: item[1].capacity)
            cooldown = policies[name]["config"]["ScaleInCooldown"]
            if now - state.get("last_scaling", 0.0) >= cooldown and max(ask.capacity, low) < current:
                return max(ask.capacity, low), "in", _cause(name, ask, "below", policies[name])
        return None

    def _ask(self, policy: dict[str, Any], endpoint: str, variant: str, current: int,
             state: Mapping[str, Any], now: float) -> Proposal | None:
        """One policy's proposal over the whole periods since it could first judge."""
        period = self.period
        end = math.floor(now / period) * period
        start = end - SCALE_IN_DATAPOINTS * period
        since = max(policy["since"], state.get("last_scaling", 0.0))
        dimensions = [{"Name": ENDPOINT_DIMENSION, "Value": endpoint},
                      {"Name": VARIANT_DIMENSION, "Value": variant}]
        _, buckets = self.metrics.datapoints(NAMESPACE, "InvocationsPerInstance", dimensions,
                                             start, end, period)
        per_minute = 60.0 / period
        rates = [
            buckets[float(at)].total * per_minute if float(at) in buckets else 0.0
            for at in range(int(start), int(end), period) if at >= since
        ]
        return propose(policy["config"], current, rates)

    # --- acting --------------------------------------------------------------------------
    def _apply(self, record: Record, endpoint: str, variant: str, activities: list[dict[str, Any]],
               capacity: int, direction: str, cause: str, now: float) -> dict[str, Any]:
        """Ask the endpoint for ``capacity`` instances; the state changes that records it."""
        try:
            self.endpoints.update_weights({
                "EndpointName": endpoint,
                "DesiredWeightsAndCapacities": [{"VariantName": variant, "DesiredInstanceCount": capacity}],
            })
        except ValidationError as e:  # busy (someone else is updating it): try again next pass
            log.info("autoscaling %s waits: %s", record.name, e)
            return {}
        log.info("autoscaling %s to %d instances: %s", record.name, capacity, cause)
        activity = {
            "ActivityId": str(uuid.uuid4()),
            "ServiceNamespace": spec.SERVICE_NAMESPACE,
            "ResourceId": record.name,
            "ScalableDimension": spec.DIMENSION,
            "Description": f"Setting desired instance count to {capacity}.",
            "Cause": cause,
            "StartTime": now,
            "StatusCode": "InProgress",
            "StatusMessage": "Waiting for the endpoint to be InService.",
            "capacity": capacity,
        }
        changes: dict[str, Any] = {"activities": [activity, *activities][: spec.ACTIVITY_LIMIT],
                                   "last_scaling": now}
        if direction == "out":
            changes["last_scale_out"] = now
        return changes


def _follow(activity: dict[str, Any], endpoint: Record | None, variant: str, now: float) -> dict[str, Any]:
    """An in-progress activity, finished if the endpoint has settled."""
    if activity["StatusCode"] != "InProgress":
        return activity
    if endpoint is None:
        return {**activity, "StatusCode": "Failed", "EndTime": now,
                "StatusMessage": "The endpoint was deleted."}
    if endpoint.status not in ("InService", "Failed"):
        return activity
    wanted = activity["capacity"]
    described = {v["VariantName"]: v for v in describe_endpoint(endpoint)["ProductionVariants"]}
    summary = described.get(variant)
    if summary is not None and summary["DesiredInstanceCount"] == wanted == summary["CurrentInstanceCount"]:
        return {**activity, "StatusCode": "Successful", "EndTime": now,
                "StatusMessage": f"Successfully set desired instance count to {wanted}."}
    if summary is not None and summary["DesiredInstanceCount"] == wanted:
        return activity  # InService but the router's instances are still catching up
    reason = endpoint.state.get("FailureReason") or "the endpoint's instance count was changed"
    return {**activity, "StatusCode": "Failed", "EndTime": now,
            "StatusMessage": f"Failed to set desired instance count to {wanted}: {reason}."}


def _in_progress(activities: list[dict[str, Any]]) -> bool:
    return any(a["StatusCode"] == "InProgress" for a in activities)


def _cause(name: str, ask: Proposal, side: str, policy: dict[str, Any]) -> str:
    target = policy["config"]["TargetValue"]
    return (f"target tracking policy {name}: {spec.PREDEFINED_METRIC} averaged {ask.metric:.2f} "
            f"over the last {ask.datapoints} datapoints, {side} the target {target:g}")
