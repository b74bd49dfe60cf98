"""Fixtures of the model-server tests: a trained Booster and instances that stop themselves."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost
from host_helpers import make_tar_gz
from sklearn.datasets import load_breast_cancer

from .instance_helpers import Instance, make_instance


@dataclasses.dataclass(frozen=True)
class TrainedBooster:
    """A breast-cancer Booster, its training features and its saved model file."""

    booster: xgboost.Booster
    features: np.ndarray
    labels: np.ndarray
    model_file: bytes

    def expected(self, rows: np.ndarray) -> np.ndarray:
        return self.booster.predict(xgboost.DMatrix(rows))


@pytest.fixture(scope="session")
def trained() -> TrainedBooster:
    features, labels = load_breast_cancer(return_X_y=True)
    features = features.astype(np.float32)
    params = {"objective": "binary:logistic", "max_depth": 3, "nthread": 1}
    booster = xgboost.train(params, xgboost.DMatrix(features, labels), 20)
    raw = booster.save_raw("ubj")
    return TrainedBooster(booster, features, labels, bytes(raw))


def archive(tmp_path: Path, files: dict[str, bytes | str], name: str = "model") -> str:
    """A model.tar.gz of ``files`` (relative name → content); its path."""
    source = tmp_path / "sources" / name
    for relative, content in files.items():
        path = source / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = content.encode() if isinstance(content, str) else content
        path.write_bytes(data)
    target = tmp_path / "s3" / name / "model.tar.gz"
    target.parent.mkdir(parents=True, exist_ok=True)
    return str(make_tar_gz(source, target))


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Instance]]:
    """Start an instance (``env`` for the instance process, fields for the plan), InService."""
    started: list[Instance] = []

    def start(name: str = "inst", env: dict[str, str] | None = None, wait: bool = True,
              **fields: Any) -> Instance:  # fmt: skip
        instance = make_instance(tmp_path, name, **fields).start(**(env or {}))
        started.append(instance)
        return instance.wait_in_service() if wait else instance

    yield start
    for instance in started:
        if instance.process is not None and instance.process.poll() is None:
            instance.stop()
