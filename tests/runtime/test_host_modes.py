"""Algorithm mode, torch.distributed launching, and the pure helpers behind arguments."""

from __future__ import annotations

import importlib.util
import json
import tarfile

import pytest
from host_helpers import DUMP_SCRIPT, channel, run, script_hps, write_code

from modelyard.runtime.hyperparameters import Hyperparameters, rewrite_opt_ml, to_cli_args
from modelyard.runtime.isolation import hosts_file_text


def test_xgboost_without_program_runs_the_built_in_algorithm(make_job, tmp_path):
    rows = "".join(f"{i % 7},{i},{i % 3}\n" for i in range(60))
    data = write_code(tmp_path / "s3in" / "train", {"train.csv": rows})
    job = make_job(
        framework="xgboost",
        hyperparameters={"num_round": "3", "objective": "reg:squarederror"},
        channels=[channel("train", data, content_type="text/csv")],
    )
    run(job)
    assert job.returncode == 0, job.logs()
    with tarfile.open(job.plan.model_uri) as tar:
        assert tar.getnames(), "the algorithm saved no model"
    assert any("[2]" in line for line in job.logs())  # the last boosting round was logged


@pytest.mark.skipif(importlib.util.find_spec("torch") is not None, reason="torch is installed")
def test_torch_distributed_without_torch_names_the_extra(make_job, tmp_path):
    code = write_code(tmp_path / "code", {"train.py": DUMP_SCRIPT})
    hps = script_hps(code, sagemaker_torch_distributed_enabled="true")
    job = run(make_job(hyperparameters=hps))
    assert job.returncode == 1
    assert "pip install 'modelyard[torch]'" in job.exit_event()["failure"]
    assert job.exit_event()["failure"].startswith("ClientError: ")


def test_cli_args_follow_the_toolkit():
    hps = Hyperparameters.parse(
        {"b": "1", "alpha": '"x"', "d": '{"z": 1, "a": true}', "sagemaker_program": '"t.py"'}
    )
    assert hps.user == {"b": 1, "alpha": "x", "d": {"z": 1, "a": True}}
    assert hps.framework == {"sagemaker_program": "t.py"}
    assert hps.cli_args() == ["--alpha", "x", "-b", "1", "-d", "a=True,z=1"]
    args = to_cli_args({"n": None, "f": 1.5, "l": [1, 2]})
    assert args == ["-f", "1.5", "-l", "[1, 2]", "-n", ""]


def test_framework_params_exclude_reserved_keys():
    hps = Hyperparameters.parse(
        {
            "sagemaker_program": '"t.py"',
            "sagemaker_mpi_enabled": "true",
            "_tuning_objective_metric": "auc",
            "epochs": "1",
        }
    )
    assert hps.framework_params == {"sagemaker_mpi_enabled": True}
    assert hps.user == {"epochs": 1}
    assert hps.flag("sagemaker_mpi_enabled")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/opt/ml/model", "/R/model"),
        ("/opt/ml", "/R"),
        (json.dumps("/opt/ml/input/data"), json.dumps("/R/input/data")),
        ("a=/opt/ml/x,b=/opt/ml/y", "a=/R/x,b=/R/y"),
        ("/opt/mlflow", "/opt/mlflow"),
        ("/data/opt/ml/x", "/data/opt/ml/x"),
        ("s3://b/opt/ml/x", "s3://b/opt/ml/x"),
    ],
)
def test_rewrite_opt_ml_only_touches_path_prefixes(value, expected):
    assert rewrite_opt_ml(value, "/R") == expected


def test_hosts_file_maps_every_host_to_loopback():
    text = hosts_file_text(["algo-2", "algo-1"], "127.0.0.1 localhost\n")
    assert text.splitlines()[1:] == [
        "127.0.0.1\talgo-1",
        "127.0.0.1\talgo-2",
        "127.0.0.1 localhost",
    ]
