"""The boosting run: resume from a checkpoint, evaluate, stop early, checkpoint, save.

``xgboost.train`` numbers callback epochs from 0 on every call, also when it continues a loaded
model; its own callbacks add the rounds already in the model where they need absolute numbers.
The log lines and checkpoints here do the same, so a job resumed after round 5 prints ``[5]``
and writes ``xgboost-checkpoint.5`` next, exactly as if it had never stopped.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import xgboost
from xgboost.callback import EarlyStopping, EvaluationMonitor, TrainingCallback

from . import checkpoints
from .custom_metrics import make_custom_metric
from .errors import AlgorithmError, ClientError, xgboost_message
from .hyperparameters import TrainingConfig
from .lifecycle import Terminated, print_line, termination_requested
from .metrics import CONTAINER_METRICS, objective_direction

MODEL_FILE = "xgboost-model"

# Fragments of XGBoost errors caused by the customer's data or settings, not by XGBoost.
_CLIENT_FAULTS = (
    "label must be",
    "label for",
    "Label",
    "num_class",
    "base_score",
    "Weights must be",
    "Feature shape mismatch",
    "monotone",
    "interaction",
    "qid",
    "group",
)


@dataclasses.dataclass(frozen=True)
class TrainingRun:
    """Everything one call of :func:`train` needs besides the data."""

    config: TrainingConfig
    checkpoint_dir: Path
    model_dir: Path
    is_master: bool = True


def booster_params(config: TrainingConfig) -> dict[str, Any]:
    """XGBoost params: the validated ones plus the metrics XGBoost computes natively."""
    params = dict(config.params)
    native = [m for m in config.eval_metrics if m not in CONTAINER_METRICS]
    if native:
        params["eval_metric"] = native
    return params


def train(run: TrainingRun, dtrain: xgboost.DMatrix, dvalid: xgboost.DMatrix | None) -> xgboost.Booster:
    """Train ``num_round`` rounds in total (counting checkpointed ones) and save the model."""
    config = run.config
    evals = [(dtrain, "train")] + ([(dvalid, "validation")] if dvalid is not None else [])
    resumed = checkpoints.load_latest(run.checkpoint_dir)
    done = resumed[1] if resumed else 0
    if resumed:
        print_line(f"Resuming from checkpoint in {run.checkpoint_dir}: {done} of {config.num_round} rounds done")
    params = booster_params(config)
    tracker = _LatestModel()
    try:
        booster = xgboost.train(
            params,
            dtrain,
            num_boost_round=max(0, config.num_round - done),
            evals=evals,
            xgb_model=resumed[0] if resumed else None,
            callbacks=[tracker, *_callbacks(run, dvalid is not None)],
            custom_metric=make_custom_metric(config.eval_metrics, params.get("objective", "reg:squarederror")),
            verbose_eval=False,
        )
    except Terminated:
        if config.save_model_on_termination and run.is_master and tracker.model is not None:
            save_model(tracker.model, run.model_dir)
            print_line(f"SIGTERM: saved the model after {tracker.model.num_boosted_rounds()} rounds")
        raise
    except xgboost.core.XGBoostError as e:
        message = xgboost_message(e)
        fault = ClientError if any(f in message for f in _CLIENT_FAULTS) else AlgorithmError
        raise fault(f"XGBoost training failed: {message}") from e
    if run.is_master:
        save_model(booster, run.model_dir)
    return booster


class _LatestModel(TrainingCallback):
    """Holds the booster being trained (so the SIGTERM path can save it) and stops on SIGTERM."""

    def __init__(self) -> None:
        super().__init__()
        self.model: xgboost.Booster | None = None

    def before_training(self, model: xgboost.Booster) -> xgboost.Booster:
        self.model = model
        return model

    def after_iteration(self, model: xgboost.Booster, epoch: int, evals_log: TrainingCallback.EvalsLog) -> bool:
        if termination_requested.is_set():
            raise Terminated()
        return False


class ContinuedEvaluationMonitor(EvaluationMonitor):
    """XGBoost's own eval-line printer, numbering rounds from the first round of the model."""

    def before_training(self, model: xgboost.Booster) -> xgboost.Booster:
        self._first_round = model.num_boosted_rounds()
        return super().before_training(model)

    def after_iteration(self, model: xgboost.Booster, epoch: int, evals_log: TrainingCallback.EvalsLog) -> bool:
        return super().after_iteration(model, epoch + self._first_round, evals_log)


def _callbacks(run: TrainingRun, has_validation: bool) -> list[TrainingCallback]:
    config = run.config
    callbacks: list[TrainingCallback] = [
        ContinuedEvaluationMonitor(rank=0, period=1, logger=print_line),
        checkpoints.SaveCheckpoint(run.checkpoint_dir),
    ]
    if config.early_stopping_rounds:
        if not has_validation:
            raise ClientError("Hyperparameter early_stopping_rounds needs a validation channel")
        metric = config.eval_metrics[-1] if config.eval_metrics else None
        callbacks.append(
            EarlyStopping(
                rounds=config.early_stopping_rounds,
                metric_name=metric,
                data_name="validation",
                # Explicit, because XGBoost's guess does not know the container's own metrics.
                maximize=objective_direction(metric) == "Maximize" if metric else None,
            )
        )
    return callbacks


def save_model(booster: xgboost.Booster, model_dir: Path) -> Path:
    """Write ``<model_dir>/xgboost-model`` (UBJSON, read back by ``Booster.load_model``)."""
    path = model_dir / MODEL_FILE
    checkpoints.write_model(booster, path)
    return path
