"""The training-job operations of the SageMaker API.

Each handler validates, writes desired state and returns at once; the controller does the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelyard.core.errors import ResourceInUse, ValidationError
from modelyard.jobs import status as js
from modelyard.jobs.service import JobService
from modelyard.store.base import Record
from modelyard.training import spec as training_spec
from modelyard.training.controller import KIND, TrainingJobController, final_metrics

Handler = Callable[[dict[str, Any]], dict[str, Any]]

_DEFAULT_STOPPING = {"MaxRuntimeInSeconds": 86400}


class TrainingService(JobService):
    """CreateTrainingJob, DescribeTrainingJob, ListTrainingJobs, StopTrainingJob, DeleteTrainingJob."""

    arn_type = "training-job"
    noun = "training job"
    controller: TrainingJobController

    def operations(self) -> dict[str, Handler]:
        return {
            "CreateTrainingJob": self.create,
            "DescribeTrainingJob": self.describe,
            "ListTrainingJobs": self.list,
            "StopTrainingJob": self.stop,
            "DeleteTrainingJob": self.delete,
        }

    # --- operations ----------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.submit_request(params)
        return {"TrainingJobArn": record.arn}

    def submit_request(self, params: dict[str, Any], **internal: Any) -> Record:
        """Check and store a CreateTrainingJob request: the one way training jobs are made.

        ``internal`` adds fields no client may send but DescribeTrainingJob shows, such as
        ``TuningJobArn`` on a tuning job's trials. ResourceInUse if the name is taken.
        """
        training_spec.validate_create(params)
        name = params["TrainingJobName"]
        spec = {k: v for k, v in params.items() if k != "Tags"}
        spec.setdefault("StoppingCondition", dict(_DEFAULT_STOPPING))
        spec["StoppingCondition"].setdefault("MaxRuntimeInSeconds", 86400)
        spec.update(internal)
        record = self.submit(name, spec, params.get("Tags"))
        self.controller.track(record)  # its trial component exists before the call returns
        return record

    def describe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.description(self.get(params["TrainingJobName"]))

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        records, token = self.page(params)
        summaries = [self._summary(r) for r in records]
        return {"TrainingJobSummaries": summaries, "NextToken": token}

    def stop(self, params: dict[str, Any]) -> dict[str, Any]:
        self.stop_job(params["TrainingJobName"])
        return {}

    def interrupt(self, name_or_arn: str) -> None:
        """Reclaim a managed-spot job's capacity as AWS would: it restarts from its checkpoints."""
        record = self.get(name_or_arn)
        if not record.spec.get("EnableManagedSpotTraining"):
            raise ValidationError(
                f"Training job {record.name} does not use managed spot training; only spot jobs "
                "can be interrupted."
            )
        if record.status != "InProgress" or record.state.get("_run", {}).get("phase") != "running":
            raise ValidationError(f"Training job {record.name} is not running; nothing to interrupt.")
        self.controller.request_interrupt(record.name)
        self.wake()

    def delete(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.get(params["TrainingJobName"])
        if record.status not in js.TERMINAL:
            raise ResourceInUse(
                f"Training job {record.name} is {record.status}; stop it before deleting it."
            )
        self.store.delete(KIND, record.name)
        self.controller.delete_files(record.name)
        return {}

    # --- views ---------------------------------------------------------------------------
    def description(self, record: Record) -> dict[str, Any]:
        """DescribeTrainingJob's answer: the request echoed, plus what has happened since."""
        state = record.state
        run = state.get("_run", {})
        out = {
            # SageMaker always answers these flags; SDKs read them when attaching to a job
            "EnableNetworkIsolation": False,
            "EnableInterContainerTrafficEncryption": False,
            "EnableManagedSpotTraining": False,
            **record.spec,
        }
        out.update(
            TrainingJobArn=record.arn,
            TrainingJobStatus=state["Status"],
            SecondaryStatus=state["SecondaryStatus"],
            SecondaryStatusTransitions=state["SecondaryStatusTransitions"],
            CreationTime=record.created,
            LastModifiedTime=state.get("LastModifiedTime", record.modified),
            ModelArtifacts={"S3ModelArtifacts": training_spec.model_artifacts_uri(record.spec, record.name)},
            FailureReason=state.get("FailureReason"),
            TrainingStartTime=run.get("started"),
            TrainingEndTime=run.get("ended"),
            TrainingTimeInSeconds=state.get("TrainingTimeInSeconds"),
            BillableTimeInSeconds=state.get("BillableTimeInSeconds"),
        )
        out["FinalMetricDataList"] = state.get("FinalMetricDataList") if js.is_terminal(state) \
            else final_metrics(self.store.get_metric_points(record.arn))
        return out

    def _summary(self, record: Record) -> dict[str, Any]:
        run = record.state.get("_run", {})
        return {
            "TrainingJobName": record.name,
            "TrainingJobArn": record.arn,
            "CreationTime": record.created,
            "TrainingEndTime": run.get("ended"),
            "LastModifiedTime": record.state.get("LastModifiedTime", record.modified),
            "TrainingJobStatus": record.status,
            "SecondaryStatus": record.state.get("SecondaryStatus"),
        }

    def missing_message(self, name: str) -> str:
        return "Requested resource not found."
