"""The transform-job operations of the SageMaker API.

Each handler validates, writes desired state and returns at once; the controller does the rest.
The model's container is copied into the job's record at create time (under ``_model``, never
shown), as SageMaker resolves the model when the job is created.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelyard.core.settings import Settings
from modelyard.jobs.service import JobService
from modelyard.serving import spec as serving_spec
from modelyard.serving.service import Catalog
from modelyard.store.base import MetadataStore, Record
from modelyard.transform import spec as transform_spec
from modelyard.transform.controller import TransformJobController

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class TransformService(JobService):
    """CreateTransformJob, DescribeTransformJob, ListTransformJobs, StopTransformJob."""

    arn_type = "transform-job"
    noun = "transform job"

    def __init__(self, settings: Settings, store: MetadataStore, models: Catalog,
                 controller: TransformJobController, wake: Callable[[], None]) -> None:
        super().__init__(settings, store, controller, wake)
        self.models = models

    def operations(self) -> dict[str, Handler]:
        return {
            "CreateTransformJob": self.create,
            "DescribeTransformJob": self.describe,
            "ListTransformJobs": self.list,
            "StopTransformJob": self.stop,
        }

    # --- operations ----------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        transform_spec.validate_create(params)
        name = params["TransformJobName"]
        spec = {k: v for k, v in params.items() if k != "Tags"}
        spec["_model"] = self._model_snapshot(params["ModelName"])
        record = self.submit(name, spec, params.get("Tags"))
        return {"TransformJobArn": record.arn}

    def describe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.description(self.get(params["TransformJobName"]))

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        records, token = self.page(params)
        return {"TransformJobSummaries": [self._summary(r) for r in records], "NextToken": token}

    def stop(self, params: dict[str, Any]) -> dict[str, Any]:
        self.stop_job(params["TransformJobName"])
        return {}

    # --- views ---------------------------------------------------------------------------
    def description(self, record: Record) -> dict[str, Any]:
        """DescribeTransformJob's answer: the request echoed, plus what has happened since."""
        state = record.state
        run = state.get("_run", {})
        out = {k: v for k, v in record.spec.items() if not k.startswith("_")}
        out.update(
            TransformJobArn=record.arn,
            TransformJobStatus=state["Status"],
            FailureReason=state.get("FailureReason"),
            CreationTime=record.created,
            TransformStartTime=run.get("started"),
            TransformEndTime=run.get("ended"),
        )
        return out

    def _summary(self, record: Record) -> dict[str, Any]:
        return {
            "TransformJobName": record.name,
            "TransformJobArn": record.arn,
            "CreationTime": record.created,
            "TransformEndTime": record.state.get("_run", {}).get("ended"),
            "LastModifiedTime": record.state.get("LastModifiedTime", record.modified),
            "TransformJobStatus": record.status,
            "FailureReason": record.state.get("FailureReason"),
        }

    def _model_snapshot(self, model_name: str) -> dict[str, Any]:
        """What the hosts need of the model; ``Could not find model "<arn>".`` when missing."""
        model = dict(self.models.get(model_name).spec)
        container = serving_spec.container_of(model)
        url, compressed = serving_spec.model_data(container)
        return {
            "framework": serving_spec.validate_model(model).framework,
            "model_data": url,
            "compressed": compressed,
            "environment": dict(container.get("Environment", {})),
        }
