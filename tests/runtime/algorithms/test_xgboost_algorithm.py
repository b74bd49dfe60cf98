"""End to end: ``python -m modelyard.runtime.algorithms.xgboost`` against a SAGEMAKER_BASE_DIR."""

from __future__ import annotations

import dataclasses
import gzip
import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xgboost
from sklearn.datasets import dump_svmlight_file, load_breast_cancer, load_iris
from sklearn.metrics import roc_auc_score

from modelyard.runtime.algorithms.xgboost import metric_definitions_for

MODULE = "modelyard.runtime.algorithms.xgboost"
EVAL_LINE = re.compile(r"^\[(\d+)\]((?:\t[a-z]+-[a-z0-9_@.-]+:-?[0-9.]+)+)$")
# How the platform reads metrics: the auto-attached regexes, on lines whose TAB became #011.
DEFINITIONS = {d["Name"]: re.compile(d["Regex"]) for d in metric_definitions_for({})}


@dataclasses.dataclass
class Result:
    """What one run of the algorithm left behind."""

    returncode: int
    stdout: str
    stderr: str
    base: Path

    @property
    def failure(self) -> str | None:
        path = self.base / "output" / "failure"
        return path.read_text() if path.exists() else None

    def rounds(self) -> list[int]:
        return [int(m.group(1)) for line in self.stdout.splitlines() if (m := EVAL_LINE.match(line))]

    def metric(self, name: str) -> list[float]:
        """Every logged value of e.g. ``validation-auc``, in order."""
        return [float(v) for v in re.findall(rf"\t{re.escape(name)}:(\S+)", self.stdout)]

    def model(self) -> xgboost.Booster:
        # Loading from bytes: the file has no extension and XGBoost warns when guessing from a name.
        return xgboost.Booster(model_file=bytearray((self.base / "model" / "xgboost-model").read_bytes()))


@dataclasses.dataclass
class Job:
    """A SageMaker-layout base dir with config files, and a way to run the algorithm on it."""

    base: Path

    def configure(
        self,
        hyperparameters: dict[str, str],
        channels: dict[str, dict[str, str]] | None = None,
        checkpoints: bool = False,
    ) -> Job:
        config = self.base / "input" / "config"
        config.mkdir(parents=True, exist_ok=True)
        (config / "hyperparameters.json").write_text(json.dumps(hyperparameters))
        if channels is not None:
            (config / "inputdataconfig.json").write_text(json.dumps(channels))
        if checkpoints:
            local = str(self.base / "checkpoints")
            (config / "checkpointconfig.json").write_text(json.dumps({"LocalPath": local, "S3Uri": "s3://b/c"}))
        return self

    def channel(self, name: str) -> Path:
        path = self.base / "input" / "data" / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def environ(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SM_")}
        env.update(SAGEMAKER_BASE_DIR=str(self.base), PYTHONWARNINGS="ignore", **extra)
        return env

    def run(self, timeout: float = 180, **extra: str) -> Result:
        done = subprocess.run(
            [sys.executable, "-m", MODULE],
            cwd=self.base.parent,
            env=self.environ(**extra),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return Result(done.returncode, done.stdout, done.stderr, self.base)

    def checkpoint_rounds(self) -> list[int]:
        return sorted(int(p.name.rsplit(".", 1)[1]) for p in (self.base / "checkpoints").glob("xgboost-checkpoint.*"))


@pytest.fixture
def job(tmp_path: Path) -> Job:
    return Job(tmp_path / "ml")


def breast_cancer(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows of [label, features...], shuffled and split 400 / 169."""
    features, labels = load_breast_cancer(return_X_y=True)
    rows = np.column_stack([labels, features])
    np.random.default_rng(seed).shuffle(rows)
    return rows[:400], rows[400:]


def write_csv(path: Path, rows: np.ndarray, delimiter: str = ",") -> None:
    np.savetxt(path, rows, delimiter=delimiter, fmt="%.8g")


def validation_auc(result: Result, rows: np.ndarray) -> float:
    predictions = result.model().predict(xgboost.DMatrix(rows[:, 1:]))
    return float(roc_auc_score(rows[:, 0], predictions))


CSV_CHANNELS = {"train": {"ContentType": "text/csv"}, "validation": {"ContentType": "text/csv"}}


def test_csv_binary_logistic_logs_validation_auc_and_saves_a_usable_model(job: Job) -> None:
    train, valid = breast_cancer()
    write_csv(job.channel("train") / "part-0.csv", train[:200])
    write_csv(job.channel("train") / "part-1.csv", train[200:])
    write_csv(job.channel("validation") / "validation.csv", valid)
    (job.channel("train") / "_SUCCESS").write_text("not data")
    (job.channel("train") / ".hidden.csv").write_text("not,data\n")
    job.configure({"num_round": "8", "objective": "binary:logistic", "eval_metric": "auc", "max_depth": "3"}, CSV_CHANNELS)

    result = job.run()

    assert result.returncode == 0, result.stderr
    assert result.failure is None
    eval_lines = [line for line in result.stdout.splitlines() if EVAL_LINE.match(line)]
    assert [int(EVAL_LINE.match(line).group(1)) for line in eval_lines] == list(range(8))  # type: ignore[union-attr]
    assert all(re.fullmatch(r"\[\d+\]\ttrain-auc:\d\.\d{5}\tvalidation-auc:\d\.\d{5}", line) for line in eval_lines)
    escaped = [line.replace("\t", "#011") for line in eval_lines]
    validation = [float(m.group(1)) for line in escaped if (m := DEFINITIONS["validation:auc"].match(line))]
    train_auc = [float(m.group(1)) for line in escaped if (m := DEFINITIONS["train:auc"].match(line))]
    assert validation == result.metric("validation-auc") and len(validation) == 8 and validation[-1] > 0.9
    assert train_auc == result.metric("train-auc") and len(train_auc) == 8
    assert "train: 400 rows, 30 features (csv)" in result.stdout
    booster = result.model()
    assert booster.num_boosted_rounds() == 8
    assert booster.num_features() == 30
    assert validation_auc(result, valid) > 0.9


def test_libsvm_is_the_default_content_type_and_gzip_is_read(job: Job) -> None:
    train, valid = breast_cancer()
    with gzip.open(job.channel("train") / "train.libsvm.gz", "wb") as f:
        dump_svmlight_file(train[:, 1:], train[:, 0], f, zero_based=True)
    with (job.channel("validation") / "validation.libsvm").open("wb") as f:
        dump_svmlight_file(valid[:, 1:], valid[:, 0], f, zero_based=True)
    job.configure({"num_round": "5", "objective": "binary:logistic", "eval_metric": "auc"}, {"train": {}, "validation": {}})

    result = job.run()

    assert result.returncode == 0, result.stderr
    assert "train: 400 rows, 30 features (libsvm)" in result.stdout
    assert result.rounds() == list(range(5))
    assert len(result.metric("validation-auc")) == 5
    assert validation_auc(result, valid) > 0.9


def test_libsvm_label_weights_are_used(job: Job) -> None:
    # Half the rows carry the wrong label with weight 0: only a weighted fit stays accurate.
    train, valid = breast_cancer()
    lines = [f"{int(r[0])}:1 " + " ".join(f"{i}:{v:.8g}" for i, v in enumerate(r[1:])) for r in train]
    lines += [f"{1 - int(r[0])}:0 " + " ".join(f"{i}:{v:.8g}" for i, v in enumerate(r[1:])) for r in train]
    (job.channel("train") / "train.txt").write_text("\n".join(lines) + "\n")
    job.configure({"num_round": "10", "objective": "binary:logistic"}, {"train": {"ContentType": "text/libsvm"}})

    result = job.run()

    assert result.returncode == 0, result.stderr
    assert "train: 800 rows" in result.stdout
    assert validation_auc(result, valid) > 0.9


def test_parquet_regression(job: Job) -> None:
    import pyarrow
    import pyarrow.parquet

    rng = np.random.default_rng(1)
    features = rng.normal(size=(500, 4))
    target = 3 * features[:, 0] - 2 * features[:, 1] + rng.normal(scale=0.1, size=500)
    columns = {"target": target, **{f"x{i}": features[:, i] for i in range(4)}}
    pyarrow.parquet.write_table(pyarrow.table(columns), job.channel("train") / "data.parquet")
    job.configure(
        {"num_round": "20", "objective": "reg:squarederror", "eval_metric": "rmse,r2"},
        {"train": {"ContentType": "application/x-parquet"}},
    )

    result = job.run()

    assert result.returncode == 0, result.stderr
    rmse = result.metric("train-rmse")
    assert len(rmse) == 20 and rmse[-1] < rmse[0] / 5
    assert result.metric("train-r2")[-1] > 0.95
    assert result.model().num_features() == 4


def test_csv_weights_column_and_semicolon_delimiter(job: Job) -> None:
    train, valid = breast_cancer()
    weighted = np.insert(train, 1, 1.0, axis=1)
    flipped = np.insert(train, 1, 0.0, axis=1)
    flipped[:, 0] = 1 - flipped[:, 0]
    write_csv(job.channel("train") / "train.csv", np.vstack([weighted, flipped]), delimiter=";")
    job.configure({"num_round": "10", "objective": "binary:logistic", "csv_weights": "1"}, {"train": {"ContentType": "csv"}})

    result = job.run()

    assert result.returncode == 0, result.stderr
    assert result.model().num_features() == 30  # neither label nor weight is a feature
    assert validation_auc(result, valid) > 0.9


def test_multiclass_with_container_metric_accuracy(job: Job) -> None:
    features, labels = load_iris(return_X_y=True)
    rows = np.column_stack([labels, features])
    np.random.default_rng(2).shuffle(rows)
    write_csv(job.channel("train") / "train.csv", rows[:100])
    write_csv(job.channel("validation") / "validation.csv", rows[100:])
    hyperparameters = {"num_round": "10", "objective": "multi:softprob", "num_class": "3", "eval_metric": "mlogloss,accuracy"}
    job.configure(hyperparameters, CSV_CHANNELS)

    result = job.run()

    assert result.returncode == 0, result.stderr
    accuracy = result.metric("validation-accuracy")
    assert len(accuracy) == 10 and accuracy[-1] > 0.85
    predicted = result.model().predict(xgboost.DMatrix(rows[100:, 1:])).argmax(axis=1)
    assert abs(float((predicted == rows[100:, 0]).mean()) - accuracy[-1]) < 1e-4


def test_tuning_objective_metric_is_added_to_eval_metrics(job: Job) -> None:
    train, valid = breast_cancer()
    write_csv(job.channel("train") / "train.csv", train)
    write_csv(job.channel("validation") / "validation.csv", valid)
    hyperparameters = {
        "num_round": "3",
        "objective": "binary:logistic",
        "eval_metric": "logloss",
        "_tuning_objective_metric": "validation:auc",
        "sagemaker_estimator_class_name": '"Estimator"',
    }
    job.configure(hyperparameters, CSV_CHANNELS)

    result = job.run()

    assert result.returncode == 0, result.stderr
    assert len(result.metric("validation-logloss")) == 3
    assert len(result.metric("validation-auc")) == 3


@pytest.mark.parametrize(
    ("hyperparameters", "channels", "failure"),
    [
        ({"num_round": "5", "max_dept": "3"}, CSV_CHANNELS, "ClientError: Hyperparameter max_dept is not a hyperparameter of the built-in XGBoost algorithm"),
        ({"num_round": "5", "eta": "1.5"}, CSV_CHANNELS, "ClientError: Hyperparameter eta: 1.5 is not in [0, 1]"),
        ({"eta": "0.5"}, CSV_CHANNELS, "ClientError: Hyperparameter num_round is required"),
        ({"num_round": "5", "objective": "multi:softmax"}, CSV_CHANNELS, "ClientError: Hyperparameter num_class is required for objective multi:softmax"),
        (
            {"num_round": "5"},
            {"train": {"ContentType": "application/x-recordio-protobuf"}},
            "ClientError: Content type application/x-recordio-protobuf is not supported by modelyard; use text/csv, text/libsvm or application/x-parquet",
        ),
        (
            {"num_round": "5"},
            {"train": {"ContentType": "text/csv", "TrainingInputMode": "Pipe"}},
            "ClientError: Channel train: Pipe input mode is not supported by modelyard; use File or FastFile",
        ),
        ({"num_round": "5"}, {"train": {"ContentType": "text/csv; label_size=2"}}, "ClientError: Content type text/csv; label_size=2: label_size must be 1"),
        ({"num_round": "5", "early_stopping_rounds": "3"}, {"train": {"ContentType": "csv"}}, "ClientError: Hyperparameter early_stopping_rounds needs a validation channel"),
    ],
)
def test_invalid_jobs_fail_with_a_client_error(
    job: Job, hyperparameters: dict[str, str], channels: dict[str, dict[str, str]], failure: str
) -> None:
    train, valid = breast_cancer()
    write_csv(job.channel("train") / "train.csv", train)
    write_csv(job.channel("validation") / "validation.csv", valid)
    job.configure(hyperparameters, channels)

    result = job.run()

    assert result.returncode == 1
    assert result.failure == failure
    assert failure in result.stderr
    assert not (job.base / "model" / "xgboost-model").exists()


def test_empty_train_channel_fails(job: Job) -> None:
    job.channel("train")
    job.configure({"num_round": "5"}, {"train": {"ContentType": "text/csv"}})

    result = job.run()

    assert result.returncode == 1
    assert result.failure == f"ClientError: No data in train channel path {job.base}/input/data/train"


def test_bad_labels_are_a_client_error(job: Job) -> None:
    write_csv(job.channel("train") / "train.csv", np.array([[0.0, 1.0], [2.0, 2.0], [0.0, 3.0], [0.0, 4.0]]))
    job.configure({"num_round": "2", "objective": "binary:logistic"}, {"train": {"ContentType": "text/csv"}})

    result = job.run()

    assert result.returncode == 1
    assert result.failure is not None and result.failure.startswith("ClientError: XGBoost training failed:")
    assert "label" in result.failure.lower()


def test_resume_from_checkpoints_continues_at_the_next_round(job: Job, tmp_path: Path) -> None:
    train, valid = breast_cancer()
    hyperparameters = {"num_round": "5", "objective": "binary:logistic", "eval_metric": "auc", "nthread": "1"}
    for target in (job, Job(tmp_path / "straight")):
        write_csv(target.channel("train") / "train.csv", train)
        write_csv(target.channel("validation") / "validation.csv", valid)

    first = job.configure(hyperparameters, CSV_CHANNELS, checkpoints=True).run()
    assert first.returncode == 0, first.stderr
    assert first.rounds() == [0, 1, 2, 3, 4]
    assert job.checkpoint_rounds() == [0, 1, 2, 3, 4]

    second = job.configure({**hyperparameters, "num_round": "10"}, CSV_CHANNELS, checkpoints=True).run()
    assert second.returncode == 0, second.stderr
    assert second.rounds() == [5, 6, 7, 8, 9]
    assert "5 of 10 rounds done" in second.stdout
    assert job.checkpoint_rounds() == [5, 6, 7, 8, 9]  # only the newest five are kept
    assert second.model().num_boosted_rounds() == 10

    # Resuming must give the model a single uninterrupted run of 10 rounds gives.
    straight = Job(tmp_path / "straight").configure({**hyperparameters, "num_round": "10"}, CSV_CHANNELS).run()
    assert straight.returncode == 0, straight.stderr
    assert straight.metric("validation-auc")[5:] == second.metric("validation-auc")
    rows = xgboost.DMatrix(valid[:, 1:])
    np.testing.assert_allclose(second.model().predict(rows), straight.model().predict(rows), rtol=1e-6)


def test_resume_with_all_rounds_checkpointed_only_saves_the_model(job: Job) -> None:
    train, _ = breast_cancer()
    write_csv(job.channel("train") / "train.csv", train)
    job.configure({"num_round": "4", "objective": "binary:logistic"}, {"train": {"ContentType": "csv"}}, checkpoints=True)
    assert job.run().returncode == 0
    (job.base / "model" / "xgboost-model").unlink()

    again = job.run()

    assert again.returncode == 0, again.stderr
    assert again.rounds() == []
    assert again.model().num_boosted_rounds() == 4


def test_early_stopping_uses_the_last_metric_on_validation(job: Job) -> None:
    train, valid = breast_cancer()
    noise = valid.copy()
    noise[:, 0] = np.random.default_rng(3).integers(0, 2, size=len(noise))  # nothing to learn
    write_csv(job.channel("train") / "train.csv", train)
    write_csv(job.channel("validation") / "validation.csv", noise)
    hyperparameters = {
        "num_round": "200",
        "objective": "binary:logistic",
        "eval_metric": "error,auc",
        "early_stopping_rounds": "4",
    }
    job.configure(hyperparameters, CSV_CHANNELS)

    result = job.run()

    assert result.returncode == 0, result.stderr
    rounds = result.rounds()
    auc = result.metric("validation-auc")
    best = int(np.argmax(auc))  # first round with the highest AUC
    assert len(rounds) < 200
    assert rounds[-1] == best + 4
    assert result.model().attr("best_iteration") == str(best)
    assert result.model().num_boosted_rounds() == len(rounds)


def test_sigterm_saves_the_model_when_asked(job: Job) -> None:
    train, valid = breast_cancer()
    write_csv(job.channel("train") / "train.csv", train)
    write_csv(job.channel("validation") / "validation.csv", valid)
    hyperparameters = {
        "num_round": "100000",
        "objective": "binary:logistic",
        "eval_metric": "auc",
        "save_model_on_termination": "true",
    }
    job.configure(hyperparameters, CSV_CHANNELS, checkpoints=True)
    process = subprocess.Popen(
        [sys.executable, "-m", MODULE], env=job.environ(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:  # lines arrive as they are printed: stdout is flushed
            if line.startswith("[3]\t"):
                break
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()

    assert process.returncode == 143, stderr
    assert "SIGTERM: saved the model after" in stdout
    saved = Result(0, "", "", job.base).model().num_boosted_rounds()
    assert 4 <= saved < 100000
    assert max(job.checkpoint_rounds()) in (saved - 1, saved - 2)
    assert not (job.base / "output" / "failure").exists()


def test_sm_variables_override_the_base_dir_layout(job: Job, tmp_path: Path) -> None:
    train, _ = breast_cancer()
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "data").mkdir(parents=True)
    write_csv(elsewhere / "data" / "train.csv", train)
    job.configure({"num_round": "2"}, {"train": {"ContentType": "csv"}})

    result = job.run(SM_CHANNEL_TRAIN=str(elsewhere / "data"), SM_MODEL_DIR=str(elsewhere / "model"))

    assert result.returncode == 0, result.stderr
    assert (elsewhere / "model" / "xgboost-model").is_file()
    assert not (job.base / "model").exists()


def test_several_hosts_need_a_master_port(job: Job) -> None:
    train, _ = breast_cancer()
    write_csv(job.channel("train") / "train.csv", train)
    job.configure({"num_round": "2"}, {"train": {"ContentType": "csv"}})

    result = job.run(SM_HOSTS='["algo-1","algo-2"]', SM_CURRENT_HOST="algo-2")

    assert result.returncode == 1
    assert result.failure == "ClientError: Multi-host built-in XGBoost needs MODELYARD_MASTER_PORT for its tracker"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_hosts_train_one_model_over_their_shards(tmp_path: Path) -> None:
    train, valid = breast_cancer()
    hosts = {"algo-1": Job(tmp_path / "algo-1"), "algo-2": Job(tmp_path / "algo-2")}
    for index, host in enumerate(hosts.values()):
        write_csv(host.channel("train") / "shard.csv", train[index::2])
        write_csv(host.channel("validation") / "validation.csv", valid)
        host.configure({"num_round": "6", "objective": "binary:logistic", "eval_metric": "auc"}, CSV_CHANNELS, checkpoints=True)
    cluster = {"SM_HOSTS": json.dumps(list(hosts)), "MODELYARD_MASTER_PORT": str(free_port())}
    # The worker starts first: it must wait for the master's tracker rather than give up.
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", MODULE],
            env=host.environ(SM_CURRENT_HOST=name, **cluster),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, host in reversed(hosts.items())
    }
    try:
        outputs = {name: p.communicate(timeout=180) for name, p in processes.items()}
    finally:
        for p in processes.values():
            p.kill()

    master, worker = (Result(processes[n].returncode, *outputs[n], hosts[n].base) for n in hosts)
    assert (master.returncode, worker.returncode) == (0, 0), master.stderr + worker.stderr
    assert "train: 200 rows" in master.stdout and "train: 200 rows" in worker.stdout
    assert master.rounds() == list(range(6)) and worker.rounds() == []  # rank 0 logs the metrics
    assert not (hosts["algo-2"].base / "model").exists()  # only the master saves the model
    # Both hosts hold the same trees: the collective merged their statistics every round.
    for round_ in (4, 5):
        name = f"checkpoints/xgboost-checkpoint.{round_}"
        assert (hosts["algo-1"].base / name).read_bytes() == (hosts["algo-2"].base / name).read_bytes()
    assert master.model().num_boosted_rounds() == 6
    assert validation_auc(master, valid) > 0.9
