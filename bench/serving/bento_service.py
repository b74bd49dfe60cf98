"""The BentoML peer: one API that takes CSV text and answers CSV, with or without batching.

Runs in the BentoML venv (``bench/.venv-peers/bentoml``), never in the project's. The model
comes from BentoML's model store (``BENTOML_HOME``), saved there by ``peer_models.py``; the
worker count from ``BENCH_WORKERS``::

    BENTOML_HOME=... BENCH_WORKERS=1 bentoml serve bento_service:Classifier \\
        --working-dir bench/serving --host 127.0.0.1 --port 3000

- ``Classifier.predict``: the request body is the CSV text itself (a ``str`` root input,
  ``Content-Type: text/plain``); one request, one ``inplace_predict``.
- ``BatchedClassifier.predict``: ``batchable=True``, the request body is a JSON list holding
  that one CSV text; BentoML's adaptive batcher merges the lists of concurrent requests into
  one call, which parses every text, predicts once on all rows and splits the answers.
"""

from __future__ import annotations

import os

import bentoml
import numpy as np

MODEL_TAG = "bench-xgboost:latest"
WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))
#: every target runs without a per-request access log, as the floor and modelyard do
ACCESS_LOG_OFF = {"access": {"enabled": False}}


def parse_csv(text: str) -> np.ndarray:
    """Rows of floats from headerless CSV, in one numpy call (as the floor does)."""
    text = text.strip()
    columns = text.split("\n", 1)[0].count(",") + 1
    flat = np.fromstring(text.replace("\n", ","), dtype=np.float32, sep=",")
    return flat.reshape(-1, columns)


def load_booster():  # type: ignore[no-untyped-def]
    booster = bentoml.xgboost.load_model(MODEL_TAG)
    booster.set_param({"nthread": 1})
    return booster


@bentoml.service(workers=WORKERS, logging=ACCESS_LOG_OFF)
class Classifier:
    """One request, one prediction."""

    def __init__(self) -> None:
        self.booster = load_booster()

    @bentoml.api
    def predict(self, csv: str, /) -> str:
        predictions = self.booster.inplace_predict(parse_csv(csv))
        return "\n".join(map(str, predictions.tolist()))


@bentoml.service(workers=WORKERS, logging=ACCESS_LOG_OFF)
class BatchedClassifier:
    """Concurrent requests merged by BentoML's adaptive batcher (default batch limits)."""

    def __init__(self) -> None:
        self.booster = load_booster()

    @bentoml.api(batchable=True)
    def predict(self, csvs: list[str], /) -> list[str]:
        blocks = [parse_csv(text) for text in csvs]
        predictions = self.booster.inplace_predict(np.concatenate(blocks)).tolist()
        answers, start = [], 0
        for block in blocks:
            answers.append("\n".join(map(str, predictions[start:start + len(block)])))
            start += len(block)
        return answers
