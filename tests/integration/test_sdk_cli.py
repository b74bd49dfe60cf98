"""The friendly faces: the Python SDK, the CLI and the guided demo, against a live server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil
import pytest

import modelyard
from tests.integration.conftest import make_sourcedir, script_job
from tests.support.server import RunningServer

TRAIN_SCRIPT = """
import argparse, os, glob
import pandas as pd
from sklearn.linear_model import LogisticRegression
import joblib
p = argparse.ArgumentParser()
p.add_argument("--reg", type=float)
args = p.parse_args()
frames = [pd.read_csv(f, header=None) for f in glob.glob(os.path.join(os.environ["SM_CHANNEL_TRAIN"], "*.csv"))]
data = pd.concat(frames)
model = LogisticRegression(C=args.reg).fit(data.iloc[:, 1:], data.iloc[:, 0])
print(f"train_accuracy={model.score(data.iloc[:, 1:], data.iloc[:, 0]):.4f}")
joblib.dump(model, os.path.join(os.environ["SM_MODEL_DIR"], "model.joblib"))
"""


def _session(server: RunningServer) -> modelyard.Session:
    return modelyard.Session(endpoint_url=server.url, home=server.home)


def _frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).astype(int)
    return pd.DataFrame(np.column_stack([y, x]))


def _model_path(server: RunningServer, uri: str) -> Path:
    return server.home / "artifacts" / "s3" / uri[len("s3://"):]


def test_estimator_script_mode_with_a_dataframe(server: RunningServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "train.py").write_text(TRAIN_SCRIPT)
    estimator = modelyard.Estimator(
        entry_point="train.py", source_dir=source, framework="sklearn",
        hyperparameters={"reg": 0.5},
        metric_definitions=[{"Name": "train:accuracy", "Regex": "train_accuracy=([0-9.]+)"}],
        session=_session(server), base_job_name="sdk-sklearn",
    )
    estimator.fit({"train": _frame()})
    assert estimator.model_data.endswith("/output/model.tar.gz")
    with tarfile.open(_model_path(server, estimator.model_data)) as tar:
        assert "model.joblib" in tar.getnames()
    job = estimator.describe()
    assert job["HyperParameters"]["sagemaker_program"] == '"train.py"'
    [metric] = job["FinalMetricDataList"]
    assert metric["MetricName"] == "train:accuracy" and metric["Value"] > 0.9
    assert "train_accuracy=" in capsys.readouterr().out  # live logs were shown


def test_estimator_builtin_xgboost(server: RunningServer, tmp_path: Path) -> None:
    frame = _frame(400)
    train, validation = tmp_path / "train.csv", tmp_path / "validation.csv"
    frame.iloc[:300].to_csv(train, header=False, index=False)
    frame.iloc[300:].to_csv(validation, header=False, index=False)
    estimator = modelyard.Estimator(
        framework="xgboost",
        hyperparameters={"objective": "binary:logistic", "num_round": 20, "eval_metric": "auc"},
        session=_session(server), base_job_name="sdk-xgb",
    )
    estimator.fit({"train": str(train), "validation": str(validation)}, logs=False)
    metrics = {m["MetricName"]: m["Value"] for m in estimator.describe()["FinalMetricDataList"]}
    assert metrics["validation:auc"] > 0.9
    assert "train:auc" in metrics
    with tarfile.open(_model_path(server, estimator.model_data)) as tar:
        assert tar.getnames() == ["xgboost-model"]


def test_estimator_raises_on_failure(server: RunningServer, tmp_path: Path) -> None:
    script = tmp_path / "bad.py"
    script.write_text("raise ValueError('no data')\n")
    estimator = modelyard.Estimator(entry_point=str(script), framework="sklearn", session=_session(server))
    with pytest.raises(modelyard.TrainingFailed, match="no data"):
        estimator.fit(logs=False)


def _cli(server: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "modelyard", *args, "--home", str(server.home), "--endpoint-url", server.url],
        capture_output=True, text=True, timeout=60, env=server.env,
    )


def test_cli_lists_describes_and_follows_logs(server: RunningServer, sm: Any, tmp_path: Path) -> None:
    code = make_sourcedir(tmp_path / "code", "for i in range(3):\n    print(f'cli line {i}')\n")
    sm.create_training_job(**script_job("cli-1", code, "s3://b/o"))
    followed = _cli(server, "training-jobs", "logs", "cli-1", "-f")
    assert followed.returncode == 0, followed.stderr
    assert [line for line in followed.stdout.splitlines() if line.startswith("cli line")] == [
        "cli line 0", "cli line 1", "cli line 2"]
    listed = _cli(server, "training-jobs", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    assert "cli-1" in [j["TrainingJobName"] for j in json.loads(listed.stdout)]
    described = _cli(server, "training-jobs", "describe", "cli-1", "-o", "json")
    assert json.loads(described.stdout)["TrainingJobStatus"] == "Completed"
    table = _cli(server, "training-jobs", "describe", "cli-1")
    assert "Completed" in table.stdout and "TrainingJobName" in table.stdout
    missing = _cli(server, "training-jobs", "stop", "no-such-job")
    assert missing.returncode == 1
    assert missing.stderr.strip() == "error: ValidationException: Requested resource not found."


def test_cli_credentials(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "modelyard", "credentials", "--home", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    stored = json.loads((tmp_path / "credentials.json").read_text())
    assert f"export AWS_ACCESS_KEY_ID={stored['access_key_id']}" in result.stdout
    assert oct((tmp_path / "credentials.json").stat().st_mode & 0o777) == "0o600"


def test_session_starts_an_embedded_server_and_reuses_it(tmp_path: Path) -> None:
    home = tmp_path / "embedded"
    env_backup = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("MODELYARD_")}
    try:
        first = modelyard.Session(home=home)
        second = modelyard.Session(home=home)
        assert first.endpoint_url == second.endpoint_url
        assert first.sagemaker.list_training_jobs()["TrainingJobSummaries"] == []
    finally:
        os.environ.update(env_backup)
        from modelyard.sdk import session as session_module

        for proc in session_module._EMBEDDED_SERVERS:
            proc.terminate()
            proc.wait(20)
        session_module._EMBEDDED_SERVERS.clear()


def test_demo_runs_and_leaves_nothing_running(tmp_path: Path) -> None:
    home = tmp_path / "demo-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    result = subprocess.run(
        [sys.executable, "-m", "modelyard", "demo", "--home", str(home)],
        capture_output=True, text=True, timeout=240, env=env,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    auc = [line for line in result.stdout.splitlines() if "validation:auc =" in line]
    assert auc and float(auc[0].split("=")[1]) > 0.9
    assert "validation-auc" in result.stdout  # live logs
    assert not (home / "server.json").exists()
    leftovers = [p for p in psutil.process_iter(["cmdline"]) if str(home) in " ".join(p.info["cmdline"] or [])]
    assert leftovers == []
