"""Run ``python -m modelyard.runtime.serving`` on plans pointing at local model archives."""

from __future__ import annotations

import dataclasses
import http.client
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from host_helpers import runtime_env

from modelyard.runtime.serving.plan import ServePlan

STARTUP_SECONDS = 90


@dataclasses.dataclass
class Response:
    """One HTTP response, read whole."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclasses.dataclass
class Instance:
    """A running (or finished) instance process and its dir."""

    root: Path
    instance_dir: Path
    plan: ServePlan
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return self.plan.port

    def events(self) -> list[dict[str, Any]]:
        return _read_jsonl(self.instance_dir / "events.jsonl")

    def logs(self) -> list[str]:
        return [r["m"] for r in _read_jsonl(self.instance_dir / "logs.jsonl")]

    def statuses(self) -> list[str]:
        return [e["status"] for e in self.events() if e["event"] == "status"]

    def exit_event(self) -> dict[str, Any]:
        exits = [e for e in self.events() if e["event"] == "exit"]
        assert len(exits) == 1, self.events()
        return exits[0]

    def start(self, **env: str) -> Instance:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "modelyard.runtime.serving", str(self.instance_dir)],
            env=runtime_env(self.root, **env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        return self

    def wait_in_service(self) -> Instance:
        """Block until InService; AssertionError with the logs when it exits instead."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if "InService" in self.statuses():
                return self
            if any(e["event"] == "exit" for e in self.events()):
                raise AssertionError(f"exited: {self.events()}\n" + "\n".join(self.logs()))
            time.sleep(0.05)
        raise AssertionError("never InService:\n" + "\n".join(self.logs()))

    def wait_exit(self, timeout: float = STARTUP_SECONDS) -> int:
        assert self.process is not None
        self.process.communicate(timeout=timeout)
        return self.process.returncode

    def stop(self) -> int:
        """SIGTERM, then the exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait_exit(30)

    def connection(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        connection: http.client.HTTPConnection | None = None,
    ) -> Response:
        conn = connection or self.connection()
        try:
            conn.request(method, path, body=body, headers=headers or {})
            raw = conn.getresponse()
            return Response(raw.status, {k.lower(): v for k, v in raw.getheaders()}, raw.read())
        finally:
            if connection is None:
                conn.close()

    def invoke(self, body: bytes, content_type: str = "text/csv", **headers: str) -> Response:
        all_headers = {"Content-Type": content_type, **headers}
        return self.request("POST", "/invocations", body, all_headers)


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_instance(root: Path, name: str = "inst", **fields: Any) -> Instance:
    """An instance dir with a plan; ``fields`` override the plan's."""
    values: dict[str, Any] = {
        "endpoint_name": "ep",
        "variant_name": "AllTraffic",
        "instance_id": f"i-{name}",
        "model_name": "model",
        "framework": "xgboost",
        "model_data_url": None,
        "port": free_port(),
        "workers": 1,
    }
    values.update(fields)
    plan = ServePlan(**values)
    instance_dir = root / "instances" / name
    plan.write(instance_dir)
    return Instance(root=root, instance_dir=instance_dir, plan=plan)
