"""What survives a crash: SIGKILL the server while jobs run, start it again."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import psutil

from tests.integration.conftest import make_sourcedir, model_files, script_job
from tests.support.server import RunningServer, start_server, wait_for_job

SLOW = (
    "import os, time\n"
    "print('started', flush=True)\n"
    "time.sleep(float(os.environ.get('NAP', '3')))\n"
    "open(os.path.join(os.environ['SM_MODEL_DIR'], 'done.txt'), 'w').write('finished')\n"
    "print('finished', flush=True)\n"
)


def _wait_training(sm: Any, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"] != "Training":
        assert time.monotonic() < deadline
        time.sleep(0.05)


def _runtime_pids(home: Path, job: str) -> list[int]:
    pids = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if "modelyard.runtime" in cmdline and str(home) in cmdline and f"/{job}/" in cmdline:
            pids.append(proc.pid)
    return pids


def test_jobs_are_reattached_or_failed_after_a_crash(tmp_path: Path) -> None:
    home = tmp_path / "home"
    roomy = {"MODELYARD_CPUS": "16", "MODELYARD_MEMORY_GIB": "128"}  # all three run at once
    server = start_server(home, roomy)
    code = make_sourcedir(tmp_path / "code", SLOW)
    try:
        sm = server.client("sagemaker")
        sm.create_training_job(**script_job("survivor", code, "s3://b/o", Environment={"NAP": "4"}))
        sm.create_training_job(**script_job("orphan", code, "s3://b/o", Environment={"NAP": "30"}))
        sm.create_training_job(**script_job("done-before", make_sourcedir(tmp_path / "quick", "print(1)\n"), "s3://b/o"))
        wait_for_job(sm, "done-before")
        _wait_training(sm, "survivor")
        _wait_training(sm, "orphan")
        server.kill()
        # the orphan's host dies while no server watches it
        for pid in _runtime_pids(home, "orphan"):
            os.killpg(pid, signal.SIGKILL)
        server = start_server(home, roomy)
        sm = server.client("sagemaker")
        survivor = wait_for_job(sm, "survivor", timeout=60)
        assert survivor["TrainingJobStatus"] == "Completed", survivor.get("FailureReason")
        assert model_files(server, survivor["ModelArtifacts"]["S3ModelArtifacts"])["done.txt"] == b"finished"
        orphan = wait_for_job(sm, "orphan", timeout=30)
        assert orphan["TrainingJobStatus"] == "Failed"
        assert "ended while the server was not watching it" in orphan["FailureReason"]
        before = sm.describe_training_job(TrainingJobName="done-before")
        assert before["TrainingJobStatus"] == "Completed"
        names = {j["TrainingJobName"] for j in sm.list_training_jobs(MaxResults=100)["TrainingJobSummaries"]}
        assert names == {"survivor", "orphan", "done-before"}
    finally:
        server.stop()


def test_queued_job_survives_a_crash(tmp_path: Path) -> None:
    home = tmp_path / "home"
    server = start_server(home, {"MODELYARD_CPUS": "2"})
    code = make_sourcedir(tmp_path / "code", SLOW)
    try:
        sm = server.client("sagemaker")
        sm.create_training_job(**script_job("first", code, "s3://b/o", Environment={"NAP": "3"}))
        _wait_training(sm, "first")
        sm.create_training_job(**script_job("second", code, "s3://b/o", Environment={"NAP": "0"}))
        time.sleep(0.5)
        queued = sm.describe_training_job(TrainingJobName="second")
        assert queued["SecondaryStatus"] == "Starting"
        assert queued["SecondaryStatusTransitions"][-1]["StatusMessage"].startswith("Waiting for capacity")
        server.kill()
        server = start_server(home, {"MODELYARD_CPUS": "2"})
        sm = server.client("sagemaker")
        first = wait_for_job(sm, "first", timeout=60)
        second = wait_for_job(sm, "second", timeout=60)
        assert first["TrainingJobStatus"] == second["TrainingJobStatus"] == "Completed"
        # the second job waited for the first: the machine had room for one
        assert second["TrainingStartTime"] >= first["TrainingEndTime"]
        assert [t["Status"] for t in second["SecondaryStatusTransitions"]][0] == "Starting"
    finally:
        server.stop()


def test_spot_interruption_resumes_from_checkpoints(tmp_path: Path) -> None:
    """The script checkpoints each step; an interruption restarts it and it resumes."""
    script = (
        "import os, time\n"
        "ckpt = '/opt/ml/checkpoints/step.txt'\n"
        "start = int(open(ckpt).read()) if os.path.exists(ckpt) else 0\n"
        "print(f'resuming at step {start}', flush=True)\n"
        "for step in range(start, 24):\n"
        "    time.sleep(0.25)\n"
        "    open(ckpt + '.tmp', 'w').write(str(step + 1)); os.replace(ckpt + '.tmp', ckpt)\n"
        "    print(f'step {step}', flush=True)\n"
        "open('/opt/ml/model/first_step.txt', 'w').write(str(start))\n"
    )
    server = start_server(tmp_path / "home")
    try:
        sm = server.client("sagemaker")
        code = make_sourcedir(tmp_path / "code", script)
        request = script_job(
            "spot-1", code, "s3://b/o",
            EnableManagedSpotTraining=True,
            StoppingCondition={"MaxRuntimeInSeconds": 120, "MaxWaitTimeInSeconds": 300},
            CheckpointConfig={"S3Uri": "s3://b/checkpoints/spot-1"},
        )
        sm.create_training_job(**request)
        _wait_training(sm, "spot-1")
        # interrupt once a checkpoint past step 2 has reached the checkpoint store
        synced = server.home / "artifacts/s3/b/checkpoints/spot-1/step.txt"
        deadline = time.monotonic() + 60
        while not (synced.exists() and int(synced.read_text() or 0) >= 2):
            assert time.monotonic() < deadline, "no checkpoint was synced"
            time.sleep(0.05)
        _interrupt(server, "spot-1")
        job = wait_for_job(sm, "spot-1", timeout=90)
        assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
        statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
        assert "Interrupted" in statuses and statuses[-1] == "Completed"
        resumed_at = int(model_files(server, job["ModelArtifacts"]["S3ModelArtifacts"])["first_step.txt"])
        assert resumed_at > 0
        assert job["BillableTimeInSeconds"] <= job["TrainingTimeInSeconds"]
        streams = server.client("logs").describe_log_streams(
            logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="spot-1/")["logStreams"]
        assert len(streams) == 2  # one per attempt
    finally:
        server.stop()


def _interrupt(server: RunningServer, name: str) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "modelyard", "training-jobs", "interrupt", name,
         "--endpoint-url", server.url, "--home", str(server.home)],
        capture_output=True, text=True, timeout=30, env=server.env,
    )
    assert result.returncode == 0, result.stderr


def test_spot_job_that_waits_too_long_stops(tmp_path: Path) -> None:
    server = start_server(tmp_path / "home", {"MODELYARD_CPUS": "2"})
    try:
        sm = server.client("sagemaker")
        code = make_sourcedir(tmp_path / "code", SLOW)
        sm.create_training_job(**script_job("hog", code, "s3://b/o", Environment={"NAP": "8"}))
        _wait_training(sm, "hog")
        sm.create_training_job(**script_job(
            "patient", code, "s3://b/o", EnableManagedSpotTraining=True,
            StoppingCondition={"MaxRuntimeInSeconds": 2, "MaxWaitTimeInSeconds": 2},
        ))
        job = wait_for_job(sm, "patient", timeout=30)
        assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxWaitTimeExceeded")
        assert "TrainingStartTime" not in job  # it never got an instance
        sm.stop_training_job(TrainingJobName="hog")
        assert wait_for_job(sm, "hog", timeout=30)["TrainingJobStatus"] == "Stopped"
    finally:
        server.stop()
