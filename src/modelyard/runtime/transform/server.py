"""The transform host's model server: the endpoint runtime, started as a child process.

The server is :mod:`modelyard.runtime.serving` unchanged, run in ``<host_dir>/server`` with a
:class:`~modelyard.runtime.serving.plan.ServePlan` and the batch variables of the container
contract (``SAGEMAKER_BATCH=True`` ...). It shares the host's process group, so a stop signal
reaches it and its workers too. Its log lines are copied into the host's log, so the job's
stream shows the model's own output.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from modelyard.compute.ports import free_port
from modelyard.compute.resources import instance_slot
from modelyard.jobs.tail import read_new_lines
from modelyard.runtime.failures import ClientError
from modelyard.runtime.reporting import Reporter
from modelyard.runtime.serving.plan import EVENTS_FILE, LOGS_FILE, ServePlan
from modelyard.runtime.transform.plan import TransformPlan

_POLL = 0.1
STARTUP_TIMEOUT = float(os.environ.get("MODELYARD_STARTUP_TIMEOUT_SECONDS", "600"))
_STRATEGIES = {"MultiRecord": "MULTI_RECORD", "SingleRecord": "SINGLE_RECORD"}


def server_workers(plan: TransformPlan) -> int:
    """MaxConcurrentTransforms, else SAGEMAKER_MODEL_SERVER_WORKERS, else the instance's vCPUs."""
    if plan.max_concurrent:
        return plan.max_concurrent
    configured = plan.environment.get("SAGEMAKER_MODEL_SERVER_WORKERS", "")
    if configured.isdigit() and int(configured) > 0:
        return int(configured)
    # one worker per vCPU as SageMaker's servers do, never more than this machine has
    return max(1, min(int(instance_slot(plan.instance_type).cpus), os.cpu_count() or 1))


def batch_environment(plan: TransformPlan) -> dict[str, str]:
    """The container variables of a batch transform (only those the request decides)."""
    env = {**plan.environment, "SAGEMAKER_BATCH": "True"}
    if plan.max_payload_mb:
        env["SAGEMAKER_MAX_PAYLOAD_IN_MB"] = str(plan.max_payload_mb)
    if plan.batch_strategy:
        env["SAGEMAKER_BATCH_STRATEGY"] = _STRATEGIES[plan.batch_strategy]
    if plan.max_concurrent:
        env["SAGEMAKER_MAX_CONCURRENT_TRANSFORMS"] = str(plan.max_concurrent)
    return env


class ModelServer:
    """Starts, watches and stops the host's model-server instance."""

    def __init__(self, plan: TransformPlan, host_dir: Path, reporter: Reporter) -> None:
        self.plan = plan
        self.dir = host_dir / "server"
        self.reporter = reporter
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self._logs_offset = 0
        self._stop_pump = threading.Event()
        self._pump: threading.Thread | None = None

    def start(self) -> None:
        """Write the serve plan and start the instance process."""
        plan = self.plan
        ServePlan(
            endpoint_name=plan.job_name, variant_name="AllTraffic", instance_id=plan.host,
            model_name=plan.model_name, framework=plan.framework,
            model_data_url=plan.model_data_url, model_data_compressed=plan.model_data_compressed,
            port=self.port, workers=server_workers(plan), environment=batch_environment(plan),
            region=plan.region, isolation=plan.isolation,
        ).write(self.dir)
        with open(self.dir / "runtime.log", "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "modelyard.runtime.serving", str(self.dir)],
                cwd=self.dir, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            )
        self._pump = threading.Thread(target=self._copy_logs, name="server-logs", daemon=True)
        self._pump.start()

    def wait_ready(self) -> None:
        """Block until ``/ping`` answers 200; ClientError when the server fails to start."""
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not self._get_ok("/ping"):
            assert self.process is not None
            if self.process.poll() is not None:
                raise ClientError(self._exit_reason())
            if time.monotonic() > deadline:
                raise ClientError(f"the model server did not answer /ping within {STARTUP_TIMEOUT:.0f} s")
            time.sleep(_POLL)

    def execution_parameters(self) -> dict[str, Any]:
        """``GET /execution-parameters``; empty when the server does not offer it."""
        try:
            with urllib.request.urlopen(self._url("/execution-parameters"), timeout=5) as r:
                answer = json.loads(r.read())
        except (OSError, ValueError):
            return {}
        return answer if isinstance(answer, dict) else {}

    def stop(self, grace: float = 15.0) -> None:
        """SIGTERM the instance (it drains its workers), then copy its last log lines."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._stop_pump.set()
        if self._pump is not None:
            self._pump.join(timeout=5)

    def _copy_logs(self) -> None:
        while not self._stop_pump.wait(0.2):
            self._drain_logs()
        self._drain_logs()

    def _drain_logs(self) -> None:
        lines, self._logs_offset = read_new_lines(self.dir / LOGS_FILE, self._logs_offset)
        for line in lines:
            self.reporter.log(str(line.get("m", "")))

    def _exit_reason(self) -> str:
        events, _ = read_new_lines(self.dir / EVENTS_FILE, 0)
        failures = [e.get("failure") for e in events if e.get("event") == "exit" and e.get("failure")]
        reason = str(failures[-1]) if failures else f"exited with code {self.process and self.process.returncode}"
        return f"the model server could not start: {reason.removeprefix('ClientError: ')}"

    def _get_ok(self, path: str) -> bool:
        try:
            with urllib.request.urlopen(self._url(path), timeout=2) as response:
                return response.status == 200
        except (OSError, urllib.error.URLError):
            return False

    def _url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"
