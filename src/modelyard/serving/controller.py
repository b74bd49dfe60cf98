"""The endpoint controller: converge every endpoint's fleet on its target, then route to it.

Each pass, for each endpoint:

1. follow every instance (events, process, ``/ping``);
2. deleting: stop everything, and drop the record once every process has ended;
3. a target instance that failed to start fails a Creating endpoint, and rolls an Updating one
   back to the config it was serving (FailureReason says why); a ready instance that died is
   replaced;
4. launch or stop instances until each target variant has its count;
5. once every target variant is ready, switch ``live`` to the target (the router follows at
   once) and retire the instances of the previous config after a short drain;
6. publish the routing table.

An update therefore never stops serving: the old fleet answers until the new one is ready.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from modelyard.runtime.serving.plan import LOGS_FILE
from modelyard.serving import rollout, spec
from modelyard.serving.fleet import Fleet
from modelyard.serving.routes import Route, RoutingTable, VariantRoute
from modelyard.serving.serverless import Demand
from modelyard.store.base import MetadataStore, Record, RecordNotFound
from modelyard.store.mutate import mutate

log = logging.getLogger(__name__)

# After traffic moves to a new fleet, the old one keeps its connections this long.
DRAIN_SECONDS = 2.0
_ACTIVE = ("Creating", "Updating", "InService", "Deleting", "RollingBack", "UpdateRollbackFailed")


class EndpointController:
    """Reconciles endpoints and publishes where their traffic goes."""

    def __init__(self, store: MetadataStore, fleet: Fleet, table: RoutingTable,
                 firing_alarms: Callable[[Sequence[str]], list[str]] | None = None,
                 demand: Demand | None = None) -> None:
        self.store = store
        self.fleet = fleet
        self.table = table
        self.demand = demand or Demand()
        # which of the named alarms are in ALARM (deployment guardrails ask each pass)
        self.firing_alarms = firing_alarms or (lambda names: [])

    def reconcile_all(self) -> int:
        busy = 0
        routes: dict[str, Route] = {}
        for record in self.store.iter_kind(spec.ENDPOINT, status_in=_ACTIVE):
            try:
                state = self.reconcile(record)
            except RecordNotFound:
                continue
            except Exception:
                log.exception("reconciling endpoint %s failed", record.name)
                continue
            if state is None:
                continue
            route = _route(record.name, state)
            if route is not None:
                routes[record.name] = route
            busy += state["EndpointStatus"] != "InService" or any(
                i["status"] != "ready" for i in state["fleet"])
        self.table.publish(routes)
        return busy

    def reconcile(self, record: Record) -> dict[str, Any] | None:
        """One pass over one endpoint; its new state, or None once it is deleted."""
        state = dict(record.state)
        fleet = [self.fleet.follow(i) for i in state.get("fleet", [])]
        if state["EndpointStatus"] == "Deleting":
            return self._delete(record, state, fleet)
        state, fleet = self._handle_failures(state, fleet)
        if state["EndpointStatus"] == "Failed":
            return self._save(record, state, fleet)
        capacity = rollout.green_capacity(state.get("rollout"))
        fleet = [self._retire(i, time.time(), DRAIN_SECONDS) if i.get("retire_at") else i for i in fleet]
        if state["EndpointStatus"] == "UpdateRollbackFailed":
            # it serves the instances it has, old and new, until an UpdateEndpoint says more
            return self._save(record, state, self._without_gone(fleet))
        fleet = self._scale(record.name, state["target"], fleet, capacity)
        state, fleet = self._promote(record.name, state, fleet, capacity)
        return self._save(record, state, fleet)

    def shutdown(self) -> None:
        """Stop every instance (a clean server stop); endpoints keep their desired state.

        A restarted server finds the processes gone and starts new ones. A crashed server, by
        contrast, leaves them running and reattaches to them.
        """
        for record in self.store.iter_kind(spec.ENDPOINT, status_in=_ACTIVE):
            for instance in record.state.get("fleet", []):
                self.fleet.stop(instance)
        self.table.publish({})

    # --- steps ---------------------------------------------------------------------------
    def _delete(self, record: Record, state: dict[str, Any], fleet: list[dict[str, Any]]) -> dict[str, Any] | None:
        fleet = [self.fleet.stop(i) if i["status"] not in ("stopping", "failed") else i for i in fleet]
        if all(self.fleet.gone(i) for i in fleet):
            self.store.delete(spec.ENDPOINT, record.name)
            return None
        return self._save(record, {**state, "live": None}, fleet)

    def _handle_failures(self, state: dict[str, Any], fleet: list[dict[str, Any]]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        target = state["target"]["config"]
        live = (state.get("live") or {}).get("config")
        failed = [i for i in fleet if i["status"] == "failed"]
        kept = [i for i in fleet if i["status"] != "failed"]
        for instance in failed:
            reason = f"Variant {instance['variant']}: {instance['failure']}"
            if state["EndpointStatus"] == "RollingBack" and instance["config"] == target and not instance.get("served"):
                # the old fleet cannot come back: as SageMaker, stop with what serves now
                log.error("endpoint rollback failed: %s", reason)
                failure = f"{state.get('FailureReason') or 'Update failed'}. The rollback failed: {reason}"
                return {**state, "EndpointStatus": "UpdateRollbackFailed", "FailureReason": failure,
                        "rollout": None, "LastModifiedTime": time.time()}, kept
            if instance["config"] == live and instance["config"] == target:
                log.warning("instance %s of %s died (%s); replacing it", instance["id"], instance["variant"], instance["failure"])
                continue
            if state["EndpointStatus"] == "Creating":
                kept = [self.fleet.stop(i) for i in kept]
                return {**state, "EndpointStatus": "Failed", "FailureReason": reason}, kept
            if state["EndpointStatus"] == "Updating" and instance["config"] == target:
                # roll back: keep serving the live config, drop the new fleet
                return self._roll_back(state, kept, reason)
        return state, kept

    def _scale(self, endpoint: str, target: dict[str, Any], fleet: list[dict[str, Any]],
               capacity: float) -> list[dict[str, Any]]:
        """Launch or stop instances until each target variant has ``capacity`` of its count."""
        fleet = list(fleet)
        for name, variant in target["variants"].items():
            mine = [i for i in fleet if i["config"] == target["config"] and i["variant"] == name
                    and i["status"] in ("starting", "ready") and i.get("retire_at") is None]
            count = _share_of(self._count(endpoint, name, variant), capacity)
            for _ in range(count - len(mine)):
                fleet.append(self.fleet.launch(endpoint, target["config"], name, variant))
            extra = sorted(mine, key=lambda i: i["status"] == "ready")[: max(0, len(mine) - count)]
            fleet = [self.fleet.stop(i) if i in extra else i for i in fleet]
        return fleet

    def _roll_back(self, state: dict[str, Any], fleet: list[dict[str, Any]], reason: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """Traffic back to the serving config; the new fleet goes away.

        A rolling update that has already retired blue capacity rolls back batch by batch
        instead (status RollingBack): green serves until blue is back.
        """
        target = state["target"]["config"]
        log.warning("endpoint update rolled back: %s", reason)
        counts = {n: v["count"] for n, v in state["target"]["variants"].items()}
        gradual = state.get("rollout") and rollout.rolling_back(state["rollout"], counts, reason)
        if gradual:
            return {**state, "EndpointStatus": "RollingBack", "FailureReason": reason,
                    "target": state["live_target"], "rollout": gradual,
                    "LastModifiedTime": time.time()}, fleet
        live = dict(state.get("live") or {})
        live.pop("canary", None)
        fleet = [self.fleet.stop(i) if i["config"] == target and target != live.get("config") else i for i in fleet]
        return {**state, "EndpointStatus": "InService", "FailureReason": reason, "live": live,
                "target": state["live_target"], "rollout": None, "LastModifiedTime": time.time()}, fleet

    def _count(self, endpoint: str, name: str, variant: dict[str, Any]) -> int:
        """Instances a variant should have: its count, or for serverless what demand asks."""
        if variant.get("serverless"):
            return self.demand.instances(endpoint, name, variant["serverless"])
        return int(variant["count"])

    def _ready(self, endpoint: str, target: dict[str, Any], fleet: list[dict[str, Any]],
               capacity: float) -> bool:
        """Whether every target variant has ``capacity`` of its count ready."""
        return all(
            sum(1 for i in fleet if i["config"] == target["config"] and i["variant"] == name
                and i["status"] == "ready" and i.get("retire_at") is None)
            >= _share_of(self._count(endpoint, name, variant), capacity)
            for name, variant in target["variants"].items()
        )

    def _promote(self, endpoint: str, state: dict[str, Any], fleet: list[dict[str, Any]],
                 capacity: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        target = state["target"]
        now = time.time()
        ready = self._ready(endpoint, target, fleet, capacity)
        weights = {name: variant["weight"] for name, variant in target["variants"].items()}
        plan = state.get("rollout")
        if plan and state["EndpointStatus"] == "RollingBack":
            if not ready:
                return state, fleet
            share = rollout.next_rollback_share(plan)
            if share > 0:  # the next batch of blue is up: take traffic back from green
                state = _with_canary_share(state, share, {**plan, "share": share})
                green = state["live"]["canary"]["config"]
                return state, self._shrink(fleet, green, plan["green"], share, now)
            state = {**state, "EndpointStatus": "InService", "rollout": None, "LastModifiedTime": now}
        elif plan and state["EndpointStatus"] == "Updating":
            action, progress = rollout.step(plan, now, self.firing_alarms, ready)
            if action.startswith("rollback:"):
                return self._roll_back(state, fleet, "Rolled back: " + action.split(":", 1)[1])
            if action != "done":
                share = rollout.green_share(progress)
                state = {**state, "rollout": progress,
                         "live": {**state["live"], "canary": {"config": target["config"], "weights": weights, "share": share}}}
                if progress["type"] != "ROLLING":  # blue/green keeps blue whole until the end
                    return state, fleet
                blue = state["live_target"]
                counts = {n: v["count"] for n, v in blue["variants"].items()}
                return state, self._shrink(fleet, blue["config"], counts, 1.0 - share, now)
            state = {**state, "rollout": None, "drain": max(DRAIN_SECONDS, progress["termination_wait"])}
        if ready:
            state = {**state, "live": {"config": target["config"], "weights": weights}, "live_target": target}
            if state["EndpointStatus"] in ("Creating", "Updating"):
                state.update(EndpointStatus="InService", LastModifiedTime=now)
        live = state.get("live") or {}
        retired = []
        for instance in fleet:
            current = instance["config"] == live.get("config") and instance["variant"] in target["variants"]
            if current or instance["status"] in ("stopping", "failed") or not ready:
                retired.append(instance)
            else:
                retired.append(self._retire(instance, now, float(state.get("drain", DRAIN_SECONDS))))
        return state, self._without_gone(retired)

    def _without_gone(self, fleet: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The fleet less the stopped or failed instances whose processes have ended."""
        return [i for i in fleet if not (i["status"] in ("stopping", "failed") and self.fleet.gone(i))]

    def _retire(self, instance: dict[str, Any], now: float, drain: float) -> dict[str, Any]:
        """Take an instance out of routing now and stop it once ``drain`` has passed."""
        if instance.get("retire_at") is None:
            return {**instance, "retire_at": now + drain}
        if now >= instance["retire_at"] and instance["status"] not in ("stopping", "failed"):
            return self.fleet.stop(instance)
        return instance

    def _shrink(self, fleet: list[dict[str, Any]], config: str, counts: dict[str, int],
                share: float, now: float) -> list[dict[str, Any]]:
        """Retire the instances of ``config`` beyond ``share`` of each variant's count (the
        fleet that is handing its traffic over, batch by batch)."""
        kept: set[str] = set()
        for name, count in counts.items():
            serving = [i for i in fleet if i["config"] == config and i["variant"] == name
                       and i["status"] in ("starting", "ready") and i.get("retire_at") is None]
            serving.sort(key=lambda i: i["status"] != "ready")  # ready ones stay longest
            kept.update(i["id"] for i in serving[:_share_of(count, share)])
        return [self._retire(i, now, DRAIN_SECONDS)
                if i["config"] == config and i["id"] not in kept and i["status"] in ("starting", "ready")
                else i for i in fleet]

    def _save(self, record: Record, state: dict[str, Any], fleet: list[dict[str, Any]]) -> dict[str, Any]:
        streams = list(state.get("streams", []))
        known = {s["name"] for s in streams}
        streams += [
            {"name": f"{i['variant']}/{i['id']}", "path": str(Path(i["dir"]) / LOGS_FILE), "created": i["started"]}
            for i in fleet if f"{i['variant']}/{i['id']}" not in known
        ]
        new = {**state, "fleet": fleet, "streams": streams}
        if new != dict(record.state):
            def apply(current: dict[str, Any]) -> dict[str, Any]:
                # the API may have changed target or status meanwhile: keep its word on those
                merged = {**new}
                if current.get("target") != record.state.get("target"):
                    merged["target"] = current["target"]
                if current["EndpointStatus"] != record.state["EndpointStatus"]:
                    merged["EndpointStatus"] = current["EndpointStatus"]
                return merged
            mutate(self.store, spec.ENDPOINT, record.name, apply, status_key="EndpointStatus")
        return new


def _share_of(count: int, share: float) -> int:
    """``share`` of ``count`` instances, rounded up (a fraction of an instance is one)."""
    return count if share >= 1.0 else math.ceil(round(count * share, 9))


def _with_canary_share(state: dict[str, Any], share: float, plan: dict[str, Any]) -> dict[str, Any]:
    live = state["live"]
    return {**state, "rollout": plan, "live": {**live, "canary": {**live["canary"], "share": share}}}


def _route(name: str, state: dict[str, Any]) -> Route | None:
    live = state.get("live")
    if not live:
        return None
    canary = live.get("canary")
    share = float(canary["share"]) if canary else 0.0
    known = state.get("live_target") or state["target"]
    variants = _variant_routes(state["fleet"], live["config"], live["weights"], 1.0 - share, known)
    if canary:
        variants += _variant_routes(state["fleet"], canary["config"], canary["weights"], share, state["target"])
    shadows = _shadow_routes(state["fleet"], live["config"], live["weights"], known)
    return Route(name, tuple(variants), known.get("capture"), shadows) if variants else None


def _shadow(target: dict[str, Any], config: str, variant: str) -> bool:
    return target["config"] == config and bool(target["variants"].get(variant, {}).get("shadow"))


def _ready_ports(fleet: list[dict[str, Any]], config: str, variant: str) -> tuple[int, ...]:
    # an instance with a retirement time is draining: it gets no new requests
    return tuple(i["port"] for i in fleet if i["config"] == config and i["variant"] == variant
                 and i["status"] == "ready" and i.get("retire_at") is None)


def _shadow_routes(fleet: list[dict[str, Any]], config: str, weights: dict[str, float],
                   target: dict[str, Any]) -> tuple[VariantRoute, ...]:
    """The ready shadow variants of the live config; a shadow's weight over the production
    variants' total is the share of requests it gets a copy of."""
    production = sum(w for v, w in weights.items() if not _shadow(target, config, v)) or 1.0
    return tuple(
        VariantRoute(variant, min(1.0, weight / production), ports)
        for variant, weight in weights.items()
        if _shadow(target, config, variant) and (ports := _ready_ports(fleet, config, variant))
    )


def _variant_routes(fleet: list[dict[str, Any]], config: str, weights: dict[str, float], share: float,
                    target: dict[str, Any]) -> list[VariantRoute]:
    """The ready production variants of one config, their weights scaled so the config gets
    ``share``.

    A serverless variant is routed even with no instance: the router cold-starts one.
    """
    weights = {v: w for v, w in weights.items() if not _shadow(target, config, v)}
    total = sum(weights.values()) or 1.0
    routes = []
    for variant, weight in weights.items():
        ports = _ready_ports(fleet, config, variant)
        serverless = target["variants"].get(variant, {}).get("serverless") if target["config"] == config else None
        limit = int(serverless["MaxConcurrency"]) if serverless else None
        known = target["variants"].get(variant, {}) if target["config"] == config else {}
        multi = bool(known.get("multi_model"))
        if (ports or limit) and share > 0:
            routes.append(VariantRoute(variant, weight / total * share, ports, limit, multi))
    return routes
