"""Warm starts at the runtime level: a zygote process driven over its socket, against cold runs.

The zygote runs as a real subprocess (this test process never forks): a host it forks must
end exactly like ``python -m modelyard.runtime`` on the same plan.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from host_helpers import Job, channel, run, runtime_env, write_code

WARM_LINE = "[modelyard] Warm start: modelyard.runtime.algorithms.xgboost runs in a fork"


class ZygoteProcess:
    """``python -m modelyard.runtime.zygote`` on one end of a socket pair held by the test."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        ours, theirs = socket.socketpair()
        self.env = env
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "modelyard.runtime.zygote", str(theirs.fileno())],
                env=env, stdout=out, stderr=subprocess.STDOUT, pass_fds=(theirs.fileno(),),
            )
        theirs.close()
        self.sock = ours
        self.sock.settimeout(120)
        self.stream = ours.makefile("rb")
        self.exits: dict[int, int] = {}
        assert self.receive()["ready"] is True

    def receive(self) -> dict[str, Any]:
        line = self.stream.readline()
        assert line, "the zygote closed its socket"
        message: dict[str, Any] = json.loads(line)
        return message

    def request(self, argv: list[str], env: dict[str, str], cwd: Path, log: Path) -> dict[str, Any]:
        body = {"id": 1, "argv": argv, "env": env, "cwd": str(cwd), "log": str(log)}
        self.sock.sendall(json.dumps(body).encode() + b"\n")
        while "exit" in (reply := self.receive()):
            self.exits[reply["exit"]] = reply["code"]
        return reply

    def fork_host(self, job: Job, **extra_env: str) -> int:
        env = {**self.env, **extra_env}
        argv = [sys.executable, "-m", "modelyard.runtime", str(job.host_dir)]
        reply = self.request(argv, env, job.host_dir, job.host_dir / "runtime.log")
        assert "pid" in reply, reply
        return int(reply["pid"])

    def wait_exit(self, pid: int) -> int:
        while pid not in self.exits:
            message = self.receive()
            self.exits[message["exit"]] = message["code"]
        return self.exits[pid]

    def close(self) -> int:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        return self.proc.wait(timeout=30)


@pytest.fixture
def zygote(tmp_path: Path) -> Iterator[ZygoteProcess]:
    process = ZygoteProcess(runtime_env(tmp_path), tmp_path / "zygote.log")
    yield process
    if process.proc.poll() is None:
        process.close()


def _xgboost_job(
    make_job: Any, tmp_path: Path, name: str, rows: str,
    environment: dict[str, str] | None = None, **hps: str,
) -> Job:
    data = write_code(tmp_path / "s3in" / name / "train", {"train.csv": rows})
    hyperparameters = {"num_round": "8", "objective": "reg:squarederror", "nthread": "1", **hps}
    return make_job(name, framework="xgboost", hyperparameters=hyperparameters,
                    channels=[channel("train", data, content_type="text/csv")],
                    environment=environment or {})


def _model(job: Job) -> bytes:
    with tarfile.open(job.plan.model_uri) as tar:
        member = tar.extractfile("xgboost-model")
        assert member is not None
        return member.read()


def _work_lines(job: Job) -> list[str]:
    return [line for line in job.logs() if not line.startswith("[modelyard]")]


ROWS = "".join(f"{i % 7},{i},{(i * 7) % 5}\n" for i in range(200))


def test_a_forked_host_trains_the_same_model_as_a_cold_one(
    zygote: ZygoteProcess, make_job: Any, tmp_path: Path
) -> None:
    cold = run(_xgboost_job(make_job, tmp_path, "cold", ROWS))
    warm = _xgboost_job(make_job, tmp_path, "warm", ROWS)
    code = zygote.wait_exit(zygote.fork_host(warm))
    assert cold.returncode == code == 0, warm.logs()
    assert warm.exit_event() == {**cold.exit_event(), "t": warm.exit_event()["t"]}
    assert _model(warm) == _model(cold)
    assert _work_lines(warm) == _work_lines(cold) and len(_work_lines(warm)) > 8
    assert any(line.startswith(WARM_LINE) for line in warm.logs())
    assert not any("Warm start" in line for line in cold.logs())
    assert warm.statuses() == cold.statuses()


def test_a_failing_forked_host_fails_like_a_cold_one(
    zygote: ZygoteProcess, make_job: Any, tmp_path: Path
) -> None:
    bad = "1,2,3\n4,five,6\n"
    cold = run(_xgboost_job(make_job, tmp_path, "cold", bad))
    warm = _xgboost_job(make_job, tmp_path, "warm", bad)
    code = zygote.wait_exit(zygote.fork_host(warm))
    assert cold.returncode == code != 0
    failure = warm.exit_event()["failure"]
    assert failure == cold.exit_event()["failure"] and failure.startswith("ClientError")


def test_a_killed_forked_host_reports_the_signal(
    zygote: ZygoteProcess, make_job: Any, tmp_path: Path
) -> None:
    job = _xgboost_job(make_job, tmp_path, "slow", ROWS, num_round="1000000")
    pid = zygote.fork_host(job)
    deadline = time.monotonic() + 60
    while not any(line.startswith("[0]") for line in job.logs()):
        assert time.monotonic() < deadline, job.logs()
        time.sleep(0.05)
    work = psutil.Process(pid).children()
    assert [p.cmdline() for p in work] == [psutil.Process(zygote.proc.pid).cmdline()]
    os.killpg(pid, signal.SIGKILL)
    for process in work:  # the algorithm's fork has a group of its own
        os.killpg(process.pid, signal.SIGKILL)
    assert zygote.wait_exit(pid) == -signal.SIGKILL


def test_load_time_variables_of_the_work_keep_the_algorithm_cold(
    zygote: ZygoteProcess, make_job: Any, tmp_path: Path
) -> None:
    job = _xgboost_job(make_job, tmp_path, "omp", ROWS, environment={"OMP_NUM_THREADS": "1"})
    assert zygote.wait_exit(zygote.fork_host(job)) == 0
    notes = [line for line in job.logs() if "fork" in line]
    assert notes == ["[modelyard] Not forking modelyard.runtime.algorithms.xgboost: "
                     "load-time variables differ: OMP_NUM_THREADS"]


def test_requests_it_cannot_serve_warm_are_refused(
    zygote: ZygoteProcess, make_job: Any, tmp_path: Path
) -> None:
    job = _xgboost_job(make_job, tmp_path, "refused", ROWS)
    log = tmp_path / "refused.log"
    other = zygote.request([sys.executable, "-m", "modelyard.runtime.other", "x"], zygote.env,
                           tmp_path, log)
    assert "only" in other["error"]
    argv = [sys.executable, "-m", "modelyard.runtime", str(job.host_dir)]
    threads = zygote.request(argv, {**zygote.env, "OPENBLAS_NUM_THREADS": "1"}, tmp_path, log)
    assert threads["error"] == "load-time variables differ: OPENBLAS_NUM_THREADS"
    off = zygote.request(argv, {**zygote.env, "MODELYARD_WARM_STARTS": "0"}, tmp_path, log)
    assert off["error"] == "MODELYARD_WARM_STARTS=0"
    assert not job.events()  # nothing ran


def test_the_zygote_ends_when_the_server_hangs_up(zygote: ZygoteProcess) -> None:
    assert zygote.close() == 0
