"""The hyperparameter-tuning operations of the SageMaker API.

Each handler validates, writes desired state and returns at once; the controller plans and runs
the trials. Describe and the list of a tuning job's training jobs are derived from the trial
entries in the record (see :mod:`modelyard.tuning.trials`) plus, for trials still running, their
training job records.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from typing import Any

from modelyard.api import pagination
from modelyard.api.listing import list_page
from modelyard.core.arns import make_arn, name_from_arn
from modelyard.core.errors import ResourceInUse, ResourceNotFound, ValidationError
from modelyard.core.settings import Settings
from modelyard.jobs import status as js
from modelyard.store.base import DuplicateRecord, MetadataStore, Record, RecordNotFound
from modelyard.store.mutate import mutate
from modelyard.training.controller import KIND as TRAINING_KIND
from modelyard.tuning import trials as tr
from modelyard.tuning.controller import ACTIVE
from modelyard.tuning.spec import ARN_TYPE, KIND, Objective, TuningPlan, plan_of, validate_create

Handler = Callable[[dict[str, Any]], dict[str, Any]]

_NOUN = "Hyperparameter tuning job"
_MAX_SEED = 2**31 - 1


class TuningService:
    """CreateHyperParameterTuningJob and the other tuning-job operations."""

    def __init__(self, settings: Settings, store: MetadataStore, wake: Callable[[], None]) -> None:
        self.settings = settings
        self.store = store
        self.wake = wake

    def operations(self) -> dict[str, Handler]:
        return {
            "CreateHyperParameterTuningJob": self.create,
            "DescribeHyperParameterTuningJob": self.describe,
            "ListHyperParameterTuningJobs": self.list,
            "StopHyperParameterTuningJob": self.stop,
            "DeleteHyperParameterTuningJob": self.delete,
            "ListTrainingJobsForHyperParameterTuningJob": self.list_training_jobs,
        }

    def arn(self, name: str) -> str:
        return make_arn(self.settings.region, self.settings.account_id, ARN_TYPE, name)

    # --- operations ----------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        spec = validate_create(params)
        plan = plan_of(spec)
        warm = self._warm_start(spec.get("WarmStartConfig"), plan)
        name = params["HyperParameterTuningJobName"]
        seed = plan.random_seed if plan.random_seed is not None else random.randint(0, _MAX_SEED)
        now = time.time()
        record = Record(
            kind=KIND, name=name, arn=self.arn(name), status="InProgress", created=now,
            modified=now, version=1, spec=spec,
            state={"Status": "InProgress", "LastModifiedTime": now, "_seed": seed, "_trials": [],
                   "_warm": warm},
        )
        try:
            self.store.create(record)
        except DuplicateRecord as e:
            raise ResourceInUse(
                f"Hyperparameter tuning job {name} already exists ({record.arn})."
            ) from e
        if params.get("Tags"):
            self.store.set_tags(record.arn, {t["Key"]: t["Value"] for t in params["Tags"]})
        self.wake()
        return {"HyperParameterTuningJobArn": record.arn}

    def describe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.description(self.get(params["HyperParameterTuningJobName"]))

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        records, token = list_page(self.store, KIND, params, default_sort="Name")
        return {"HyperParameterTuningJobSummaries": [self._summary(r) for r in records], "NextToken": token}

    def stop(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.get(params["HyperParameterTuningJobName"])

        def stopping(state: dict[str, Any]) -> dict[str, Any] | None:
            if state["Status"] != "InProgress":
                return None
            return {**state, "Status": "Stopping", "LastModifiedTime": time.time()}

        if mutate(self.store, KIND, record.name, stopping).status != "Stopping":
            raise ValidationError(
                "The request was rejected because the hyperparameter tuning job is in status "
                f"{record.status}."
            )
        self.wake()
        return {}

    def delete(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.get(params["HyperParameterTuningJobName"])
        if record.status in ACTIVE:
            raise ResourceInUse(
                f"Hyperparameter tuning job {record.name} is {record.status}; stop it before "
                "deleting it."
            )
        # as in SageMaker, the training jobs it launched stay
        self.store.delete(KIND, record.name)
        return {}

    def list_training_jobs(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.get(params["HyperParameterTuningJobName"])
        plan = plan_of(record.spec)
        rows = self._trial_summaries(record, plan)
        if params.get("StatusEquals"):
            rows = [r for r in rows if r["TrainingJobStatus"] == params["StatusEquals"]]
        rows = _sorted(rows, params.get("SortBy", "Name"), params.get("SortOrder", "Ascending"))
        offset, limit = pagination.page_window(params)
        out: dict[str, Any] = {"TrainingJobSummaries": rows[offset : offset + limit]}
        if offset + limit < len(rows):
            out["NextToken"] = pagination.next_token(params, offset + limit)
        return out

    # --- views ---------------------------------------------------------------------------
    def get(self, name_or_arn: str) -> Record:
        name = name_from_arn(name_or_arn)
        try:
            return self.store.get(KIND, name)
        except RecordNotFound as e:
            raise ResourceNotFound(_NOUN, name) from e

    def description(self, record: Record) -> dict[str, Any]:
        """DescribeHyperParameterTuningJob's answer."""
        plan = plan_of(record.spec)
        state, spec = record.state, record.spec
        entries = state["_trials"]
        jobs, objectives = tr.counters(entries)
        progress = tr.progress(entries, plan.objective, plan.completion)
        end = state.get("EndTime")
        config = {"TrainingJobEarlyStoppingType": "Off", **spec["HyperParameterTuningJobConfig"]}
        out: dict[str, Any] = {
            "HyperParameterTuningJobName": record.name,
            "HyperParameterTuningJobArn": record.arn,
            "HyperParameterTuningJobConfig": config,
            "TrainingJobDefinition": spec.get("TrainingJobDefinition"),
            "TrainingJobDefinitions": spec.get("TrainingJobDefinitions"),
            "WarmStartConfig": spec.get("WarmStartConfig"),
            "HyperParameterTuningJobStatus": state["Status"],
            "CreationTime": record.created,
            "HyperParameterTuningEndTime": end,
            "LastModifiedTime": state.get("LastModifiedTime", record.modified),
            "TrainingJobStatusCounters": jobs,
            "ObjectiveStatusCounters": objectives,
            "FailureReason": state.get("FailureReason"),
            "TuningJobCompletionDetails": {
                "NumberOfTrainingJobsObjectiveNotImproving": progress.not_improving,
                "ConvergenceDetectedTime": (state.get("_ending") or {}).get("converged_at"),
            },
            "ConsumedResources": {"RuntimeInSeconds": int((end or time.time()) - record.created)},
        }
        best = tr.best(entries, plan.objective)
        if best is not None:
            out["BestTrainingJob"] = self._trial_summary(record.name, plan, best)
        warm = state.get("_warm") or []
        if warm:
            overall = tr.best([*entries, *warm], plan.objective)
            if overall is not None:
                out["OverallBestTrainingJob"] = self._trial_summary(record.name, plan, overall)
        return out

    def _summary(self, record: Record) -> dict[str, Any]:
        jobs, objectives = tr.counters(record.state["_trials"])
        config = record.spec["HyperParameterTuningJobConfig"]
        return {
            "HyperParameterTuningJobName": record.name,
            "HyperParameterTuningJobArn": record.arn,
            "HyperParameterTuningJobStatus": record.status,
            "Strategy": config["Strategy"],
            "CreationTime": record.created,
            "HyperParameterTuningEndTime": record.state.get("EndTime"),
            "LastModifiedTime": record.state.get("LastModifiedTime", record.modified),
            "TrainingJobStatusCounters": jobs,
            "ObjectiveStatusCounters": objectives,
            "ResourceLimits": config["ResourceLimits"],
        }

    def _trial_summaries(self, record: Record, plan: TuningPlan) -> list[dict[str, Any]]:
        rows = []
        for entry in record.state["_trials"]:
            if not entry.get("created"):
                continue
            live = None if tr.is_final(entry) else self._live(entry["name"])
            rows.append(self._trial_summary(record.name, plan, entry, live))
        return rows

    def _trial_summary(
        self, tuning_name: str, plan: TuningPlan, entry: tr.Entry, live: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        # a parent's trial (warm start) carries its own objective metric's name
        metric = entry["metric"] if "metric" in entry else plan.definition(entry["params"]).objective.metric
        objective = Objective(plan.objective.type, metric)
        arn = make_arn(self.settings.region, self.settings.account_id, "training-job", entry["name"])
        return tr.summary(entry, objective, entry.get("tuning", tuning_name), arn, live)

    def _live(self, name: str) -> dict[str, Any]:
        """A running trial's status and times, from its training job."""
        try:
            job = self.store.get(TRAINING_KIND, name)
        except RecordNotFound:
            return {}
        run = job.state.get("_run", {})
        status = job.status if job.status in js.TERMINAL or job.status == "Stopping" else "InProgress"
        return {
            "status": status, "creation": job.created, "start": run.get("started"),
            "end": run.get("ended"), "failure": job.state.get("FailureReason"),
        }

    # --- warm start ----------------------------------------------------------------------
    def _warm_start(self, config: Mapping[str, Any] | None, plan: TuningPlan) -> list[dict[str, Any]]:
        """The parents' finished trials, copied into the new job's record at creation.

        Parents are terminal, so their trials never change; a copy keeps the new job's study
        whole even if a parent is deleted later.
        """
        if not config:
            return []
        warm: list[dict[str, Any]] = []
        for parent in config["ParentHyperParameterTuningJobs"]:
            name = parent["HyperParameterTuningJobName"]
            try:
                record = self.store.get(KIND, name)
            except RecordNotFound as e:
                raise ValidationError(f"WarmStartConfig: parent tuning job {name} does not exist.") from e
            if record.status in ACTIVE:
                raise ValidationError(
                    f"WarmStartConfig: parent tuning job {name} is {record.status}; parents must "
                    "have ended (Completed, Stopped or Failed)."
                )
            parent_plan = plan_of(record.spec)
            if config["WarmStartType"] == "IdenticalDataAndAlgorithm":
                _check_identical(plan, parent_plan, name)
            for entry in record.state["_trials"]:
                if tr.outcome(entry) in ("complete", "pruned"):
                    metric = parent_plan.definition(entry["params"]).objective.metric
                    warm.append({
                        k: v for k, v in entry.items() if k not in ("params", "attrs")
                    } | {"tuning": name, "metric": metric})
        return warm


def _check_identical(plan: TuningPlan, parent: TuningPlan, name: str) -> None:
    """IdenticalDataAndAlgorithm: same image, same input data, same objective."""
    mine, theirs = plan.definitions[0], parent.definitions[0]
    if mine.objective.metric != theirs.objective.metric:
        raise ValidationError(
            f"WarmStartConfig: parent tuning job {name} optimises {theirs.objective.metric}, not "
            f"{mine.objective.metric}; IdenticalDataAndAlgorithm needs the same objective metric."
        )
    for field in ("AlgorithmSpecification", "InputDataConfig"):
        a, b = _data_and_algorithm(mine.training, field), _data_and_algorithm(theirs.training, field)
        if a != b:
            raise ValidationError(
                f"WarmStartConfig: parent tuning job {name} has a different {field}; use "
                "TransferLearning when the data or the algorithm changed."
            )


def _data_and_algorithm(training: Mapping[str, Any], field: str) -> Any:
    if field == "AlgorithmSpecification":
        return training["AlgorithmSpecification"].get("TrainingImage")
    return sorted(
        (c["ChannelName"], c["DataSource"].get("S3DataSource", {}).get("S3Uri"))
        for c in training.get("InputDataConfig", [])
    )


def _sorted(rows: list[dict[str, Any]], sort_by: str, order: str) -> list[dict[str, Any]]:
    """Order trial summaries as ListTrainingJobsForHyperParameterTuningJob does."""
    if sort_by == "FinalObjectiveMetricValue":
        # SageMaker leaves out the jobs that reported no objective when sorting by it
        rows = [r for r in rows if "FinalHyperParameterTuningJobObjectiveMetric" in r]

        def key(r: dict[str, Any]) -> Any:
            return r["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
    elif sort_by == "CreationTime":
        def key(r: dict[str, Any]) -> Any:
            return r.get("CreationTime") or 0.0
    elif sort_by == "Status":
        def key(r: dict[str, Any]) -> Any:
            return r["TrainingJobStatus"]
    else:
        def key(r: dict[str, Any]) -> Any:
            return r["TrainingJobName"]
    return sorted(rows, key=lambda r: (key(r), r["TrainingJobName"]), reverse=order == "Descending")
