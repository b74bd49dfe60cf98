"""Model-server instances as processes: launch, follow to readiness, stop.

An instance is a plain dict in the endpoint record (so a restarted server finds it again)::

    {"id", "config", "variant", "port", "dir", "handle", "status", "events_offset",
     "failure", "started", "retire_at", "served"}

``status`` moves ``starting`` → ``ready`` (its InService event arrived and ``/ping`` answered)
or ``failed``; ``stopping`` once SIGTERM was sent. ``served`` says whether it was ever ready
(a failure before that means the instance could not start at all).
"""

from __future__ import annotations

import os
import secrets
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from modelyard.compute.base import EXIT_UNKNOWN, Executor, Handle, LaunchSpec
from modelyard.compute.ports import free_port
from modelyard.compute.resources import instance_slot
from modelyard.core.settings import Settings
from modelyard.jobs.tail import read_new_lines
from modelyard.runtime.serving.plan import EVENTS_FILE, ServePlan
from modelyard.serving.multimodel import instance_memory_mb

STARTUP_TIMEOUT = float(os.environ.get("MODELYARD_STARTUP_TIMEOUT_SECONDS", "600"))


class Fleet:
    """Starts and watches the instances of every endpoint."""

    def __init__(self, settings: Settings, executor: Executor, isolation: str) -> None:
        self.settings = settings
        self.executor = executor
        self.isolation = isolation

    def launch(self, endpoint: str, config: str, variant_name: str, variant: dict[str, Any]) -> dict[str, Any]:
        instance_id = f"i-{secrets.token_hex(4)}"
        port = free_port()
        directory = self.settings.home / "endpoints" / endpoint / instance_id
        environment = dict(variant["environment"])
        workers = int(environment.get("SAGEMAKER_MODEL_SERVER_WORKERS", 0)) or (
            1 if variant.get("serverless") else _default_workers(variant))
        plan = ServePlan(
            endpoint_name=endpoint, variant_name=variant_name, instance_id=instance_id,
            model_name=variant["model"], framework=variant["framework"],
            model_data_url=variant["model_data"], model_data_compressed=variant["compressed"],
            port=port, workers=workers, environment=environment, region=self.settings.region,
            isolation=self.isolation, multi_model=variant.get("multi_model", False),
            model_cache=variant.get("model_cache", True), memory_mb=instance_memory_mb(variant),
        )
        plan.write(directory)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
        env.update(self.settings.job_environment())
        env["MODELYARD_HOME"] = str(self.settings.home)
        spec = LaunchSpec(
            argv=[sys.executable, "-m", "modelyard.runtime.serving", str(directory)],
            env=env, cwd=directory, log_path=directory / "runtime.log",
        )
        handle = self.executor.launch(spec)
        return {
            "id": instance_id, "config": config, "variant": variant_name, "port": port,
            "dir": str(directory), "handle": str(handle), "status": "starting",
            "events_offset": 0, "failure": None, "started": time.time(), "retire_at": None,
            "served": False,
        }

    def follow(self, instance: dict[str, Any]) -> dict[str, Any]:
        """The instance after reading its new events and checking its process."""
        if instance["status"] == "failed":
            return instance
        instance = dict(instance)
        code = self.executor.poll(Handle.parse(instance["handle"]))
        events, instance["events_offset"] = read_new_lines(
            Path(instance["dir"]) / EVENTS_FILE, instance["events_offset"]
        )
        for event in events:
            if event.get("event") == "exit":
                instance["failure"] = event.get("failure") or instance["failure"]
            elif event.get("status") == "InService" and instance["status"] == "starting":
                instance["status"] = "ready" if _pings(instance["port"]) else "starting"
        if instance["status"] == "starting" and _waited_for_ping(instance):
            instance["status"] = "ready" if _pings(instance["port"]) else "starting"
        if instance["status"] == "ready":
            instance["served"] = True
        if code is not None and instance["status"] != "stopping":
            instance["status"] = "failed"
            instance["failure"] = instance["failure"] or _exit_reason(code)
        elif instance["status"] == "starting" and time.time() - instance["started"] > STARTUP_TIMEOUT:
            self.stop(instance)
            instance.update(status="failed", failure=f"The model server did not answer /ping within {STARTUP_TIMEOUT:.0f} s.")
        return instance

    def stop(self, instance: dict[str, Any]) -> dict[str, Any]:
        """SIGTERM: the instance finishes the requests it has, then exits."""
        self.executor.signal(Handle.parse(instance["handle"]), graceful=True)
        return {**instance, "status": "stopping" if instance["status"] != "failed" else "failed"}

    def gone(self, instance: dict[str, Any]) -> bool:
        """Whether the instance's process has ended."""
        return self.executor.poll(Handle.parse(instance["handle"])) is not None


def _waited_for_ping(instance: dict[str, Any]) -> bool:
    # An InService event read before the last restart is not re-read; ask /ping directly then.
    return instance["events_offset"] > 0 and time.time() - instance["started"] > 1.0


def _pings(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _exit_reason(code: int) -> str:
    if code == EXIT_UNKNOWN:
        return "The model server process ended while the platform was not watching it."
    return f"The model server process exited with code {code}."


def _default_workers(variant: dict[str, Any]) -> int:
    # SageMaker's default is one worker per vCPU; never more than this machine has
    return max(1, min(int(instance_slot(variant["instance_type"]).cpus), os.cpu_count() or 1))

