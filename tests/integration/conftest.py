"""Fixtures for tests that drive a real server process through boto3."""

from __future__ import annotations

import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import RunningServer, start_server

SKLEARN_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
XGBOOST_IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"
ROLE = "arn:aws:iam::000000000000:role/modelyard-tests"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("home"))
    yield running
    running.stop()


@pytest.fixture(scope="module")
def sm(server: RunningServer) -> Any:
    return server.client("sagemaker")


def script_job(
    name: str,
    code: Path,
    output: str,
    hyperparameters: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A CreateTrainingJob request running ``code`` (a sourcedir.tar.gz) in script mode."""
    hps = {
        "sagemaker_program": '"train.py"',
        "sagemaker_submit_directory": f'"{code}"',
    }
    hps.update(hyperparameters or {})
    request: dict[str, Any] = {
        "TrainingJobName": name,
        "AlgorithmSpecification": {"TrainingImage": SKLEARN_IMAGE, "TrainingInputMode": "File"},
        "RoleArn": ROLE,
        "HyperParameters": hps,
        "OutputDataConfig": {"S3OutputPath": output},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
        "StoppingCondition": {"MaxRuntimeInSeconds": 120},
    }
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(request.get(key), dict):
            request[key] = {**request[key], **value}
        else:
            request[key] = value
    return request


def make_sourcedir(directory: Path, script: str, files: dict[str, str] | None = None) -> Path:
    """Write ``train.py`` (and other files) and pack them as ``sourcedir.tar.gz``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train.py").write_text(script)
    for name, text in (files or {}).items():
        (directory / name).write_text(text)
    archive = directory / "sourcedir.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in sorted(directory.iterdir()):
            if path.name != archive.name:
                tar.add(path, arcname=path.name)
    return archive


def model_files(server: RunningServer, uri: str) -> dict[str, bytes]:
    """The members of a model.tar.gz at ``uri`` (an s3:// URI mapped into the server's home)."""
    assert uri.startswith("s3://"), uri
    path = server.home / "artifacts" / "s3" / uri[len("s3://"):]
    with tarfile.open(path) as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers() if m.isfile()
        }


@pytest.fixture(scope="module")
def boosters(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Any, Path]]:
    root = tmp_path_factory.mktemp("models")
    from tests.integration.endpoint_helpers import model_tar, train_booster

    out = {}
    for name, rounds in (("small", 5), ("large", 40)):
        booster = train_booster(rounds)
        out[name] = (booster, model_tar(root / name, {"xgboost-model": bytes(booster.save_raw("ubj"))}))
    return out
