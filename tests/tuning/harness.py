"""A tuning controller over a real SQLite store, with training jobs finished by hand.

No job process runs: the harness plays the training controller, ending each trial's training
job with the objective values a test's function gives. That makes whole tuning jobs fast and
deterministic (one trial at a time when MaxParallelTrainingJobs is 1).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from modelyard.api.models import operation
from modelyard.api.validation import validate_input
from modelyard.compute.local import LocalExecutor
from modelyard.compute.resources import Capacity
from modelyard.core.settings import Settings
from modelyard.jobs import status as js
from modelyard.store import open_store
from modelyard.store.base import MetricPoint, Query, Record
from modelyard.store.mutate import mutate
from modelyard.training.controller import TrainingJobController
from modelyard.training.service import TrainingService
from modelyard.tuning.controller import TuningJobController
from modelyard.tuning.service import TuningService

IMAGE = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-scikit-learn:1.2-1-cpu-py3"
METRIC = "score"
#: what a trial reports: its values of the objective, one per epoch (the last one is final)
Objective = Callable[[Mapping[str, str]], list[float]]


def request(name: str = "tune", strategy: str = "Random", ranges: dict[str, Any] | None = None,
            max_jobs: int | None = 6, parallel: int = 1, **config: Any) -> dict[str, Any]:
    """A CreateHyperParameterTuningJob request over a script-mode definition."""
    limits: dict[str, Any] = {"MaxParallelTrainingJobs": parallel}
    if max_jobs is not None:
        limits["MaxNumberOfTrainingJobs"] = max_jobs
    definition = config.pop("definition", {})
    top = {k: config.pop(k) for k in ("WarmStartConfig", "Tags") if k in config}
    return {
        **top,
        "HyperParameterTuningJobName": name,
        "HyperParameterTuningJobConfig": {
            "Strategy": strategy,
            "HyperParameterTuningJobObjective": {"Type": config.pop("objective_type", "Maximize"),
                                                 "MetricName": METRIC},
            "ResourceLimits": limits,
            "ParameterRanges": ranges or {
                "ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0", "MaxValue": "1"}],
            },
            **config,
        },
        "TrainingJobDefinition": {
            "StaticHyperParameters": {"sagemaker_program": '"train.py"',
                                      "sagemaker_submit_directory": '"/code/sourcedir.tar.gz"',
                                      **definition.pop("static", {})},
            "AlgorithmSpecification": {
                "TrainingImage": IMAGE, "TrainingInputMode": "File",
                "MetricDefinitions": [{"Name": METRIC, "Regex": "score=([-0-9.e]+)"}],
            },
            "RoleArn": "arn:aws:iam::000000000000:role/tests",
            "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
            "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1},
            "StoppingCondition": {"MaxRuntimeInSeconds": 60},
            **definition,
        },
    }


class Harness:
    """The tuning service and controller of one store; training jobs end when told."""

    def __init__(self, home: Path) -> None:
        self.settings = Settings.load(env={}, home=home)
        self.store = open_store(self.settings.db_url)
        training_controller = TrainingJobController(
            self.settings, self.store, LocalExecutor(), Capacity(cpus=4, memory_gib=16)
        )
        self.training = TrainingService(self.settings, self.store, training_controller, lambda: None)
        self.restart()

    def restart(self) -> None:
        """A new controller and service on the same store, as after a server restart."""
        self.controller = TuningJobController(self.store, self.training)
        self.controller.prune_read_interval = 0.0  # judge every reported epoch: deterministic
        self.service = TuningService(self.settings, self.store, lambda: None)

    def close(self) -> None:
        self.store.close()

    def create(self, req: dict[str, Any]) -> str:
        """CreateHyperParameterTuningJob, validated against botocore's model as the API does."""
        params = validate_input(operation("sagemaker", "CreateHyperParameterTuningJob"), req)
        return self.service.create(params)["HyperParameterTuningJobArn"]

    def describe(self, name: str = "tune") -> dict[str, Any]:
        return self.service.describe({"HyperParameterTuningJobName": name})

    def trials(self, name: str = "tune") -> list[dict[str, Any]]:
        """ListTrainingJobsForHyperParameterTuningJob, every page, by name."""
        out: list[dict[str, Any]] = []
        params: dict[str, Any] = {"HyperParameterTuningJobName": name, "MaxResults": 100}
        while True:
            page = self.service.list_training_jobs(params)
            out.extend(page["TrainingJobSummaries"])
            if "NextToken" not in page:
                return out
            params["NextToken"] = page["NextToken"]

    def running(self) -> list[Record]:
        """Training jobs still InProgress, oldest first."""
        return self.store.list(Query(kind="TrainingJob", status_in=["InProgress", "Stopping"]))

    def report(self, job: Record, values: list[float], first: int = 0) -> None:
        """The job's log produced these objective values (metric points, as from its log)."""
        now = time.time()
        points = [MetricPoint(METRIC, v, now, first + i) for i, v in enumerate(values)]
        if points:
            self.store.add_metric_points(job.arn, points)

    def finish(self, job: Record, status: str = "Completed") -> None:
        """End a training job as the training controller would."""
        points = self.store.get_metric_points(job.arn, METRIC)

        def end(state: dict[str, Any]) -> dict[str, Any]:
            now = time.time()
            new = js.advance(state, status, now)
            new["_run"] = {"phase": "done", "started": now, "ended": now}
            if points:
                new["FinalMetricDataList"] = [
                    {"MetricName": METRIC, "Value": points[-1].value, "Timestamp": now}
                ]
            return new

        mutate(self.store, "TrainingJob", job.name, end)

    def run(self, objective: Objective, name: str = "tune", limit: int = 500) -> dict[str, Any]:
        """Drive the tuning job to its end: each pass, every running trial reports and ends."""
        for _ in range(limit):
            self.controller.reconcile_all()
            described = self.describe(name)
            if described["HyperParameterTuningJobStatus"] not in ("InProgress", "Stopping"):
                return described
            for job in self.running():
                if job.status == "Stopping":
                    self.finish(job, "Stopped")
                    continue
                self.report(job, objective(job.spec["HyperParameters"]))
                self.finish(job)
        raise AssertionError(f"tuning job {name} did not end")


def tuned_sequence(harness: Harness, name: str = "tune") -> list[dict[str, str]]:
    """The tuned hyperparameters of each trial, in trial order."""
    rows = sorted(harness.trials(name), key=lambda t: t["TrainingJobName"])
    return [t["TunedHyperParameters"] for t in rows]
