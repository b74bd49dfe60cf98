"""Validation of the built-in XGBoost algorithm's hyperparameters (all strings on the wire).

:data:`HYPERPARAMETERS` is the whole table: name -> parser. A parser turns the string into a
typed value or raises :class:`ClientError` with the message the job's FailureReason shows, e.g.
``Hyperparameter eta: 1.5 is not in [0, 1]``. Rules that involve several hyperparameters are in
:data:`RULES`. Names missing from the table are rejected, except ``sagemaker_*`` keys, which
belong to the platform.

>>> config = validate({"num_round": "10", "eta": "0.3", "eval_metric": "auc,logloss"})
>>> config.num_round, config.params["eta"], config.eval_metrics
(10, 0.3, ('auc', 'logloss'))
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from .errors import ClientError
from .metrics import DATA_NAMES, is_known_metric


class Parser(Protocol):
    """Turns one hyperparameter string into a value, or raises :class:`ClientError`."""

    def __call__(self, name: str, raw: str) -> Any: ...


@dataclasses.dataclass(frozen=True)
class Integer:
    """A whole number in ``[low, high]`` (either bound optional); ``"5.0"`` counts as 5."""

    low: int | None = None
    high: int | None = None

    def __call__(self, name: str, raw: str) -> int:
        try:
            number = float(raw)
        except ValueError:
            number = math.nan
        if not number.is_integer():
            raise ClientError(f"Hyperparameter {name}: {raw} is not an integer")
        value = int(number)
        if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
            raise ClientError(f"Hyperparameter {name}: {raw} is not in {_interval(self.low, self.high)}")
        return value


@dataclasses.dataclass(frozen=True)
class Continuous:
    """A real number between optional bounds, each closed unless marked open."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def __call__(self, name: str, raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ClientError(f"Hyperparameter {name}: {raw} is not a number") from None
        if math.isnan(value) or not self._contains(value):
            interval = _interval(self.low, self.high, self.low_open, self.high_open)
            raise ClientError(f"Hyperparameter {name}: {raw} is not in {interval}")
        return value

    def _contains(self, value: float) -> bool:
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return self.high is None or not (value > self.high or (self.high_open and value == self.high))


@dataclasses.dataclass(frozen=True)
class Categorical:
    """One of a fixed set of strings."""

    choices: tuple[str, ...]

    def __call__(self, name: str, raw: str) -> str:
        if raw not in self.choices:
            raise ClientError(f"Hyperparameter {name}: {raw} is not one of {', '.join(self.choices)}")
        return raw


@dataclasses.dataclass(frozen=True)
class Boolean:
    """``true`` or ``false`` in any case (the generic SDK Estimator sends ``str(True)``)."""

    def __call__(self, name: str, raw: str) -> bool:
        if raw.strip().lower() not in ("true", "false"):
            raise ClientError(f"Hyperparameter {name}: {raw} is not one of true, false")
        return raw.strip().lower() == "true"


@dataclasses.dataclass(frozen=True)
class CommaList:
    """A comma-separated list whose items each pass ``accepts``."""

    accepts: Callable[[str], bool]
    what: str

    def __call__(self, name: str, raw: str) -> tuple[str, ...]:
        items = tuple(item.strip() for item in raw.split(",") if item.strip())
        if not items:
            raise ClientError(f"Hyperparameter {name}: {raw!r} is empty")
        for item in items:
            if not self.accepts(item):
                raise ClientError(f"Hyperparameter {name}: {item} is not {self.what}")
        return items


@dataclasses.dataclass(frozen=True)
class IntegerTuple:
    """``(1,0,-1)``: one entry per feature, each in ``allowed``; XGBoost takes the string."""

    allowed: frozenset[int]

    def __call__(self, name: str, raw: str) -> str:
        match = re.fullmatch(r"\s*\(([^()]*)\)\s*", raw)
        try:
            values = [int(v) for v in match.group(1).split(",") if v.strip()] if match else None
        except ValueError:
            values = None
        if not values or any(v not in self.allowed for v in values):
            allowed = ", ".join(str(v) for v in sorted(self.allowed))
            raise ClientError(f"Hyperparameter {name}: {raw} is not a tuple like (1,0,-1) of {allowed}")
        return "(" + ",".join(str(v) for v in values) + ")"


@dataclasses.dataclass(frozen=True)
class FeatureGroups:
    """``[[0,1],[2,3,4]]``: lists of feature indices; XGBoost takes the string."""

    def __call__(self, name: str, raw: str) -> str:
        try:
            groups = json.loads(raw)
        except json.JSONDecodeError:
            groups = None
        valid = isinstance(groups, list) and all(
            isinstance(g, list) and g and all(isinstance(i, int) and i >= 0 for i in g) for g in groups
        )
        if not valid or not groups:
            raise ClientError(f"Hyperparameter {name}: {raw} is not a list of feature index lists like [[0,1],[2]]")
        return json.dumps(groups, separators=(",", ":"))


@dataclasses.dataclass(frozen=True)
class TuningMetric:
    """``validation:auc``: the objective a tuning job injects; the metric joins eval_metric."""

    def __call__(self, name: str, raw: str) -> str:
        data, _, metric = raw.strip().rpartition(":")
        if data not in DATA_NAMES or not is_known_metric(metric):
            raise ClientError(f"Hyperparameter {name}: {raw} is not a metric like validation:auc")
        return metric


def _interval(low: float | None, high: float | None, low_open: bool = False, high_open: bool = False) -> str:
    left = "(-inf" if low is None else ("(" if low_open else "[") + f"{low:g}"
    right = "inf)" if high is None else f"{high:g}" + (")" if high_open else "]")
    return f"{left}, {right}"


OBJECTIVES = (
    "binary:logistic",
    "binary:logitraw",
    "binary:hinge",
    "reg:squarederror",
    "reg:linear",
    "reg:logistic",
    "reg:gamma",
    "reg:tweedie",
    "reg:pseudohubererror",
    "reg:squaredlogerror",
    "reg:absoluteerror",
    "count:poisson",
    "multi:softmax",
    "multi:softprob",
    "rank:pairwise",
    "rank:ndcg",
    "rank:map",
    "survival:cox",
    "survival:aft",
)
MULTICLASS_OBJECTIVES = ("multi:softmax", "multi:softprob")
UPDATERS = (
    "grow_colmaker",
    "grow_histmaker",
    "grow_quantile_histmaker",
    "grow_gpu_hist",
    "grow_gpu_approx",
    "sync",
    "refresh",
    "prune",
    "shotgun",
    "coord_descent",
)
_UNIT_OPEN_LOW = Continuous(0, 1, low_open=True)
_NON_NEGATIVE = Continuous(0)
_FLAG = Integer(0, 1)

HYPERPARAMETERS: dict[str, Parser] = {
    # Read by the algorithm itself.
    "num_round": Integer(1),
    "early_stopping_rounds": Integer(1),
    "csv_weights": _FLAG,
    "save_model_on_termination": Boolean(),
    "_tuning_objective_metric": TuningMetric(),
    "_kfold": Integer(2),
    "_num_cv_round": Integer(1),
    # Passed to XGBoost.
    "objective": Categorical(OBJECTIVES),
    "num_class": Integer(2),
    "eval_metric": CommaList(is_known_metric, "a metric of the built-in XGBoost algorithm"),
    "booster": Categorical(("gbtree", "gblinear", "dart")),
    "verbosity": Integer(0, 3),
    "nthread": Integer(1),
    "seed": Integer(-(2**31), 2**31 - 1),
    "eta": Continuous(0, 1),
    "gamma": _NON_NEGATIVE,
    "max_depth": Integer(0),
    "min_child_weight": _NON_NEGATIVE,
    "max_delta_step": _NON_NEGATIVE,
    "subsample": _UNIT_OPEN_LOW,
    "sampling_method": Categorical(("uniform", "gradient_based")),
    "colsample_bytree": _UNIT_OPEN_LOW,
    "colsample_bylevel": _UNIT_OPEN_LOW,
    "colsample_bynode": _UNIT_OPEN_LOW,
    "lambda": _NON_NEGATIVE,
    "alpha": _NON_NEGATIVE,
    "tree_method": Categorical(("auto", "exact", "approx", "hist", "gpu_hist")),
    "scale_pos_weight": Continuous(0, low_open=True),
    "updater": CommaList(lambda u: u in UPDATERS, f"one of {', '.join(UPDATERS)}"),
    "refresh_leaf": _FLAG,
    "process_type": Categorical(("default", "update")),
    "grow_policy": Categorical(("depthwise", "lossguide")),
    "max_leaves": Integer(0),
    "max_bin": Integer(2),
    "max_cat_to_onehot": Integer(1),
    "multi_strategy": Categorical(("one_output_per_tree", "multi_output_tree")),
    "num_parallel_tree": Integer(1),
    "monotone_constraints": IntegerTuple(frozenset({-1, 0, 1})),
    "interaction_constraints": FeatureGroups(),
    "sample_type": Categorical(("uniform", "weighted")),
    "normalize_type": Categorical(("tree", "forest")),
    "rate_drop": Continuous(0, 1),
    "one_drop": _FLAG,
    "skip_drop": Continuous(0, 1),
    "tweedie_variance_power": Continuous(1, 2, low_open=True, high_open=True),
    "huber_slope": Continuous(0, low_open=True),
    "base_score": Continuous(),
    "aft_loss_distribution": Categorical(("normal", "logistic", "extreme")),
    "aft_loss_distribution_scale": Continuous(0, low_open=True),
    # Accepted because older images took them; XGBoost 3 no longer has them, so they are dropped.
    "predictor": Categorical(("auto", "cpu_predictor", "gpu_predictor")),
    "dsplit": Categorical(("row", "col")),
    "lambda_bias": Continuous(0, 1),
    "sketch_eps": Continuous(0, 1, low_open=True, high_open=True),
    "single_precision_histogram": Boolean(),
    "deterministic_histogram": Boolean(),
}
ALGORITHM_ONLY = frozenset(
    {"num_round", "early_stopping_rounds", "csv_weights", "save_model_on_termination",
     "_tuning_objective_metric", "_kfold", "_num_cv_round", "eval_metric"}
)
OBSOLETE = frozenset(
    {"predictor", "dsplit", "lambda_bias", "sketch_eps", "single_precision_histogram", "deterministic_histogram"}
)
REQUIRED = ("num_round",)


def _multiclass_needs_num_class(values: Mapping[str, Any]) -> None:
    objective = values.get("objective")
    if objective in MULTICLASS_OBJECTIVES and "num_class" not in values:
        raise ClientError(f"Hyperparameter num_class is required for objective {objective}")
    if "num_class" in values and objective not in MULTICLASS_OBJECTIVES:
        raise ClientError("Hyperparameter num_class can only be set for objective multi:softmax or multi:softprob")


def _survival_metrics_need_aft(values: Mapping[str, Any]) -> None:
    for metric in ("aft-nloglik", "interval-regression-accuracy"):
        if metric in values.get("eval_metric", ()) and values.get("objective") != "survival:aft":
            raise ClientError(f"Metric {metric} can only be used with objective survival:aft")


def _kfold_unsupported(values: Mapping[str, Any]) -> None:
    if "_kfold" in values:
        raise ClientError("Hyperparameter _kfold (cross-validation ensembles) is not supported by modelyard yet")


RULES: tuple[Callable[[Mapping[str, Any]], None], ...] = (
    _multiclass_needs_num_class,
    _survival_metrics_need_aft,
    _kfold_unsupported,
)


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """The validated hyperparameters, split into what the algorithm and XGBoost each use."""

    num_round: int
    params: dict[str, Any]
    eval_metrics: tuple[str, ...] = ()
    early_stopping_rounds: int | None = None
    csv_weights: bool = False
    save_model_on_termination: bool = False
    ignored: tuple[str, ...] = ()


def validate(raw: Mapping[str, str]) -> TrainingConfig:
    """Check every hyperparameter of ``hyperparameters.json`` and build the training config."""
    supplied = {name: str(value) for name, value in raw.items() if not name.startswith("sagemaker_")}
    unknown = sorted(set(supplied) - set(HYPERPARAMETERS))
    if unknown:
        raise ClientError(f"Hyperparameter {unknown[0]} is not a hyperparameter of the built-in XGBoost algorithm")
    for name in REQUIRED:
        if name not in supplied:
            raise ClientError(f"Hyperparameter {name} is required")
    values = {name: HYPERPARAMETERS[name](name, text) for name, text in supplied.items()}
    for rule in RULES:
        rule(values)
    return TrainingConfig(
        num_round=values["num_round"],
        params=_xgboost_params(values),
        eval_metrics=_eval_metrics(values),
        early_stopping_rounds=values.get("early_stopping_rounds"),
        csv_weights=bool(values.get("csv_weights", 0)),
        save_model_on_termination=values.get("save_model_on_termination", False),
        ignored=tuple(sorted(OBSOLETE & set(values))),
    )


def _eval_metrics(values: Mapping[str, Any]) -> tuple[str, ...]:
    metrics = list(values.get("eval_metric", ()))
    tuning = values.get("_tuning_objective_metric")
    # A tuning job must see its objective in the logs, whatever eval_metric says.
    if tuning and tuning not in metrics:
        metrics.append(tuning)
    return tuple(dict.fromkeys(metrics))


def _xgboost_params(values: Mapping[str, Any]) -> dict[str, Any]:
    params = {k: v for k, v in values.items() if k not in ALGORITHM_ONLY and k not in OBSOLETE}
    if "updater" in params:
        params["updater"] = ",".join(params["updater"])
    # Names XGBoost 3 renamed: keep the customer's intent without deprecation noise.
    if params.get("objective") == "reg:linear":
        params["objective"] = "reg:squarederror"
    if params.get("tree_method") == "gpu_hist":
        params["tree_method"] = "hist"
        params["device"] = "cuda"
    return params
