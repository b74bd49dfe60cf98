"""Metric names of the built-in XGBoost algorithm and the MetricDefinitions SageMaker attaches.

Pure Python on purpose: the platform server imports this to auto-attach metric definitions to
built-in XGBoost jobs and to pick the direction of tuning objectives, without loading XGBoost.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Literal

Direction = Literal["Maximize", "Minimize"]

MAXIMIZE_METRICS: tuple[str, ...] = (
    "accuracy",
    "auc",
    "aucpr",
    "balanced_accuracy",
    "f1",
    "f1_binary",
    "f1_macro",
    "map",
    "ndcg",
    "precision",
    "precision_macro",
    "precision_micro",
    "r2",
    "recall",
    "recall_macro",
    "recall_micro",
)
MINIMIZE_METRICS: tuple[str, ...] = (
    "aft-nloglik",
    "cox-nloglik",
    "error",
    "gamma-deviance",
    "gamma-nloglik",
    "interval-regression-accuracy",
    "logloss",
    "mae",
    "mape",
    "merror",
    "mlogloss",
    "mphe",
    "mse",
    "poisson-nloglik",
    "rmse",
    "rmsle",
    "tweedie-nloglik",
)
# Metrics XGBoost does not compute itself; the algorithm evaluates them in Python.
CONTAINER_METRICS: frozenset[str] = frozenset(
    {
        "accuracy",
        "balanced_accuracy",
        "f1",
        "f1_binary",
        "f1_macro",
        "mse",
        "precision",
        "precision_macro",
        "precision_micro",
        "r2",
        "recall",
        "recall_macro",
        "recall_micro",
    }
)
# Metrics that take a parameter after '@': a threshold (error@0.7) or a cut-off (ndcg@5).
PARAMETRISED_METRICS: frozenset[str] = frozenset({"error", "ndcg", "map"})
DATA_NAMES: tuple[str, ...] = ("train", "validation")

_DIRECTIONS: dict[str, Direction] = {
    **{m: "Maximize" for m in MAXIMIZE_METRICS},
    **{m: "Minimize" for m in MINIMIZE_METRICS},
}


def base_metric(metric: str) -> str:
    """``validation:ndcg@5`` -> ``ndcg``: the name without data prefix and parameter."""
    name = metric.split(":", 1)[1] if ":" in metric else metric
    return name.split("@", 1)[0].strip()


def is_known_metric(metric: str) -> bool:
    """Whether ``metric`` (without data prefix) can go into ``eval_metric``."""
    name, _, parameter = metric.partition("@")
    if not parameter:
        return name in _DIRECTIONS
    if name not in PARAMETRISED_METRICS:
        return False
    try:
        float(parameter.rstrip("-"))  # ndcg@5- means "no positive pairs count as 0"
    except ValueError:
        return False
    return True


def objective_direction(metric: str) -> Direction:
    """Whether a tuning job should maximise or minimise ``metric``.

    Accepts ``auc``, ``validation:auc`` or ``train:ndcg@5``.

    >>> objective_direction("validation:auc")
    'Maximize'
    """
    direction = _DIRECTIONS.get(base_metric(metric))
    if direction is None:
        raise ValueError(f"{metric!r} is not a metric of the built-in XGBoost algorithm")
    return direction


# The value is captured as a number, not as ``\S+``: after TAB became ``#011`` a line has no
# whitespace left, so ``\S+`` would run on into the next metric for every metric but the last
# ("0.41#011validation-rmse:0.52"), and train:* metrics would never parse.
VALUE_PATTERN = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def metric_definition(data: str, metric: str) -> dict[str, str]:
    r"""One ``{"Name", "Regex"}`` for ``<data>:<metric>``, matched after TAB became ``#011``.

    >>> print(metric_definition("validation", "auc")["Regex"])
    .*\[[0-9]+\].*#011validation-auc:([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)
    """
    return {
        "Name": f"{data}:{metric}",
        "Regex": rf".*\[[0-9]+\].*#011{data}-{_regex_literal(metric)}:{VALUE_PATTERN}",
    }


def _regex_literal(metric: str) -> str:
    # Standard names are plain [a-z_-]; keep them verbatim so the regexes equal SageMaker's.
    return metric if re.fullmatch(r"[a-z_-]+", metric) else re.escape(metric)


METRIC_DEFINITIONS: list[dict[str, str]] = [
    metric_definition(data, metric)
    for metric in sorted(_DIRECTIONS)
    for data in DATA_NAMES
]


def metric_definitions_for(hyperparameters: Mapping[str, str]) -> list[dict[str, str]]:
    """The MetricDefinitions to attach to a built-in XGBoost job with these hyperparameters.

    Every standard metric (:data:`METRIC_DEFINITIONS`), plus parametrised ones the job asks for
    in ``eval_metric`` or ``_tuning_objective_metric`` (``ndcg@5``, ``error@0.7``) so that
    those can be tuning objectives too.

    >>> names = [d["Name"] for d in metric_definitions_for({"eval_metric": "ndcg@5"})]
    >>> "validation:ndcg@5" in names and "validation:auc" in names
    True
    """
    definitions = list(METRIC_DEFINITIONS)
    known = {d["Name"] for d in definitions}
    for metric in _requested_metrics(hyperparameters):
        for data in DATA_NAMES:
            definition = metric_definition(data, metric)
            if definition["Name"] not in known:
                known.add(definition["Name"])
                definitions.append(definition)
    return definitions


def _requested_metrics(hyperparameters: Mapping[str, str]) -> list[str]:
    requested = [m.strip() for m in hyperparameters.get("eval_metric", "").split(",") if m.strip()]
    objective = hyperparameters.get("_tuning_objective_metric", "").strip()
    if objective:
        requested.append(objective.split(":", 1)[-1])
    return [m for m in requested if is_known_metric(m)]
