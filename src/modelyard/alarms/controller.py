"""The alarm controller: evaluates every metric alarm once per period and records transitions.

Each pass of the reconcile loop, an alarm whose latest whole period has not been evaluated yet
reads its evaluation range through :meth:`MetricsService.datapoints` (so any namespace modelyard
serves can be alarmed on) and moves to the state :func:`evaluate` gives. Only a change of state
is written; evaluating to the same state again leaves the record alone. The loop ticks at least
once a second, so 1-second periods are evaluated at most about a second late.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from modelyard.alarms import spec
from modelyard.alarms.evaluation import evaluate
from modelyard.api.cloudwatch_metrics import MetricsService
from modelyard.store.base import MetadataStore, Record, RecordNotFound
from modelyard.store.mutate import mutate

log = logging.getLogger(__name__)


class AlarmController:
    """Moves alarms between OK, ALARM and INSUFFICIENT_DATA as their metrics change."""

    def __init__(self, store: MetadataStore, metrics: MetricsService,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.metrics = metrics
        self.clock = clock
        # alarm -> (period end, configuration time) last evaluated: once per period is enough
        self._evaluated: dict[str, tuple[float, float]] = {}

    def reconcile_all(self) -> int:
        now = self.clock()
        names = set()
        for record in self.store.iter_kind(spec.KIND):
            names.add(record.name)
            try:
                self.reconcile(record, now)
            except RecordNotFound:
                continue
            except Exception:
                log.exception("evaluating alarm %s failed", record.name)
        for gone in set(self._evaluated) - names:
            del self._evaluated[gone]
        return 0  # alarms never make the loop spin faster: once per period is their pace

    def reconcile(self, record: Record, now: float) -> None:
        """Evaluate one alarm if a period ended since it was last evaluated."""
        config = record.state["config"]
        period = config["Period"]
        end = float(math.floor(now / period) * period)
        key = (end, record.state["AlarmConfigurationUpdatedTimestamp"])
        if self._evaluated.get(record.name) == key:
            return
        self._evaluated[record.name] = key
        start = end - config["EvaluationPeriods"] * period
        _, buckets = self.metrics.datapoints(config["Namespace"], config["MetricName"],
                                             config["Dimensions"], start, end, period,
                                             config.get("Unit"))
        values = {at: summary.value(config["Statistic"]) for at, summary in buckets.items()}
        verdict = evaluate(config, values, end, record.state["StateValue"])
        if verdict is None or verdict.state == record.state["StateValue"]:
            return

        def move(state: dict[str, Any]) -> dict[str, Any] | None:
            if state.get("AlarmConfigurationUpdatedTimestamp") != key[1]:
                return None  # reconfigured meanwhile: the next pass evaluates the new config
            return spec.transition(state, verdict.state, verdict.reason, verdict.reason_data, now)

        mutate(self.store, spec.KIND, record.name, move, status_key="StateValue")
        log.info("alarm %s: %s -> %s", record.name, record.state["StateValue"], verdict.state)


def firing_alarms(store: MetadataStore) -> Callable[[Sequence[str]], list[str]]:
    """``firing(names)``: those of the named alarms now in ALARM (missing ones are not)."""

    def firing(names: Sequence[str]) -> list[str]:
        out = []
        for name in names:
            try:
                if store.get(spec.KIND, name).status == "ALARM":
                    out.append(name)
            except RecordNotFound:
                continue
        return out

    return firing
