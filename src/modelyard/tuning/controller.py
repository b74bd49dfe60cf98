"""The tuning-job controller: plans trials with Optuna and runs them as training jobs.

One pass over an active tuning job:

1. **Follow its trials.** A planned trial whose training job does not exist yet is created (a
   restart between planning and creating lands here); a trial whose job ended gets its final
   status, objective and times copied into the tuning record.
2. **Stop or end.** A Stopping job stops its running trials and becomes Stopped once none runs.
   A job whose completion criteria, runtime limit or repeated failures end it stops its
   running trials the same way and then becomes Completed (or Failed).
3. **Prune.** With Hyperband or early stopping, the objective's values so far (the metric time
   series the training controller extracts from the logs) go to Optuna's pruner; a trial it
   rejects is stopped through the normal stop path and ends Stopped with its last value.
4. **Plan more.** While fewer than MaxParallelTrainingJobs trials run and the budget allows,
   the study is rebuilt from the record, asked for the next hyperparameters, the trial is
   written into the record, and only then is its training job created.

Everything a decision needs is in the store; the in-memory caches here only save reads (a
finished trial's metric series never changes) and are rebuilt after a restart.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import ResourceInUse, ValidationError
from modelyard.jobs import status as js
from modelyard.store.base import MetadataStore, Record, RecordNotFound
from modelyard.store.mutate import mutate
from modelyard.training.controller import KIND as TRAINING_KIND
from modelyard.training.service import TrainingService
from modelyard.tuning import trials as tr
from modelyard.tuning.spec import KIND, TuningPlan, child_name, plan_of

if TYPE_CHECKING:
    from modelyard.tuning import study as st

log = logging.getLogger(__name__)

ACTIVE = ("InProgress", "Stopping")
#: how often a running trial's objective series is read for the pruner, in seconds
PRUNE_READ_INTERVAL = 0.2


class TuningJobController:
    """Reconciles every active hyperparameter tuning job."""

    kind = KIND

    def __init__(self, store: MetadataStore, training: TrainingService) -> None:
        self.store = store
        self.training = training
        #: seconds between reads of one running trial's series (tests use 0: every pass)
        self.prune_read_interval = PRUNE_READ_INTERVAL
        self._plans: dict[str, tuple[float, TuningPlan]] = {}
        # finished trial's training job ARN -> its objective series (immutable once finished)
        self._finished_series: dict[str, st.Series] = {}
        # running trial's name -> the values the pruner has judged, and when they were read
        self._judged: dict[str, st.Series] = {}
        self._read_at: dict[str, float] = {}

    # --- entry points --------------------------------------------------------------------
    def reconcile_all(self) -> int:
        """One pass over every active tuning job; returns how many are still active."""
        active = 0
        for record in self.store.iter_kind(KIND, status_in=list(ACTIVE)):
            try:
                self.reconcile(record)
            except RecordNotFound:
                continue
            except Exception:  # one broken tuning job must not stop the others
                log.exception("reconciling tuning job %s failed", record.name)
            active += 1
        return active

    def reconcile(self, record: Record) -> None:
        plan = self.plan(record)
        record = self._follow_trials(record, plan)
        entries = list(record.state["_trials"])
        if record.status == "Stopping":
            self._wind_down(record, entries, "Stopped", None)
            return
        ending = record.state.get("_ending")
        if ending is None:
            ending = self._why_end(record, plan, entries)
            if ending is not None:
                record = self._save(record.name, lambda s: {**s, "_ending": ending})
        if ending is not None:
            self._wind_down(record, entries, ending["status"], ending.get("reason"))
            return
        self._prune(record, plan, entries)
        self._plan_more(record, plan, entries)

    def plan(self, record: Record) -> TuningPlan:
        """The record's plan, parsed once per tuning job."""
        cached = self._plans.get(record.name)
        if cached is None or cached[0] != record.created:
            cached = (record.created, plan_of(record.spec))
            self._plans[record.name] = cached
        return cached[1]

    # --- 1. follow the trials ------------------------------------------------------------
    def _follow_trials(self, record: Record, plan: TuningPlan) -> Record:
        updates: dict[int, dict[str, Any]] = {}
        dropped: set[int] = set()
        ended: dict[int, Record] = {}
        winding_down = record.status == "Stopping" or record.state.get("_ending") is not None
        for entry in record.state["_trials"]:
            if tr.is_final(entry):
                continue
            if not entry.get("created"):
                if winding_down:
                    dropped.add(entry["number"])  # planned, never started: it never existed
                else:
                    updates[entry["number"]] = self._create_trial(record, plan, entry)
                continue
            try:
                job = self.store.get(TRAINING_KIND, entry["name"])
            except RecordNotFound:
                updates[entry["number"]] = {
                    **entry, "status": "Failed", "objective": None, "steps": 0,
                    "failure": "The training job was deleted before it ended.", "end": time.time(),
                }
                continue
            if job.status in js.TERMINAL:
                ended[entry["number"]] = job
        rungs = self._last_judgement(record, plan, ended) if ended else {}
        for entry in record.state["_trials"]:
            if entry["number"] in ended:
                judged = {**entry, "attrs": rungs.get(entry["number"], entry.get("attrs", {}))}
                updates[entry["number"]] = self._finished(plan, judged, ended[entry["number"]])
        if not updates and not dropped:
            return record
        return self._save(record.name, _with_trials(updates, dropped))

    def _last_judgement(self, record: Record, plan: TuningPlan, ended: dict[int, Record]) -> dict[int, dict[str, Any]]:
        """System attributes of trials that just ended, after the pruner saw their last values.

        A trial that ends between two reads has values the pruner has not judged; Hyperband
        must still record the rungs they reach, because later trials are compared with them.
        """
        from modelyard.tuning import study as st
        from modelyard.tuning.strategies import make_pruner

        pruner = make_pruner(plan)
        if pruner is None:
            return {}
        entries = record.state["_trials"]
        rebuilt = st.rebuild(plan, entries, record.state.get("_warm", []), self._series_for(record, plan))
        out = {}
        for position, entry in enumerate(entries):
            job = ended.get(entry["number"])
            if job is None or entry.get("pruned") or entry.get("capped"):
                continue
            series = self._series(job.arn, plan.definition(entry["params"]).objective.metric)
            if len(series) > len(self._judged.get(entry["name"], {})):
                out[entry["number"]] = st.judge(rebuilt, pruner, position, series)[1]
        return out

    def _create_trial(self, record: Record, plan: TuningPlan, entry: dict[str, Any]) -> dict[str, Any]:
        definition = plan.definition(entry["params"])
        request = definition.request(entry["name"], entry["params"])
        try:
            self.training.submit_request(request, TuningJobArn=record.arn)
        except ResourceInUse:
            pass  # created just before a restart, or a lost race: the job is there either way
        except ValidationError as e:
            log.warning("tuning job %s: trial %s was refused: %s", record.name, entry["name"], e)
            now = time.time()
            return {
                **entry, "created": True, "status": "Failed", "objective": None, "steps": 0,
                "failure": f"ClientError: {e.message}"[:1024], "creation": now, "end": now,
            }
        return {**entry, "created": True}

    def _finished(self, plan: TuningPlan, entry: dict[str, Any], job: Record) -> dict[str, Any]:
        metric = plan.definition(entry["params"]).objective.metric
        series = self._series(job.arn, metric)
        if plan.early_stopping:  # the median rule reads finished trials' series again
            self._finished_series[job.arn] = series
        self._judged.pop(entry["name"], None)
        self._read_at.pop(entry["name"], None)
        final = {m["MetricName"]: m["Value"] for m in job.state.get("FinalMetricDataList") or []}
        value = final.get(metric)
        run = job.state.get("_run", {})
        return {
            **entry,
            "status": job.status,
            "objective": float(value) if value is not None else None,
            "steps": len(series),
            "failure": job.state.get("FailureReason"),
            "creation": job.created,
            "start": run.get("started"),
            "end": run.get("ended") or job.state.get("LastModifiedTime") or job.modified,
        }

    # --- 2. stop or end ------------------------------------------------------------------
    def _why_end(self, record: Record, plan: TuningPlan, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
        """Why the search ends now (``{"status", "reason"}``), or None to go on."""
        if plan.max_runtime is not None and time.time() - record.created > plan.max_runtime:
            return {"status": "Completed", "reason": None}
        failure = tr.failed_fast(entries, plan.max_jobs)
        if failure is not None:
            return {"status": "Failed", "reason": _failed_reason(failure)}
        progress = tr.progress(entries, plan.objective, plan.completion)
        if progress.reached:
            ending: dict[str, Any] = {"status": "Completed", "reason": None}
            if progress.converged:
                ending["converged_at"] = time.time()
            return ending
        done = len(entries) >= plan.max_jobs and all(tr.is_final(e) for e in entries)
        if not done:
            return None
        if not any(tr.objective_status(e) == "Succeeded" for e in entries):
            first = next(iter(sorted(entries, key=lambda e: e.get("end") or 0.0)), None)
            reason = _failed_reason(first) if first else "No training job was run."
            return {"status": "Failed", "reason": reason}
        return {"status": "Completed", "reason": None}

    def _wind_down(self, record: Record, entries: list[dict[str, Any]], status: str, reason: str | None) -> None:
        """Stop every running trial; once none runs, end the tuning job in ``status``."""
        running = [e for e in entries if e.get("created") and not tr.is_final(e)]
        for entry in running:
            self.training.controller.request_stop(entry["name"])
        if running:
            self.training.wake()
            return
        now = time.time()

        def finish(state: dict[str, Any]) -> dict[str, Any] | None:
            if state["Status"] not in ACTIVE:
                return None
            if any(not tr.is_final(e) and e.get("created") for e in state["_trials"]):
                return None
            new = {**state, "Status": status, "EndTime": now, "LastModifiedTime": now}
            if reason:
                new["FailureReason"] = reason[:1024]
            return new

        if self._save(record.name, finish).status not in ACTIVE:
            self._forget(record.name, entries)

    def _forget(self, name: str, entries: list[dict[str, Any]]) -> None:
        """Drop what the caches hold for a tuning job that has ended."""
        self._plans.pop(name, None)
        for entry in entries:
            self._finished_series.pop(self.training.arn(entry["name"]), None)
            self._judged.pop(entry["name"], None)
            self._read_at.pop(entry["name"], None)

    # --- 3. prune ------------------------------------------------------------------------
    def _prune(self, record: Record, plan: TuningPlan, entries: list[dict[str, Any]]) -> None:
        # Optuna is imported with the first tuning job, not with the server (~0.3 s of start)
        from modelyard.tuning import study as st
        from modelyard.tuning.strategies import make_pruner

        pruner = make_pruner(plan)
        if pruner is None:
            return
        fresh = self._fresh_series(plan, entries)
        if not fresh:
            return
        rebuilt = st.rebuild(plan, entries, record.state.get("_warm", []), self._series_for(record, plan))
        updates: dict[int, dict[str, Any]] = {}
        to_stop: list[str] = []
        for position, entry in enumerate(entries):
            series = fresh.get(entry["name"])
            if series is None:
                continue
            if plan.hyperband is not None and len(series) > plan.hyperband[1]:
                # Hyperband gives no trial more than MaxResource; it counts as complete
                updates[entry["number"]] = {**entry, "capped": True}
                to_stop.append(entry["name"])
                continue
            stop_at, attrs = st.judge(rebuilt, pruner, position, series)
            self._judged[entry["name"]] = series
            if stop_at is not None or attrs != entry.get("attrs", {}):
                updates[entry["number"]] = {**entry, "attrs": attrs, "pruned": stop_at is not None}
            if stop_at is not None:
                to_stop.append(entry["name"])
        if updates:
            self._save(record.name, _with_trials(updates, set()))
        for name in to_stop:
            log.info("tuning job %s: stopping trial %s early", record.name, name)
            self.training.controller.request_stop(name)
        if to_stop:
            self.training.wake()

    def _fresh_series(self, plan: TuningPlan, entries: list[dict[str, Any]]) -> dict[str, st.Series]:
        """The series of running trials that reported values the pruner has not judged yet."""
        now = time.monotonic()
        fresh: dict[str, st.Series] = {}
        for entry in entries:
            if not entry.get("created") or tr.is_final(entry) or entry.get("pruned") or entry.get("capped"):
                continue
            name = entry["name"]
            if now - self._read_at.get(name, 0.0) < self.prune_read_interval:
                continue
            self._read_at[name] = now
            metric = plan.definition(entry["params"]).objective.metric
            series = self._series(self.training.arn(name), metric)
            if len(series) > len(self._judged.get(name, {})):
                fresh[name] = series
        return fresh

    def _series_for(self, record: Record, plan: TuningPlan) -> Any:
        """What :func:`study.rebuild` gets as trials' intermediate values."""
        def series(entry: tr.Entry) -> st.Series | None:
            if not tr.is_final(entry):
                return self._judged.get(entry["name"])
            if not plan.early_stopping or tr.outcome(entry) != "complete":
                return None  # only the median rule reads other trials' whole series
            arn = self.training.arn(entry["name"])
            if arn not in self._finished_series:
                metric = plan.definition(entry["params"]).objective.metric
                self._finished_series[arn] = self._series(arn, metric)
            return self._finished_series[arn]
        return series

    def _series(self, arn: str, metric: str) -> st.Series:
        try:
            points = self.store.get_metric_points(arn, metric)
        except RecordNotFound:
            return {}
        return {step: p.value for step, p in enumerate(points, start=1)}

    # --- 4. plan more --------------------------------------------------------------------
    def _plan_more(self, record: Record, plan: TuningPlan, entries: list[dict[str, Any]]) -> None:
        running = sum(1 for e in entries if not tr.is_final(e))
        room = min(plan.max_parallel - running, plan.max_jobs - len(entries))
        if room <= 0:
            return
        planned = self._ask(record, plan, entries, room)
        count = len(entries)

        def append(state: dict[str, Any]) -> dict[str, Any] | None:
            # only the controller appends; anything else means this plan is stale
            if state["Status"] != "InProgress" or state.get("_ending") or len(state["_trials"]) != count:
                return None
            return {**state, "_trials": [*state["_trials"], *planned], "LastModifiedTime": time.time()}

        saved = self._save(record.name, append)
        if len(saved.state["_trials"]) != count + len(planned):
            return
        # the trials are on record: a crash from here on re-creates the same jobs
        created = {e["number"]: self._create_trial(saved, plan, e) for e in planned}
        self._save(record.name, _with_trials(created, set()))

    def _ask(self, record: Record, plan: TuningPlan, entries: Sequence[tr.Entry], room: int) -> list[dict[str, Any]]:
        from modelyard.tuning import study as st
        from modelyard.tuning.strategies import make_sampler

        rebuilt = st.rebuild(plan, entries, record.state.get("_warm", []), self._series_for(record, plan))
        seed = int(record.state["_seed"])
        planned = []
        for number in range(len(entries) + 1, len(entries) + room + 1):
            params, attrs = st.ask(rebuilt, plan, make_sampler(plan, seed, number))
            definition = plan.definition(params)
            planned.append({
                "number": number,
                "name": child_name(plan.name, record.created, number),
                "definition": definition.name,
                "params": params,
                "tuned": definition.tuned(params),
                "attrs": attrs,
                "created": False,
            })
        return planned

    def _save(self, name: str, fn: Any) -> Record:
        return mutate(self.store, KIND, name, fn)


def _with_trials(updates: dict[int, dict[str, Any]], dropped: set[int]) -> Any:
    """A mutation replacing trial entries by number (and removing ``dropped`` ones)."""
    def apply(state: dict[str, Any]) -> dict[str, Any]:
        entries = [updates.get(e["number"], e) for e in state["_trials"] if e["number"] not in dropped]
        return {**state, "_trials": entries, "LastModifiedTime": time.time()}
    return apply


def _failed_reason(entry: tr.Entry) -> str:
    why = entry.get("failure") or "it reported no value of the objective metric"
    return f"Training job {entry['name']} failed: {why}"[:1024]
