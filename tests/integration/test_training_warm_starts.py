"""Warm starts: built-in XGBoost jobs forked from a preloaded runtime behave like cold ones.

One server runs warm (the default), one with ``MODELYARD_WARM_STARTS=0``; the same jobs on both
must end the same way. Crashes, stops and a dying zygote use servers of their own.
"""

from __future__ import annotations

import json
import signal
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from modelyard.compute.warm import MAX_RESTARTS
from tests.integration.conftest import ROLE, XGBOOST_IMAGE
from tests.support.server import RunningServer, start_server, wait_for_job

#: room for two ml.m5.large hosts at once, whatever this machine has
ROOMY = {"MODELYARD_CPUS": "8", "MODELYARD_MEMORY_GIB": "64"}
WARM_LINE = "[modelyard] Warm start: modelyard.runtime.algorithms.xgboost runs in a fork"
ROWS = "".join(f"{(i * 7) % 2},{i % 13},{(i * 5) % 11},{i % 3}\n" for i in range(300))


@pytest.fixture(scope="module")
def warm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("warm"), ROOMY)
    yield server
    server.stop()


@pytest.fixture(scope="module")
def cold(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    server = start_server(tmp_path_factory.mktemp("cold"), {**ROOMY, "MODELYARD_WARM_STARTS": "0"})
    yield server
    server.stop()


def xgboost_job(
    server: RunningServer, name: str, rows: str = ROWS, hosts: int = 1, **hps: str
) -> dict[str, Any]:
    """A built-in XGBoost job on ``rows`` (CSV, label first), its data put in the server's S3."""
    data = server.home / "artifacts" / "s3" / "data" / name / "train.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.write_text(rows)
    hyperparameters = {"objective": "binary:logistic", "num_round": "12", "nthread": "1",
                       "eval_metric": "auc", **hps}
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": XGBOOST_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": hyperparameters,
        "InputDataConfig": [{
            "ChannelName": "train", "ContentType": "text/csv",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                            "S3Uri": f"s3://data/{name}/"}},
        }],
        "OutputDataConfig": {"S3OutputPath": "s3://out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": hosts,
                           "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
    }


def run_job(
    server: RunningServer, name: str, rows: str = ROWS, hosts: int = 1, **hps: str
) -> dict[str, Any]:
    sm = server.client("sagemaker")
    sm.create_training_job(**xgboost_job(server, name, rows, hosts, **hps))
    job: dict[str, Any] = wait_for_job(sm, name, timeout=120)
    return job


def host_logs(server: RunningServer, name: str) -> list[str]:
    path = server.home / "jobs" / "TrainingJob" / name / "attempt-1" / "algo-1" / "logs.jsonl"
    if not path.exists():
        return []
    return [json.loads(line)["m"] for line in path.read_text().splitlines()]


def stream_lines(server: RunningServer, name: str) -> list[str]:
    """The job's log as CloudWatch Logs serves it."""
    logs = server.client("logs")
    group = "/aws/sagemaker/TrainingJobs"
    [stream] = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=name)["logStreams"]
    events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"],
                                 startFromHead=True)["events"]
    return [e["message"] for e in events]


def model_bytes(server: RunningServer, job: dict[str, Any]) -> bytes:
    uri = job["ModelArtifacts"]["S3ModelArtifacts"]
    with tarfile.open(server.home / "artifacts" / "s3" / uri[len("s3://"):]) as tar:
        member = tar.extractfile("xgboost-model")
        assert member is not None
        return member.read()


def zygotes(server: RunningServer) -> list[psutil.Process]:
    """The server's zygote processes (none when warm starts are off)."""
    found = []
    try:
        children = psutil.Process(server.proc.pid).children()
    except psutil.NoSuchProcess:
        return []
    for child in children:
        try:
            if "modelyard.runtime.zygote" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # a cold job's host that has ended
            pass
    return found


def wait_for_line(server: RunningServer, name: str, prefix: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not any(line.startswith(prefix) for line in host_logs(server, name)):
        assert time.monotonic() < deadline, host_logs(server, name)
        time.sleep(0.05)


def test_a_warm_job_trains_what_a_cold_job_trains(warm: RunningServer, cold: RunningServer) -> None:
    jobs = {side: run_job(server, "same") for side, server in (("warm", warm), ("cold", cold))}
    for job in jobs.values():
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert model_bytes(warm, jobs["warm"]) == model_bytes(cold, jobs["cold"])
    metrics = {side: {m["MetricName"]: m["Value"] for m in job["FinalMetricDataList"]}
               for side, job in jobs.items()}
    assert metrics["warm"] == metrics["cold"] and "train:auc" in metrics["warm"]
    warm_lines, cold_lines = stream_lines(warm, "same"), stream_lines(cold, "same")
    assert [line for line in warm_lines if not line.startswith(WARM_LINE)] == cold_lines
    assert sum(line.startswith(WARM_LINE) for line in warm_lines) == 1
    assert sum(line.startswith("[11]") for line in warm_lines) == 1  # the last round
    # the cold server never started a zygote
    assert len(zygotes(warm)) == 1 and zygotes(cold) == []
    assert not (cold.home / "zygote.log").exists()


def test_a_two_host_warm_job_trains_what_a_cold_one_trains(
    warm: RunningServer, cold: RunningServer
) -> None:
    jobs = {side: run_job(server, "pair", hosts=2) for side, server in (("warm", warm), ("cold", cold))}
    for job in jobs.values():
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert model_bytes(warm, jobs["warm"]) == model_bytes(cold, jobs["cold"])
    for host in ("algo-1", "algo-2"):
        path = warm.home / "jobs/TrainingJob/pair/attempt-1" / host / "logs.jsonl"
        assert WARM_LINE in path.read_text()


@pytest.mark.parametrize(
    ("name", "rows", "hps"),
    [("bad-data", "1,2,3\n0,two,1\n", {}), ("bad-param", ROWS, {"objective": "reg:nonsense"})],
)
def test_a_failing_warm_job_fails_like_a_cold_one(
    warm: RunningServer, cold: RunningServer, name: str, rows: str, hps: dict[str, str]
) -> None:
    warm_job, cold_job = (run_job(server, name, rows, **hps) for server in (warm, cold))
    assert warm_job["TrainingJobStatus"] == cold_job["TrainingJobStatus"] == "Failed"
    assert warm_job["FailureReason"] == cold_job["FailureReason"]
    assert warm_job["FailureReason"].startswith(("ClientError", "AlgorithmError"))
    assert any(line.startswith(WARM_LINE) for line in host_logs(warm, name))


def test_stopping_a_warm_job_ends_stopped(warm: RunningServer) -> None:
    sm = warm.client("sagemaker")
    sm.create_training_job(**xgboost_job(warm, "stop-me", num_round="1000000"))
    wait_for_line(warm, "stop-me", "[0]")
    sm.stop_training_job(TrainingJobName="stop-me")
    job = wait_for_job(sm, "stop-me", timeout=60)
    assert job["TrainingJobStatus"] == "Stopped"
    # (the line may share a line with the round it interrupted)
    lines = host_logs(warm, "stop-me")
    assert any(line.endswith("SIGTERM: training stopped") for line in lines), lines[-8:]
    assert "[modelyard] The work was stopped (exit code 143)" in lines
    # nothing of the job is left running under the zygote
    [zygote] = zygotes(warm)
    assert zygote.children() == []


def test_a_warm_job_survives_a_server_crash(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home)
    try:
        sm = server.client("sagemaker")
        sm.create_training_job(**xgboost_job(server, "survivor", num_round="600"))
        wait_for_line(server, "survivor", "[0]")
        assert WARM_LINE in "\n".join(host_logs(server, "survivor"))
        [zygote] = zygotes(server)
        [host] = zygote.children()
        server.kill()
        zygote.wait(15)  # the zygote leaves with the server ...
        assert host.is_running()  # ... the job does not
        server = start_server(home)
        sm = server.client("sagemaker")
        job = wait_for_job(sm, "survivor", timeout=120)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        assert model_bytes(server, job)
        assert sum(line.startswith("[599]") for line in stream_lines(server, "survivor")) == 1
    finally:
        server.stop()


def test_a_dead_zygote_is_replaced_a_few_times_then_jobs_start_cold(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home")
    try:
        sm = server.client("sagemaker")
        sm.create_training_job(**xgboost_job(server, "running", num_round="600"))
        wait_for_line(server, "running", "[0]")
        [zygote] = zygotes(server)
        zygote.send_signal(signal.SIGKILL)
        zygote.wait(15)
        # the job it forked ends normally; its exit code is the runtime's exit event now
        running = wait_for_job(sm, "running", timeout=120)
        assert running["TrainingJobStatus"] == "Completed", running.get("FailureReason")
        # the next job starts a new zygote and runs warm in it; so do the next two deaths
        killed = {zygote.pid}
        for attempt in range(MAX_RESTARTS):
            after = run_job(server, f"after-{attempt}")
            assert after["TrainingJobStatus"] == "Completed", after.get("FailureReason")
            assert WARM_LINE in "\n".join(host_logs(server, f"after-{attempt}"))
            [zygote] = zygotes(server)
            assert zygote.pid not in killed
            killed.add(zygote.pid)
            zygote.send_signal(signal.SIGKILL)
            zygote.wait(15)
        # one death too many: cold from now on
        cold = run_job(server, "cold")
        assert cold["TrainingJobStatus"] == "Completed", cold.get("FailureReason")
        assert not any("Warm start" in line for line in host_logs(server, "cold"))
        assert zygotes(server) == []
        server_log = (server.home / "server.log").read_text()
        assert server_log.count("a new one starts with the next warm launch") == MAX_RESTARTS
        assert server_log.count("warm starts are off from now on") == 1
    finally:
        server.stop()
