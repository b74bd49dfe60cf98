"""The benchmark's model and request bodies.

One XGBoost binary classifier, trained once per run with the project's xgboost on synthetic
data (100,000 rows × 20 features, 100 trees of depth 6), saved as ``xgboost-model`` (UBJSON),
the name the SageMaker XGBoost container looks for, and packed in a ``model.tar.gz``. The peers
convert that same file into their own formats (see ``peer_models.py``), so every target scores
with identical trees.
"""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xgboost
from sklearn.datasets import make_classification

ROWS = 100_000
FEATURES = 20
TREES = 100
DEPTH = 6
MODEL_FILE = "xgboost-model"


@dataclass(frozen=True)
class Payload:
    """One request body: ``rows`` CSV rows without a header, and the predictions expected."""

    name: str
    rows: int
    csv: bytes
    expected: np.ndarray

    def with_header(self) -> bytes:
        """The same rows under a header line ``f0,...,f19`` (MLflow reads line 1 as names)."""
        return (",".join(feature_names()) + "\n").encode() + self.csv


@dataclass(frozen=True)
class BenchModel:
    """The trained booster, where its files are, and the request bodies to send it."""

    booster: xgboost.Booster
    model_file: Path
    archive: Path
    payloads: tuple[Payload, ...]


def feature_names() -> list[str]:
    return [f"f{i}" for i in range(FEATURES)]


def train(workdir: Path, payload_rows: tuple[int, ...] = (1, 100), seed: int = 0) -> BenchModel:
    """Train the classifier, write ``xgboost-model`` and ``model.tar.gz`` under ``workdir``."""
    x, y = make_classification(n_samples=ROWS, n_features=FEATURES, n_informative=12,
                               random_state=seed)
    dtrain = xgboost.DMatrix(x.astype(np.float32), label=y)
    params = {"objective": "binary:logistic", "max_depth": DEPTH, "eta": 0.3, "nthread": 2,
              "seed": seed}
    booster = xgboost.train(params, dtrain, num_boost_round=TREES)
    workdir.mkdir(parents=True, exist_ok=True)
    model_file = workdir / MODEL_FILE
    model_file.write_bytes(bytes(booster.save_raw("ubj")))
    archive = _pack(workdir / "model.tar.gz", model_file)
    rng = np.random.default_rng(seed + 1)
    payloads = tuple(_payload(booster, x[rng.choice(len(x), rows, replace=False)])
                     for rows in payload_rows)
    return BenchModel(booster, model_file, archive, payloads)


def _pack(path: Path, model_file: Path) -> Path:
    data = model_file.read_bytes()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(MODEL_FILE)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def _payload(booster: xgboost.Booster, x: np.ndarray) -> Payload:
    """CSV as a client would write it: one line per row, full float32 precision, no header."""
    x = x.astype(np.float32)
    lines = "\n".join(",".join(f"{v:.9g}" for v in row) for row in x)
    rows = len(x)
    expected = booster.inplace_predict(x)
    return Payload(f"{rows}-row", rows, lines.encode(), np.asarray(expected, dtype=np.float64))


def parse_predictions(body: bytes) -> np.ndarray:
    """Predictions out of a CSV or JSON answer: every number in it, in order.

    Numbers inside JSON strings count too (BentoML's batched API answers a list of CSV texts).
    """
    try:
        tokens = _json_tokens(json.loads(body))
    except ValueError:
        tokens = body.decode().replace(",", " ").split()
    return np.array([float(t) for t in tokens])


def _json_tokens(value: object) -> list[str]:
    if isinstance(value, dict):
        return [t for v in value.values() for t in _json_tokens(v)]
    if isinstance(value, list):
        return [t for v in value for t in _json_tokens(v)]
    if isinstance(value, str):
        return value.replace(",", " ").split()
    return [str(value)]
