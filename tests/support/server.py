"""A real modelyard server process for integration tests, driven through boto3."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

_START_TIMEOUT = 60.0


@dataclasses.dataclass
class RunningServer:
    """One server process on 127.0.0.1 with its own home directory."""

    home: Path
    proc: subprocess.Popen[bytes]
    url: str
    env: dict[str, str]

    def keys(self) -> tuple[str, str]:
        data = json.loads((self.home / "credentials.json").read_text())
        return data["access_key_id"], data["secret_access_key"]

    def client(self, service: str, **overrides: Any) -> Any:
        key, secret = self.keys()
        kwargs: dict[str, Any] = dict(
            endpoint_url=self.url, region_name="us-east-1", aws_access_key_id=key,
            aws_secret_access_key=secret,
            config=Config(retries={"max_attempts": 1}, read_timeout=30),
        )
        kwargs.update(overrides)
        return boto3.session.Session().client(service, **kwargs)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        """SIGKILL, as a crash would: no cleanup runs."""
        self.proc.kill()
        self.proc.wait(10)


def start_server(
    home: Path, extra_env: dict[str, str] | None = None, args: Sequence[str] = ()
) -> RunningServer:
    """Start ``modelyard server`` for ``home`` on a free port and wait until it answers.

    ``args`` are further command-line options, e.g. ``["--s3", "--s3-port", "0"]``.
    """
    home.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update({"MODELYARD_STRICT_RESPONSES": "1", "MODELYARD_STOP_GRACE_SECONDS": "10"})
    env.update(extra_env or {})
    (home / "server.json").unlink(missing_ok=True)
    with open(home / "server.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "modelyard", "server", "--home", str(home), "--port", "0", *args],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {(home / 'server.log').read_text()[-3000:]}")
        try:
            url = json.loads((home / "server.json").read_text())["url"]
            with urllib.request.urlopen(url + "/ping", timeout=2):
                return RunningServer(home=home, proc=proc, url=url, env=env)
        except (OSError, ValueError, KeyError):
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("server did not start in time")


ENDED = ("Completed", "Failed", "Stopped")


def wait_for_status(describe: Callable[[], dict[str, Any]], status_key: str, timeout: float,
                    statuses: tuple[str, ...] = ENDED, interval: float = 0.1) -> dict[str, Any]:
    """Call ``describe`` until its answer's ``status_key`` is one of ``statuses``; that answer.

    TimeoutError, naming the last status, after ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        answer = describe()
        if answer[status_key] in statuses:
            return answer
        if time.monotonic() > deadline:
            detail = "/".join(str(answer[k]) for k in (status_key, "SecondaryStatus") if k in answer)
            raise TimeoutError(f"still {detail} after {timeout:g} s")
        time.sleep(interval)


def wait_for_job(sm: Any, name: str, timeout: float = 120.0, statuses: tuple[str, ...] = ENDED) -> dict[str, Any]:
    """Poll DescribeTrainingJob until the job reaches one of ``statuses``."""
    return wait_for_status(lambda: sm.describe_training_job(TrainingJobName=name),
                           "TrainingJobStatus", timeout, statuses)
