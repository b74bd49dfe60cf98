"""``modelyard.HyperparameterTuner``: tune an Estimator, SageMaker-SDK style.

::

    tuner = modelyard.HyperparameterTuner(
        estimator, "validation:auc",
        {"eta": modelyard.ContinuousParameter(0.01, 0.5),
         "max_depth": modelyard.IntegerParameter(2, 8)},
        max_jobs=20, max_parallel_jobs=2,
    )
    tuner.fit({"train": train_df, "validation": valid_df})
    tuner.analytics().dataframe().sort_values("FinalObjectiveValue")
    predictor = tuner.best_estimator().deploy()

Each trial is a training job of the estimator's definition with the tuned hyperparameters set;
the server plans them (see ``modelyard.tuning``).
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.sdk.estimator import Estimator, _channels

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CategoricalParameter", "ContinuousParameter", "HyperparameterTuner", "IntegerParameter",
    "TuningFailed", "TuningJobAnalytics", "WarmStartConfig",
]

#: SageMaker caps tuning job names at 32 characters
MAX_NAME_LENGTH = 32
_TERMINAL = ("Completed", "Failed", "Stopped")
# The training fields of an Estimator's request that a training job definition carries.
_DEFINITION_FIELDS = (
    "AlgorithmSpecification", "RoleArn", "InputDataConfig", "OutputDataConfig", "ResourceConfig",
    "StoppingCondition", "Environment", "EnableManagedSpotTraining", "CheckpointConfig",
)


class TuningFailed(RuntimeError):
    """The tuning job ended Failed; the message carries its FailureReason."""


@dataclasses.dataclass(frozen=True)
class IntegerParameter:
    """Integers from ``min_value`` to ``max_value`` inclusive.

    ``scaling_type`` is ``Auto``, ``Linear`` or ``Logarithmic``.
    """

    min_value: int
    max_value: int
    scaling_type: str = "Auto"

    def as_range(self, name: str) -> dict[str, str]:
        """The ``IntegerParameterRanges`` item for hyperparameter ``name``."""
        return {"Name": name, "MinValue": str(int(self.min_value)),
                "MaxValue": str(int(self.max_value)), "ScalingType": self.scaling_type}


@dataclasses.dataclass(frozen=True)
class ContinuousParameter:
    """Real numbers from ``min_value`` to ``max_value``.

    ``scaling_type`` is ``Auto``, ``Linear``, ``Logarithmic`` or ``ReverseLogarithmic``.
    """

    min_value: float
    max_value: float
    scaling_type: str = "Auto"

    def as_range(self, name: str) -> dict[str, str]:
        """The ``ContinuousParameterRanges`` item for hyperparameter ``name``."""
        return {"Name": name, "MinValue": str(self.min_value), "MaxValue": str(self.max_value),
                "ScalingType": self.scaling_type}


@dataclasses.dataclass(frozen=True, init=False)
class CategoricalParameter:
    """One of a list of values (sent to the job as strings, verbatim)."""

    values: tuple[str, ...]

    def __init__(self, values: Sequence[Any]) -> None:
        items = [values] if isinstance(values, str) else list(values)
        object.__setattr__(self, "values", tuple(_string(v) for v in items))

    def as_range(self, name: str) -> dict[str, Any]:
        """The ``CategoricalParameterRanges`` item for hyperparameter ``name``."""
        return {"Name": name, "Values": list(self.values)}


Parameter = IntegerParameter | ContinuousParameter | CategoricalParameter


@dataclasses.dataclass(frozen=True)
class WarmStartConfig:
    """Start a tuning job from the results of earlier ones.

    ``warm_start_type`` is ``IdenticalDataAndAlgorithm`` or ``TransferLearning``.
    """

    warm_start_type: str
    parents: Sequence[str]

    def as_request(self) -> dict[str, Any]:
        return {
            "WarmStartType": self.warm_start_type,
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": p} for p in self.parents],
        }


class HyperparameterTuner:
    """Runs a hyperparameter tuning job over an Estimator's training job definition.

    ``strategy`` is ``Bayesian``, ``Random``, ``Grid`` or ``Hyperband``; ``early_stopping_type``
    ``Off`` or ``Auto``. ``completion_criteria`` and ``strategy_config`` take the API's
    ``TuningJobCompletionCriteria`` and ``StrategyConfig`` structures as dicts.
    """

    def __init__(
        self,
        estimator: Estimator,
        objective_metric_name: str,
        hyperparameter_ranges: Mapping[str, Parameter],
        metric_definitions: list[dict[str, str]] | None = None,
        strategy: str = "Bayesian",
        objective_type: str = "Maximize",
        max_jobs: int | None = None,
        max_parallel_jobs: int = 1,
        max_runtime_in_seconds: int | None = None,
        early_stopping_type: str = "Off",
        base_tuning_job_name: str | None = None,
        random_seed: int | None = None,
        warm_start_config: WarmStartConfig | Mapping[str, Any] | None = None,
        completion_criteria: Mapping[str, Any] | None = None,
        strategy_config: Mapping[str, Any] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        if not hyperparameter_ranges:
            raise ValueError("Give at least one hyperparameter range to tune.")
        if max_jobs is None and strategy != "Grid":
            max_jobs = 1  # the SageMaker SDK's default
        self.estimator = estimator
        self.session = estimator.session
        self.objective_metric_name = objective_metric_name
        self.hyperparameter_ranges = dict(hyperparameter_ranges)
        self.metric_definitions = metric_definitions
        self.strategy = strategy
        self.objective_type = objective_type
        self.max_jobs = max_jobs
        self.max_parallel_jobs = max_parallel_jobs
        self.max_runtime_in_seconds = max_runtime_in_seconds
        self.early_stopping_type = early_stopping_type
        self.base_tuning_job_name = base_tuning_job_name or estimator.base_job_name
        self.random_seed = random_seed
        self.warm_start_config = warm_start_config
        self.completion_criteria = completion_criteria
        self.strategy_config = strategy_config
        self.tags = dict(tags or {})
        self.latest_tuning_job: str | None = None

    # --- the job -------------------------------------------------------------------------
    def fit(
        self, inputs: dict[str, Any] | str | Any | None = None, job_name: str | None = None,
        wait: bool = True,
    ) -> None:
        """Create the tuning job; with ``wait``, block until it ends."""
        name = job_name or tuning_name_from_base(self.base_tuning_job_name)
        self.session.sagemaker.create_hyper_parameter_tuning_job(**self._request(name, inputs))
        self.latest_tuning_job = name
        if wait:
            self.wait()

    def wait(self, poll: float = 1.0) -> dict[str, Any]:
        """Block until the tuning job ends; raise TuningFailed if it Failed."""
        while True:
            job = self.describe()
            if job["HyperParameterTuningJobStatus"] in _TERMINAL:
                break
            time.sleep(poll)
        if job["HyperParameterTuningJobStatus"] == "Failed":
            raise TuningFailed(f"Tuning job {job['HyperParameterTuningJobName']} failed: "
                               f"{job.get('FailureReason', '')}")
        return job

    def describe(self) -> dict[str, Any]:
        """DescribeHyperParameterTuningJob of the latest tuning job."""
        return dict(self.session.sagemaker.describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=self._require_job()
        ))

    def stop(self) -> None:
        """Stop the tuning job and every training job it is running."""
        self.session.sagemaker.stop_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=self._require_job()
        )

    def best_training_job(self) -> str:
        """The name of the training job with the best objective so far."""
        best = self.describe().get("BestTrainingJob")
        if best is None:
            raise RuntimeError(f"Tuning job {self.latest_tuning_job} has no successful training job yet.")
        return str(best["TrainingJobName"])

    def best_estimator(self) -> Estimator:
        """An Estimator attached to the best training job (``model_data``, ``deploy()`` work)."""
        name = self.best_training_job()
        job = self.session.sagemaker.describe_training_job(TrainingJobName=name)
        best = copy.copy(self.estimator)
        tuned = {k: v for k, v in job["HyperParameters"].items() if k in self.hyperparameter_ranges}
        best.hyperparameters = {**self.estimator.hyperparameters, **tuned}
        best.latest_training_job = name
        best._description = dict(job)
        return best

    def analytics(self) -> TuningJobAnalytics:
        """Every trial of the latest tuning job (``.dataframe()``)."""
        return TuningJobAnalytics(self.session.sagemaker, self._require_job())

    # --- building the request ------------------------------------------------------------
    def _request(self, name: str, inputs: Any) -> dict[str, Any]:
        config: dict[str, Any] = {
            "Strategy": self.strategy,
            "HyperParameterTuningJobObjective": {"Type": self.objective_type,
                                                 "MetricName": self.objective_metric_name},
            "ResourceLimits": {"MaxParallelTrainingJobs": self.max_parallel_jobs},
            "ParameterRanges": self._ranges(),
            "TrainingJobEarlyStoppingType": self.early_stopping_type,
        }
        limits = config["ResourceLimits"]
        if self.max_jobs is not None:
            limits["MaxNumberOfTrainingJobs"] = self.max_jobs
        if self.max_runtime_in_seconds is not None:
            limits["MaxRuntimeInSeconds"] = self.max_runtime_in_seconds
        if self.random_seed is not None:
            config["RandomSeed"] = self.random_seed
        if self.completion_criteria:
            config["TuningJobCompletionCriteria"] = dict(self.completion_criteria)
        if self.strategy_config:
            config["StrategyConfig"] = dict(self.strategy_config)
        request: dict[str, Any] = {
            "HyperParameterTuningJobName": name,
            "HyperParameterTuningJobConfig": config,
            "TrainingJobDefinition": self._definition(name, inputs),
        }
        if self.warm_start_config is not None:
            warm = self.warm_start_config
            request["WarmStartConfig"] = warm.as_request() if isinstance(warm, WarmStartConfig) else dict(warm)
        if self.tags:
            request["Tags"] = [{"Key": k, "Value": v} for k, v in self.tags.items()]
        return request

    def _ranges(self) -> dict[str, list[dict[str, Any]]]:
        ranges: dict[str, list[dict[str, Any]]] = {}
        kinds = {IntegerParameter: "IntegerParameterRanges", ContinuousParameter: "ContinuousParameterRanges",
                 CategoricalParameter: "CategoricalParameterRanges"}
        for name, parameter in self.hyperparameter_ranges.items():
            ranges.setdefault(kinds[type(parameter)], []).append(parameter.as_range(name))
        return ranges

    def _definition(self, name: str, inputs: Any) -> dict[str, Any]:
        """The estimator's training job, less what is tuned, as a training job definition."""
        estimator = self.estimator
        channels = _channels(inputs, estimator._scratch(name), estimator.content_type)
        request = estimator._request(name, channels)
        static = {k: v for k, v in request["HyperParameters"].items() if k not in self.hyperparameter_ranges}
        # as the SageMaker SDK does, so a client can tell which estimator made the job
        static["sagemaker_estimator_class_name"] = json.dumps(type(estimator).__name__)
        static["sagemaker_estimator_module"] = json.dumps(type(estimator).__module__)
        definition = {k: request[k] for k in _DEFINITION_FIELDS if k in request}
        definition["StaticHyperParameters"] = static
        if self.metric_definitions is not None:
            definition["AlgorithmSpecification"] = {
                **definition["AlgorithmSpecification"], "MetricDefinitions": self.metric_definitions,
            }
        return definition

    def _require_job(self) -> str:
        if not self.latest_tuning_job:
            raise RuntimeError("No tuning job yet: call fit() first.")
        return self.latest_tuning_job


class TuningJobAnalytics:
    """The trials of one tuning job, as the SageMaker SDK's HyperparameterTuningJobAnalytics."""

    def __init__(self, sagemaker: Any, tuning_job_name: str) -> None:
        self.sagemaker = sagemaker
        self.name = tuning_job_name

    def training_job_summaries(self) -> list[dict[str, Any]]:
        """Every ListTrainingJobsForHyperParameterTuningJob summary, all pages."""
        pages = self.sagemaker.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
            HyperParameterTuningJobName=self.name, PaginationConfig={"PageSize": 100}
        )
        return [s for page in pages for s in page["TrainingJobSummaries"]]

    def dataframe(self) -> pd.DataFrame:
        """One row per trial: its tuned hyperparameters, objective, status and times."""
        import pandas as pd

        return pd.DataFrame([_row(s) for s in self.training_job_summaries()])


def _row(summary: Mapping[str, Any]) -> dict[str, Any]:
    row: dict[str, Any] = {k: _number(v) for k, v in summary["TunedHyperParameters"].items()}
    start, end = summary.get("TrainingStartTime"), summary.get("TrainingEndTime")
    objective = summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}
    row.update(
        TrainingJobName=summary["TrainingJobName"],
        TrainingJobStatus=summary["TrainingJobStatus"],
        ObjectiveStatus=summary.get("ObjectiveStatus"),
        FinalObjectiveValue=objective.get("Value"),
        TrainingStartTime=start,
        TrainingEndTime=end,
        TrainingElapsedTimeSeconds=(end - start).total_seconds() if start and end else None,
    )
    if summary.get("TrainingJobDefinitionName"):
        row["TrainingJobDefinitionName"] = summary["TrainingJobDefinitionName"]
    return row


def _number(value: str) -> Any:
    """A tuned value as a number where it is one (hyperparameters travel as strings)."""
    for kind in (int, float):
        try:
            return kind(value)
        except ValueError:
            continue
    return value


def _string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def tuning_name_from_base(base: str) -> str:
    """``{base}-{YYMMDD-HHMMSS-mmm}``, cut to fit SageMaker's 32 characters for tuning jobs."""
    now = dt.datetime.now(dt.UTC)
    stamp = now.strftime("%y%m%d-%H%M%S-") + f"{now.microsecond // 1000:03d}"
    return f"{base[: MAX_NAME_LENGTH - len(stamp) - 1].rstrip('-')}-{stamp}"
