"""The job kernel: one lifecycle for every kind of job that runs hosts.

queued → (capacity acquired) → hosts launched → running (events, logs, metrics, time limits,
stop) → every host exited → terminal, or back to queued for a spot restart.

A kind plugs in through a few hooks on :class:`JobController` (the host plans, its slots, what
to add to the record when it finishes). Everything the kernel needs to pick a job up again after
a restart is in the record's ``state["_run"]``; only read offsets of log files live in memory,
and re-reading a log is harmless because metric points are deduplicated by line number.
"""

from __future__ import annotations

import abc
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from modelyard.compute.base import EXIT_UNKNOWN, Executor, Handle, LaunchSpec
from modelyard.compute.resources import Capacity, Slot
from modelyard.core.settings import Settings
from modelyard.jobs import status as js
from modelyard.jobs.tail import read_new_lines
from modelyard.runtime.plan import EVENTS_FILE, EXIT_STOPPED, LOGS_FILE, PlanFile
from modelyard.store.base import MetadataStore, Record, RecordNotFound
from modelyard.store.mutate import Mutation, mutate

log = logging.getLogger(__name__)


class JobController(abc.ABC):
    """Reconciles every active job of one kind. Subclasses supply the kind's hooks."""

    kind: str = ""
    #: CloudWatch log group of this kind's streams
    log_group: str = ""
    #: the module each host runs as ``python -m <module> <host_dir>``
    runtime_module: str = "modelyard.runtime"

    def __init__(
        self,
        settings: Settings,
        store: MetadataStore,
        executor: Executor,
        capacity: Capacity,
    ) -> None:
        self.settings = settings
        self.store = store
        self.executor = executor
        self.capacity = capacity
        self.stop_grace = float(os.environ.get("MODELYARD_STOP_GRACE_SECONDS", "120"))
        # host dir -> (byte offset, lines read) of its log file
        self._log_offsets: dict[str, tuple[int, int]] = {}

    # --- hooks ---------------------------------------------------------------------------
    @abc.abstractmethod
    def host_plans(self, record: Record, attempt: int) -> Sequence[PlanFile]:
        """The plan of every host for one attempt of the job."""

    @abc.abstractmethod
    def slots(self, record: Record) -> list[Slot]:
        """What each host takes from the machine."""

    def max_runtime(self, record: Record) -> float | None:
        """Seconds of running after which the job is stopped, or None."""
        return None

    def max_wait(self, record: Record) -> float | None:
        """Seconds since creation after which a restartable job gives up, or None."""
        return None

    def restartable(self, record: Record) -> bool:
        """Whether an interruption restarts the job (managed spot) instead of stopping it."""
        return False

    def on_log_lines(
        self, record: Record, host_index: int, first_line: int, lines: list[dict[str, Any]]
    ) -> None:
        """New log lines of one host (``{"t": ms, "m": text}``), e.g. to extract metrics.

        ``first_line`` is the 0-based number of the first of ``lines`` in the host's log.
        """

    def on_finished(self, record: Record, state: dict[str, Any]) -> dict[str, Any]:
        """Add the kind's final fields to a state that has just become terminal."""
        return state

    # --- entry points --------------------------------------------------------------------
    def reconcile_all(self) -> int:
        """One pass over every active job; returns how many are still active."""
        active = 0
        for record in self.store.iter_kind(self.kind, status_in=sorted(js.ACTIVE)):
            try:
                self.reconcile(record)
            except RecordNotFound:
                continue
            except Exception:  # one broken job must not stop the others
                log.exception("reconciling %s %s failed", self.kind, record.name)
            active += 1
        return active

    def reconcile(self, record: Record) -> None:
        run = record.state.get("_run", {})
        phase = run.get("phase", "queued")
        if phase == "queued":
            self._reconcile_queued(record)
        else:
            self._reconcile_running(record)

    def request_stop(self, name: str) -> Record:
        """Mark the job Stopping; the next pass signals its hosts."""
        def mutate(state: dict[str, Any]) -> dict[str, Any] | None:
            if state["Status"] != "InProgress":
                return None
            new = js.advance(state, "Stopping", time.time())
            new["_run"] = {**state.get("_run", {}), "stop_reason": "user"}
            return new
        return self.mutate(name, mutate)

    def request_interrupt(self, name: str) -> Record:
        """Interrupt a running job as a spot reclaim would (for tests and drills)."""
        def mutate(state: dict[str, Any]) -> dict[str, Any] | None:
            run = state.get("_run", {})
            if state["Status"] != "InProgress" or run.get("phase") != "running":
                return None
            return {**state, "_run": {**run, "stop_reason": "interrupt"}}
        return self.mutate(name, mutate)

    def mutate(self, name: str, fn: Mutation) -> Record:
        """Apply ``fn`` to the latest state until the compare-and-swap wins."""
        return mutate(self.store, self.kind, name, fn)

    # --- phases --------------------------------------------------------------------------
    def _reconcile_queued(self, record: Record) -> None:
        now = time.time()
        state = dict(record.state)
        run = dict(state.get("_run", {}))
        if state["Status"] == "Stopping":
            self._finish(record.name, "Stopped")
            return
        limit = self.max_wait(record)
        if limit is not None and now - record.created > limit:
            self._finish(record.name, "MaxWaitTimeExceeded")
            return
        if not self.capacity.try_acquire(record.name, self.slots(record)):
            # the job queues in Starting, as SageMaker's do while instances are found
            waiting = js.MESSAGES["Waiting"]
            if state["SecondaryStatusTransitions"][-1].get("StatusMessage") != waiting:
                self.mutate(record.name, lambda s: js.advance(s, s["SecondaryStatus"], now, waiting))
            return
        attempt = int(run.get("attempt", 1))
        try:
            hosts = self._launch(record, attempt)
        except Exception as e:
            self.capacity.release(record.name)
            log.exception("launching %s failed", record.name)
            self._finish(record.name, "Failed", f"InternalServerError: could not start the job: {e}")
            return

        def mutate(s: dict[str, Any]) -> dict[str, Any]:
            r = dict(s.get("_run", {}))
            r.update(phase="running", attempt=attempt, hosts=hosts, attempt_started=now)
            r.setdefault("started", now)
            r["streams"] = r.get("streams", []) + [
                {"name": h["stream"], "path": str(Path(h["dir"]) / LOGS_FILE), "created": now}
                for h in hosts
            ]
            new = js.advance(s, "Starting", now, "Preparing the instances for training")
            new["_run"] = r
            return new

        self.mutate(record.name, mutate)

    def _launch(self, record: Record, attempt: int) -> list[dict[str, Any]]:
        plans = self.host_plans(record, attempt)
        job_dir = self.job_dir(record.name)
        # stream names carry the start second; a restart within the same second must not reuse one
        used = {s["name"] for s in record.state.get("_run", {}).get("streams", [])}
        epoch = int(time.time())
        while any(f"{record.name}/{p.host}-{epoch}" in used for p in plans):
            epoch += 1
        hosts = []
        for plan in plans:
            host_dir = job_dir / f"attempt-{attempt}" / plan.host
            plan.write(host_dir)
            handle = self.executor.launch(self._launch_spec(plan, host_dir))
            hosts.append({
                "host": plan.host,
                "dir": str(host_dir),
                "handle": str(handle),
                "stream": f"{record.name}/{plan.host}-{epoch}",
                "events_offset": 0,
                "exit_code": None,
                "failure": None,
            })
        return hosts

    def _launch_spec(self, plan: PlanFile, host_dir: Path) -> LaunchSpec:
        # under namespace isolation the runtime unshares its own mount namespace
        argv = [sys.executable, "-m", self.runtime_module, str(host_dir)]
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
        env.update(self.settings.job_environment())
        env["MODELYARD_HOME"] = str(self.settings.home)
        return LaunchSpec(argv=argv, env=env, cwd=host_dir, log_path=host_dir / "runtime.log",
                          warm_start=self.warm_start(plan))

    def warm_start(self, plan: PlanFile) -> bool:
        """Whether the host of ``plan`` runs only platform code, so it may be forked warm."""
        return False

    def job_dir(self, name: str) -> Path:
        return self.settings.home / "jobs" / self.kind / name

    def _reconcile_running(self, record: Record) -> None:
        now = time.time()
        run = dict(record.state.get("_run", {}))
        if not self.capacity.try_acquire(record.name, self.slots(record)):
            self.capacity.force_acquire(record.name, self.slots(record))
        hosts = [dict(h) for h in run.get("hosts", [])]
        secondary: list[tuple[str, str | None, float]] = []
        for index, host in enumerate(hosts):
            self._follow_host(record, index, host, secondary)
        changes: dict[str, Any] = {"hosts": hosts}
        reason = run.get("stop_reason") or self._new_stop_reason(record, run, hosts, changes, now)
        if reason and any(h["exit_code"] is None for h in hosts):
            self._signal_hosts(hosts, run, changes, now)
        # progress first, so a status reported just before exiting is still in the history
        self._save_progress(record, run, changes, secondary, now)
        if all(h["exit_code"] is not None for h in hosts):
            self._hosts_done(record, hosts, {**run, **changes}, now)

    def _new_stop_reason(
        self, record: Record, run: dict[str, Any], hosts: list[dict[str, Any]],
        changes: dict[str, Any], now: float,
    ) -> str | None:
        """Why a running job must stop now (recorded in ``changes``), or None."""
        broken = [i for i, h in enumerate(hosts) if h["exit_code"] not in (None, 0)]
        limit, wait = self.max_runtime(record), self.max_wait(record)
        if broken:
            # as SageMaker does, one failed host ends every host (the others may be blocked
            # in a collective waiting for it); its failure is the job's
            changes["failed_host"] = broken[0]
            reason = "host_failed"
        elif limit is not None and now - float(run.get("started", now)) > limit:
            reason = "MaxRuntimeExceeded"
        elif wait is not None and now - record.created > wait:
            reason = "MaxWaitTimeExceeded"
        else:
            return None
        changes["stop_reason"] = reason
        return reason

    def _follow_host(
        self, record: Record, index: int, host: dict[str, Any],
        secondary: list[tuple[str, str | None, float]],
    ) -> None:
        if host["exit_code"] is not None:
            return
        host_dir = Path(host["dir"])
        code = self.executor.poll(Handle.parse(host["handle"]))
        events, host["events_offset"] = read_new_lines(host_dir / EVENTS_FILE, host["events_offset"])
        for event in events:
            if event.get("event") == "status" and index == 0:
                # the runtime's own clock: when the change happened, not when it was noticed
                secondary.append((event["status"], event.get("message"), float(event.get("t", time.time()))))
            elif event.get("event") == "exit":
                host["exit_code"] = int(event.get("code", 1))
                host["failure"] = event.get("failure")
        self._follow_logs(record, index, host_dir)
        if host["exit_code"] is None and code is not None:
            host["exit_code"] = 2 if code in (0, EXIT_UNKNOWN) else code
            host["failure"] = (
                "InternalServerError: the job host process ended while the server was not watching it"
                if code == EXIT_UNKNOWN
                else f"InternalServerError: the job host process exited with code {code} before reporting"
            )

    def _follow_logs(self, record: Record, index: int, host_dir: Path) -> None:
        key = str(host_dir)
        offset, count = self._log_offsets.get(key, (0, 0))
        lines, offset = read_new_lines(host_dir / LOGS_FILE, offset)
        self._log_offsets[key] = (offset, count + len(lines))
        if lines:
            self.on_log_lines(record, index, count, lines)

    def _signal_hosts(self, hosts: list[dict[str, Any]], run: dict[str, Any], changes: dict[str, Any], now: float) -> None:
        signalled = run.get("signalled_at")
        if signalled is None:
            changes["signalled_at"] = now
            for h in hosts:
                if h["exit_code"] is None:
                    self.executor.signal(Handle.parse(h["handle"]), graceful=True)
        elif now - float(signalled) > self.stop_grace + 10:
            for h in hosts:
                if h["exit_code"] is None:
                    self.executor.signal(Handle.parse(h["handle"]), graceful=False)

    def _save_progress(
        self, record: Record, run: dict[str, Any], changes: dict[str, Any],
        secondary: list[tuple[str, str | None, float]], now: float,
    ) -> None:
        moved = [h["events_offset"] for h in changes["hosts"]] != [h["events_offset"] for h in run.get("hosts", [])]
        if not (secondary or moved or set(changes) - {"hosts"}):
            return

        def mutate(s: dict[str, Any]) -> dict[str, Any]:
            new = dict(s)
            if new["Status"] == "InProgress":
                for status, message, at in secondary:
                    new = js.advance(new, status, min(at, now), message)
            new["_run"] = {**s.get("_run", {}), **changes}
            return new

        self.mutate(record.name, mutate)

    def _hosts_done(self, record: Record, hosts: list[dict[str, Any]], run: dict[str, Any], now: float) -> None:
        self.capacity.release(record.name)
        billable = float(run.get("billable", 0.0)) + (now - float(run.get("attempt_started", now)))
        run = {**run, "hosts": hosts, "billable": billable, "signalled_at": None}
        reason = run.get("stop_reason")
        failed = [h for h in hosts if h["exit_code"] not in (0, EXIT_STOPPED)]
        if reason == "host_failed":
            first = hosts[int(run.get("failed_host", 0))]
            self._finish(record.name, "Failed", first["failure"] or "AlgorithmError: a host failed", run=run)
        elif reason == "interrupt" and self.restartable(record):
            self._restart(record.name, run, now)
        elif reason in ("user", "interrupt"):
            self._finish(record.name, "Stopped", run=run)
        elif reason in ("MaxRuntimeExceeded", "MaxWaitTimeExceeded"):
            self._finish(record.name, reason, run=run)
        elif failed:
            self._finish(record.name, "Failed", failed[0]["failure"] or "AlgorithmError: the job failed", run=run)
        else:
            self._finish(record.name, "Completed", run=run)

    def _restart(self, name: str, run: dict[str, Any], now: float) -> None:
        def mutate(s: dict[str, Any]) -> dict[str, Any]:
            new = js.advance(s, "Interrupted", now)
            new = js.advance(new, "Restarting", now)
            new["_run"] = {
                **run, "phase": "queued", "attempt": int(run.get("attempt", 1)) + 1,
                "stop_reason": None, "hosts": [],
            }
            return new
        self.mutate(name, mutate)

    def _finish(self, name: str, secondary: str, failure: str | None = None, run: dict[str, Any] | None = None) -> None:
        self.capacity.release(name)
        prefix = f"{self.job_dir(name)}/"
        for key in [k for k in self._log_offsets if k.startswith(prefix)]:
            del self._log_offsets[key]
        record = self.store.get(self.kind, name)

        def mutate(s: dict[str, Any]) -> dict[str, Any] | None:
            if js.is_terminal(s):
                return None
            now = time.time()
            new = js.advance(s, secondary, now)
            if failure:
                new["FailureReason"] = failure[:1024]
            r = {**s.get("_run", {}), **(run or {}), "phase": "done"}
            if "started" in r:
                r["ended"] = now
            new["_run"] = r
            return self.on_finished(record, new)

        self.mutate(name, mutate)
