"""In-process checks of the built-in XGBoost pieces: surface, metrics, hyperparameters, data."""

from __future__ import annotations

import doctest
import importlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import modelyard.runtime.algorithms.xgboost as algorithm
from modelyard.runtime.algorithms.xgboost import data, hyperparameters
from modelyard.runtime.algorithms.xgboost.environment import AlgorithmEnvironment
from modelyard.runtime.algorithms.xgboost.errors import ClientError
from modelyard.runtime.algorithms.xgboost.metrics import MAXIMIZE_METRICS, MINIMIZE_METRICS


@pytest.mark.parametrize("module", ["metrics", "hyperparameters"])
def test_docstring_examples(module: str) -> None:
    results = doctest.testmod(importlib.import_module(f"modelyard.runtime.algorithms.xgboost.{module}"))
    assert results.attempted > 0 and results.failed == 0


def test_public_surface() -> None:
    assert algorithm.__all__ == ["METRIC_DEFINITIONS", "metric_definitions_for", "objective_direction"]


def test_package_import_does_not_load_xgboost_or_numpy() -> None:
    code = (
        "import sys, modelyard.runtime.algorithms.xgboost as a; "
        "print(len(a.METRIC_DEFINITIONS), sorted(m for m in ('xgboost', 'numpy') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["66", "[]"]


def test_metric_definitions_cover_train_and_validation_of_every_metric() -> None:
    names = [d["Name"] for d in algorithm.METRIC_DEFINITIONS]
    metrics = sorted(MAXIMIZE_METRICS + MINIMIZE_METRICS)
    assert names == [f"{data}:{m}" for m in metrics for data in ("train", "validation")]
    auc = next(d for d in algorithm.METRIC_DEFINITIONS if d["Name"] == "validation:auc")
    assert auc["Regex"] == r".*\[[0-9]+\].*#011validation-auc:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"
    aft = next(d for d in algorithm.METRIC_DEFINITIONS if d["Name"] == "train:aft-nloglik")
    assert aft["Regex"].startswith(r".*\[[0-9]+\].*#011train-aft-nloglik:(")


def test_metric_definitions_match_escaped_log_lines() -> None:
    line = "[17]\ttrain-rmse:0.41000\ttrain-mae:1e-05\tvalidation-rmse:0.52000".replace("\t", "#011")
    values = {
        d["Name"]: m.group(1)
        for d in algorithm.metric_definitions_for({})
        if (m := re.match(d["Regex"], line))
    }
    # Every value stops at its own #011, also for metrics that are not last on the line.
    assert values == {"train:rmse": "0.41000", "train:mae": "1e-05", "validation:rmse": "0.52000"}


def test_metric_definitions_for_adds_parametrised_metrics_once() -> None:
    definitions = algorithm.metric_definitions_for(
        {"eval_metric": "ndcg@5,auc,error@0.7", "_tuning_objective_metric": "validation:ndcg@5"}
    )
    names = [d["Name"] for d in definitions]
    assert len(names) == len(set(names)) == 66 + 4
    ndcg = next(d for d in definitions if d["Name"] == "validation:ndcg@5")
    assert re.match(ndcg["Regex"], "[3]#011train-ndcg@5:0.5#011validation-ndcg@5:0.75").group(1) == "0.75"  # type: ignore[union-attr]
    error = next(d for d in definitions if d["Name"] == "validation:error@0.7")
    assert re.match(error["Regex"], "[3]#011validation-error@017:0.2") is None  # '.' is literal


@pytest.mark.parametrize(
    ("metric", "direction"),
    [("validation:auc", "Maximize"), ("f1_macro", "Maximize"), ("train:ndcg@5", "Maximize"),
     ("validation:rmse", "Minimize"), ("mlogloss", "Minimize"), ("error@0.6", "Minimize")],
)
def test_objective_direction(metric: str, direction: str) -> None:
    assert algorithm.objective_direction(metric) == direction


def test_objective_direction_rejects_unknown_metrics() -> None:
    with pytest.raises(ValueError, match="validation:accuracy_score"):
        algorithm.objective_direction("validation:accuracy_score")


def test_hyperparameters_are_typed_and_split() -> None:
    config = hyperparameters.validate(
        {
            "num_round": "50",
            "eta": "0.2",
            "max_depth": "6.0",
            "subsample": "1",
            "objective": "reg:linear",
            "eval_metric": "rmse, mae",
            "early_stopping_rounds": "5",
            "csv_weights": "1",
            "save_model_on_termination": "True",
            "predictor": "cpu_predictor",
            "_tuning_objective_metric": "validation:mae",
            "sagemaker_program": "ignored",
        }
    )
    assert config.num_round == 50
    assert config.params == {"eta": 0.2, "max_depth": 6, "subsample": 1.0, "objective": "reg:squarederror"}
    assert config.eval_metrics == ("rmse", "mae")
    assert (config.early_stopping_rounds, config.csv_weights, config.save_model_on_termination) == (5, True, True)
    assert config.ignored == ("predictor",)


def test_gpu_hist_becomes_hist_on_cuda() -> None:
    params = hyperparameters.validate({"num_round": "1", "tree_method": "gpu_hist"}).params
    assert params == {"tree_method": "hist", "device": "cuda"}


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"num_round": "0"}, "Hyperparameter num_round: 0 is not in [1, inf)"),
        ({"num_round": "ten"}, "Hyperparameter num_round: ten is not an integer"),
        ({"num_round": "1", "subsample": "0"}, "Hyperparameter subsample: 0 is not in (0, 1]"),
        ({"num_round": "1", "booster": "gbforest"}, "Hyperparameter booster: gbforest is not one of gbtree, gblinear, dart"),
        ({"num_round": "1", "verbosity": "4"}, "Hyperparameter verbosity: 4 is not in [0, 3]"),
        ({"num_round": "1", "csv_weights": "2"}, "Hyperparameter csv_weights: 2 is not in [0, 1]"),
        ({"num_round": "1", "early_stopping_rounds": "0"}, "Hyperparameter early_stopping_rounds: 0 is not in [1, inf)"),
        ({"num_round": "1", "tweedie_variance_power": "2"}, "Hyperparameter tweedie_variance_power: 2 is not in (1, 2)"),
        ({"num_round": "1", "eta": "nan"}, "Hyperparameter eta: nan is not in [0, 1]"),
        ({"num_round": "1", "eval_metric": "auc,f2"}, "Hyperparameter eval_metric: f2 is not a metric of the built-in XGBoost algorithm"),
        ({"num_round": "1", "eval_metric": "auc@3"}, "Hyperparameter eval_metric: auc@3 is not a metric of the built-in XGBoost algorithm"),
        ({"num_round": "1", "save_model_on_termination": "yes"}, "Hyperparameter save_model_on_termination: yes is not one of true, false"),
        ({"num_round": "1", "_tuning_objective_metric": "auc"}, "Hyperparameter _tuning_objective_metric: auc is not a metric like validation:auc"),
        ({"num_round": "1", "monotone_constraints": "(1,2)"}, "Hyperparameter monotone_constraints: (1,2) is not a tuple like (1,0,-1) of -1, 0, 1"),
        ({"num_round": "1", "num_class": "3"}, "Hyperparameter num_class can only be set for objective multi:softmax or multi:softprob"),
        ({"num_round": "1", "eval_metric": "aft-nloglik"}, "Metric aft-nloglik can only be used with objective survival:aft"),
        ({"num_round": "1", "_kfold": "3"}, "Hyperparameter _kfold (cross-validation ensembles) is not supported by modelyard yet"),
        ({"num_round": "1", "Eta": "0.1"}, "Hyperparameter Eta is not a hyperparameter of the built-in XGBoost algorithm"),
    ],
)
def test_hyperparameter_errors(given: dict[str, str], message: str) -> None:
    with pytest.raises(ClientError) as raised:
        hyperparameters.validate(given)
    assert raised.value.failure_text == f"ClientError: {message}"


def test_constraint_hyperparameters_are_normalised() -> None:
    params = hyperparameters.validate(
        {"num_round": "1", "monotone_constraints": "( 1, 0,-1)", "interaction_constraints": "[[0, 1], [2]]"}
    ).params
    assert params == {"monotone_constraints": "(1,0,-1)", "interaction_constraints": "[[0,1],[2]]"}


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [(None, "libsvm"), ("", "libsvm"), ("text/libsvm", "libsvm"), ("TEXT/X-LIBSVM", "libsvm"), ("libsvm", "libsvm"),
     ("text/csv", "csv"), ("Text/CSV; label_size=1", "csv"), ("csv", "csv"),
     ("application/x-parquet", "parquet"), ("parquet", "parquet")],
)
def test_content_types(content_type: str | None, expected: str) -> None:
    assert data.parse_content_type(content_type) == expected


@pytest.mark.parametrize("content_type", ["application/json", "recordio-protobuf", "text/csv;label_size=3"])
def test_unusable_content_types(content_type: str) -> None:
    with pytest.raises(ClientError):
        data.parse_content_type(content_type)


@pytest.mark.parametrize(
    ("line", "delimiter"),
    [("1,2.5,3", ","), ("1;2.5;3", ";"), ("1\t2.5\t3", "\t"), ("1 2.5 3", " "), ("1|2|3", "|"), ("7.5", ",")],
)
def test_sniff_delimiter(line: str, delimiter: str) -> None:
    assert data.sniff_delimiter(line) == delimiter


def test_channels_inherit_the_train_content_type_and_reject_strangers() -> None:
    channels = data.parse_channels({"train": {"ContentType": "text/csv"}, "validation": {}})
    assert channels["validation"].format == "csv"
    with pytest.raises(ClientError, match="Channel test is not used"):
        data.parse_channels({"train": {}, "test": {}})
    with pytest.raises(ClientError, match="requires a train channel"):
        data.parse_channels({"validation": {}})


def test_data_files_skip_hidden_and_underscore_names(tmp_path: Path) -> None:
    for name in ("b.csv", "a/c.csv", "_SUCCESS", ".crc", "_tmp/d.csv", ".git/e.csv", "empty.csv"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("" if name == "empty.csv" else "1,2\n")
    assert [p.relative_to(tmp_path).as_posix() for p in data.data_files(tmp_path)] == ["a/c.csv", "b.csv"]


def test_libsvm_files_of_different_widths_are_aligned(tmp_path: Path) -> None:
    (tmp_path / "one.txt").write_text("1 0:1.5 2:2\n0 1:1 # comment\n")
    (tmp_path / "two.txt").write_text("1 qid:1 4:3\n".replace("qid:1 ", ""))
    dataset = data.load_channel(data.Channel("train", "libsvm"), tmp_path)
    assert dataset.shape == (3, 5)
    np.testing.assert_array_equal(dataset.labels, [1, 0, 1])
    np.testing.assert_array_equal(dataset.features.toarray()[0], [1.5, 0, 2, 0, 0])
    assert dataset.to_dmatrix(7).num_col() == 7


def test_csv_files_with_different_widths_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("1,2,3\n")
    (tmp_path / "b.csv").write_text("1,2\n")
    with pytest.raises(ClientError, match=r"different numbers of columns: \[1, 2\]"):
        data.load_channel(data.Channel("train", "csv"), tmp_path)


def test_csv_missing_values_stay_missing(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("1,,3\n0,2,\n")
    dataset = data.load_channel(data.Channel("train", "csv"), tmp_path)
    assert np.isnan(dataset.features).tolist() == [[True, False], [False, True]]


def test_environment_defaults_follow_the_base_dir(tmp_path: Path) -> None:
    env = AlgorithmEnvironment.from_environ({"SAGEMAKER_BASE_DIR": str(tmp_path)})
    assert env.hyperparameters_file == tmp_path / "input/config/hyperparameters.json"
    assert env.channel_dir("validation") == tmp_path / "input/data/validation"
    assert env.model_dir == tmp_path / "model"
    assert env.failure_file == tmp_path / "output/failure"
    assert env.checkpoint_dir() == tmp_path / "checkpoints"
    assert (env.hosts, env.current_host) == (("algo-1",), "algo-1")
    (tmp_path / "input/config").mkdir(parents=True)
    (tmp_path / "input/config/checkpointconfig.json").write_text('{"LocalPath": "/somewhere/ckpt"}')
    assert env.checkpoint_dir() == Path("/somewhere/ckpt")
