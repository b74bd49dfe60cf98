"""Metrics the built-in algorithm offers that XGBoost does not compute (``accuracy``, ``f1``...).

They run as XGBoost's ``custom_metric``, which receives transformed predictions (probabilities
for ``binary:logistic``, an (n, k) matrix for ``multi:softprob``); class metrics first turn those
into predicted classes. Unsuffixed ``f1``, ``precision`` and ``recall`` are binary scores on 0/1
labels and macro averages otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import xgboost

from .metrics import CONTAINER_METRICS

CustomMetric = Callable[[np.ndarray, xgboost.DMatrix], list[tuple[str, float]]]
_Score = Callable[[np.ndarray, np.ndarray], float]


def _sklearn_metric(name: str) -> Callable[..., float]:
    # Imported when a container metric is first computed, not with the algorithm: most jobs
    # ask for none, and scikit-learn costs over a second of CPU to import.
    from sklearn import metrics

    return getattr(metrics, name)  # type: ignore[no-any-return]


def _plain(name: str) -> _Score:
    return lambda labels, predicted: float(_sklearn_metric(name)(labels, predicted))


def _averaged(name: str, average: str | None) -> _Score:
    def compute(labels: np.ndarray, predicted: np.ndarray) -> float:
        chosen = average or ("binary" if set(np.unique(np.concatenate([labels, predicted]))) <= {0, 1} else "macro")
        return float(_sklearn_metric(name)(labels, predicted, average=chosen, zero_division=0))

    return compute


_CLASS_SCORES: dict[str, _Score] = {
    "accuracy": _plain("accuracy_score"),
    "balanced_accuracy": _plain("balanced_accuracy_score"),
    "f1": _averaged("f1_score", None),
    "f1_binary": _averaged("f1_score", "binary"),
    "f1_macro": _averaged("f1_score", "macro"),
    "precision": _averaged("precision_score", None),
    "precision_macro": _averaged("precision_score", "macro"),
    "precision_micro": _averaged("precision_score", "micro"),
    "recall": _averaged("recall_score", None),
    "recall_macro": _averaged("recall_score", "macro"),
    "recall_micro": _averaged("recall_score", "micro"),
}
_VALUE_SCORES: dict[str, _Score] = {
    "mse": _plain("mean_squared_error"),
    "r2": _plain("r2_score"),
}
assert set(_CLASS_SCORES) | set(_VALUE_SCORES) == CONTAINER_METRICS


def predicted_classes(predictions: np.ndarray, objective: str, rows: int) -> np.ndarray:
    """Class labels from transformed predictions of any classification objective."""
    if predictions.ndim == 1 and predictions.size != rows:
        predictions = predictions.reshape(rows, -1)  # flattened softprob output
    if predictions.ndim == 2:
        return predictions.argmax(axis=1).astype(np.int64)
    if objective == "multi:softmax":
        return predictions.astype(np.int64)
    threshold = 0.0 if objective == "binary:logitraw" else 0.5
    return (predictions > threshold).astype(np.int64)


def make_custom_metric(names: Sequence[str], objective: str) -> CustomMetric | None:
    """One ``custom_metric`` computing every container metric in ``names``, or None."""
    wanted = [name for name in names if name in CONTAINER_METRICS]
    if not wanted:
        return None

    def evaluate(predictions: np.ndarray, dmatrix: xgboost.DMatrix) -> list[tuple[str, float]]:
        labels = dmatrix.get_label()
        classes = None
        results = []
        for name in wanted:
            if name in _VALUE_SCORES:
                results.append((name, _VALUE_SCORES[name](labels, predictions)))
                continue
            if classes is None:
                classes = predicted_classes(predictions, objective, len(labels))
            results.append((name, _CLASS_SCORES[name](labels.astype(np.int64), classes)))
        return results

    return evaluate
