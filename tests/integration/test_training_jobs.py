"""Training jobs through boto3 against a live server: the lifecycle and what a job produces."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import make_sourcedir, model_files, script_job
from tests.support.server import RunningServer, wait_for_job

ENV_DUMP = """
import json, os, sys
model = os.environ["SM_MODEL_DIR"]
env = {k: v for k, v in os.environ.items() if k.startswith(("SM_", "TRAINING_JOB", "SAGEMAKER_"))}
train = os.environ["SM_CHANNEL_TRAIN"]
files = {f: open(os.path.join(train, f)).read() for f in os.listdir(train)}
json.dump({"argv": sys.argv[1:], "env": env, "train": files}, open(os.path.join(model, "dump.json"), "w"))
for step in range(3):
    print(f"step={step}\\tloss={1.0 / (step + 1):.4f}", flush=True)
open(os.path.join(os.environ["SM_OUTPUT_DATA_DIR"], "report.txt"), "w").write("done")
"""


def test_script_job_runs_with_the_container_contract(server: RunningServer, sm: Any, tmp_path: Path) -> None:
    code = make_sourcedir(tmp_path / "code", ENV_DUMP)
    data = tmp_path / "data" / "train"
    data.mkdir(parents=True)
    (data / "part-0.csv").write_text("1,2,3\n")
    request = script_job(
        "contract-1", code, "s3://out-bucket/jobs",
        hyperparameters={"epochs": "3", "lr": "0.1", "mode": '"fast"', "sagemaker_region": '"us-east-1"'},
        InputDataConfig=[{
            "ChannelName": "train", "ContentType": "text/csv",
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": str(data) + "/"}},
        }],
        AlgorithmSpecification={"MetricDefinitions": [{"Name": "train:loss", "Regex": "loss=([0-9.]+)"}]},
        Environment={"MY_SETTING": "on"},
    )
    arn = sm.create_training_job(**request)["TrainingJobArn"]
    assert arn == "arn:aws:sagemaker:us-east-1:000000000000:training-job/contract-1"
    job = wait_for_job(sm, "contract-1")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    assert job["SecondaryStatus"] == "Completed"
    statuses = [t["Status"] for t in job["SecondaryStatusTransitions"]]
    assert statuses == ["Starting", "Downloading", "Training", "Uploading", "Completed"]
    assert all(t["StatusMessage"] for t in job["SecondaryStatusTransitions"])
    assert job["TrainingTimeInSeconds"] >= 1 and job["BillableTimeInSeconds"] >= 1
    assert job["ModelArtifacts"]["S3ModelArtifacts"] == "s3://out-bucket/jobs/contract-1/output/model.tar.gz"
    assert job["HyperParameters"]["epochs"] == "3"
    assert job["Environment"] == {"MY_SETTING": "on"}
    assert job["EnableManagedSpotTraining"] is False and job["EnableNetworkIsolation"] is False
    assert [(m["MetricName"], m["Value"]) for m in job["FinalMetricDataList"]] == [("train:loss", 0.3333)]

    dump = json.loads(model_files(server, job["ModelArtifacts"]["S3ModelArtifacts"])["dump.json"])
    assert dump["argv"] == ["--epochs", "3", "--lr", "0.1", "--mode", "fast"]
    env = dump["env"]
    assert env["TRAINING_JOB_NAME"] == "contract-1"
    assert env["SM_CHANNELS"] == '["train"]'
    assert env["SM_HPS"] == '{"epochs":3,"lr":0.1,"mode":"fast"}'
    assert env["SM_HOSTS"] == '["algo-1"]' and env["SM_CURRENT_HOST"] == "algo-1"
    assert env["SM_USER_ENTRY_POINT"] == "train.py"
    assert env["SM_CHANNEL_TRAIN"] == "/opt/ml/input/data/train"
    assert dump["train"] == {"part-0.csv": "1,2,3\n"}
    output_tar = server.home / "artifacts/s3/out-bucket/jobs/contract-1/output/output.tar.gz"
    assert output_tar.exists()


def test_logs_are_served_through_cloudwatch_logs(server: RunningServer, sm: Any, tmp_path: Path) -> None:
    code = make_sourcedir(tmp_path / "code", "for i in range(5):\n    print(f'line {i}\\tdone')\n")
    sm.create_training_job(**script_job("logs-1", code, "s3://b/o"))
    wait_for_job(sm, "logs-1")
    logs = server.client("logs")
    streams = logs.describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="logs-1/",
        orderBy="LogStreamName",
    )
    assert "nextToken" not in streams  # the SDK loops while it is present
    [stream] = streams["logStreams"]
    assert stream["logStreamName"].startswith("logs-1/algo-1-")
    page = logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream["logStreamName"],
        startFromHead=True, limit=3,
    )
    messages = [e["message"] for e in page["events"]]
    rest = logs.get_log_events(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamName=stream["logStreamName"],
        startFromHead=True, nextToken=page["nextForwardToken"],
    )
    messages += [e["message"] for e in rest["events"]]
    assert [m for m in messages if m.startswith("line")] == [f"line {i}\tdone" for i in range(5)]
    assert len(page["events"]) == 3
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.describe_log_streams(logGroupName="/aws/sagemaker/NoSuchJobs")


def test_failed_script_reports_why(sm: Any, tmp_path: Path) -> None:
    code = make_sourcedir(tmp_path / "code", "import sys\nprint('about to fail')\nraise SystemExit('boom: bad data')\n")
    sm.create_training_job(**script_job("fails-1", code, "s3://b/o"))
    job = wait_for_job(sm, "fails-1")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["SecondaryStatus"] == "Failed"
    assert "ExitCode 1" in job["FailureReason"]
    assert "boom: bad data" in job["FailureReason"]


def test_failure_file_is_the_failure_reason(sm: Any, tmp_path: Path) -> None:
    script = (
        "import os\n"
        "open('/opt/ml/output/failure', 'w').write('ClientError: label column missing')\n"
        "raise SystemExit(3)\n"
    )
    code = make_sourcedir(tmp_path / "code", script)
    sm.create_training_job(**script_job("failfile-1", code, "s3://b/o"))
    job = wait_for_job(sm, "failfile-1")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: label column missing")


def test_stop_ends_stopped_and_keeps_the_model(server: RunningServer, sm: Any, tmp_path: Path) -> None:
    script = (
        "import os, signal, sys, time\n"
        "def bye(*_):\n"
        "    open(os.path.join(os.environ['SM_MODEL_DIR'], 'partial.txt'), 'w').write('saved')\n"
        "    sys.exit(0)\n"
        "signal.signal(signal.SIGTERM, bye)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    code = make_sourcedir(tmp_path / "code", script)
    sm.create_training_job(**script_job("stop-1", code, "s3://b/o"))
    wait_for_job(sm, "stop-1", statuses=("InProgress",))
    _wait_secondary(sm, "stop-1", "Training")
    time.sleep(0.5)
    sm.stop_training_job(TrainingJobName="stop-1")
    assert sm.describe_training_job(TrainingJobName="stop-1")["TrainingJobStatus"] in ("Stopping", "Stopped")
    job = wait_for_job(sm, "stop-1", timeout=30)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "Stopped")
    files = model_files(server, job["ModelArtifacts"]["S3ModelArtifacts"])
    assert files["partial.txt"] == b"saved"
    with pytest.raises(sm.exceptions.ClientError) as err:
        sm.stop_training_job(TrainingJobName="stop-1")
    assert err.value.response["Error"]["Code"] == "ValidationException"


def test_max_runtime_stops_the_job(sm: Any, tmp_path: Path) -> None:
    code = make_sourcedir(tmp_path / "code", "import time\nprint('working', flush=True)\ntime.sleep(60)\n")
    sm.create_training_job(**script_job("timeout-1", code, "s3://b/o", StoppingCondition={"MaxRuntimeInSeconds": 2}))
    job = wait_for_job(sm, "timeout-1", timeout=40)
    assert (job["TrainingJobStatus"], job["SecondaryStatus"]) == ("Stopped", "MaxRuntimeExceeded")


def test_script_with_literal_opt_ml_paths(server: RunningServer, sm: Any, tmp_path: Path) -> None:
    script = (
        "import json\n"
        "hps = json.load(open('/opt/ml/input/config/hyperparameters.json'))\n"
        "cfg = json.load(open('/opt/ml/input/config/resourceconfig.json'))\n"
        "open('/opt/ml/model/seen.json', 'w').write(json.dumps({'hps': hps, 'host': cfg['current_host']}))\n"
    )
    code = make_sourcedir(tmp_path / "code", script)
    sm.create_training_job(**script_job("literal-1", code, "s3://b/o", hyperparameters={"depth": "4"}))
    job = wait_for_job(sm, "literal-1")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    seen = json.loads(model_files(server, job["ModelArtifacts"]["S3ModelArtifacts"])["seen.json"])
    assert seen["hps"]["depth"] == "4" and seen["host"] == "algo-1"


def test_delete_only_finished_jobs(sm: Any, tmp_path: Path) -> None:
    code = make_sourcedir(tmp_path / "code", "print('ok')\n")
    sm.create_training_job(**script_job("delete-1", code, "s3://b/o"))
    wait_for_job(sm, "delete-1")
    sm.delete_training_job(TrainingJobName="delete-1")
    with pytest.raises(sm.exceptions.ClientError) as err:
        sm.describe_training_job(TrainingJobName="delete-1")
    assert err.value.response["Error"]["Code"] == "ValidationException"
    assert err.value.response["Error"]["Message"] == "Requested resource not found."


def _wait_secondary(sm: Any, name: str, secondary: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sm.describe_training_job(TrainingJobName=name)["SecondaryStatus"] != secondary:
        assert time.monotonic() < deadline, f"{name} never reached {secondary}"
        time.sleep(0.05)


def test_manifest_and_fastfile_channels(server: RunningServer, sm: Any, tmp_path: Path) -> None:
    data = tmp_path / "pool"
    (data / "day1").mkdir(parents=True)
    (data / "day1" / "a.csv").write_text("a\n")
    (data / "day1" / "skip.csv").write_text("not listed\n")
    (data / "b.csv").write_text("b\n")
    manifest = tmp_path / "train.manifest"
    manifest.write_text(json.dumps([{"prefix": f"{data}/"}, "day1/a.csv", "b.csv"]))
    script = (
        "import json, os\n"
        "seen = {}\n"
        "for channel in ('train', 'extra'):\n"
        "    root = os.environ['SM_CHANNEL_' + channel.upper()]\n"
        "    seen[channel] = sorted(os.path.relpath(os.path.join(d, f), root)\n"
        "                           for d, _, fs in os.walk(root) for f in fs)\n"
        "json.dump(seen, open(os.path.join(os.environ['SM_MODEL_DIR'], 'seen.json'), 'w'))\n"
    )
    code = make_sourcedir(tmp_path / "code", script)
    request = script_job(
        "manifest-1", code, "s3://b/o",
        InputDataConfig=[
            {"ChannelName": "train", "DataSource": {"S3DataSource": {
                "S3DataType": "ManifestFile", "S3Uri": str(manifest)}}},
            {"ChannelName": "extra", "InputMode": "FastFile", "DataSource": {"S3DataSource": {
                "S3DataType": "S3Prefix", "S3Uri": f"file://{data}/day1/"}}},
        ],
    )
    sm.create_training_job(**request)
    job = wait_for_job(sm, "manifest-1")
    assert job["TrainingJobStatus"] == "Completed", job.get("FailureReason")
    seen = json.loads(model_files(server, job["ModelArtifacts"]["S3ModelArtifacts"])["seen.json"])
    assert seen == {"train": ["b.csv", "day1/a.csv"], "extra": ["a.csv", "skip.csv"]}


def test_missing_input_fails_with_a_client_error(sm: Any, tmp_path: Path) -> None:
    code = make_sourcedir(tmp_path / "code", "print('never runs')\n")
    request = script_job(
        "noinput-1", code, "s3://b/o",
        InputDataConfig=[{"ChannelName": "train", "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix", "S3Uri": "s3://empty-bucket/nothing/here/"}}}],
    )
    sm.create_training_job(**request)
    job = wait_for_job(sm, "noinput-1")
    assert job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError")
    assert "s3://empty-bucket/nothing/here/" in job["FailureReason"]
