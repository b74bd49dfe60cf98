"""The transform-job operations of the SageMaker API.

Each handler validates, writes desired state and returns at once; the controller does the rest.
The model's container is copied into the job's record at create time (under ``_model``, never
shown), as SageMaker resolves the model when the job is created.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from modelyard.api.listing import list_page
from modelyard.core.arns import make_arn, name_from_arn
from modelyard.core.errors import LegacyNotFound, ResourceInUse, ValidationError
from modelyard.core.settings import Settings
from modelyard.jobs import status as js
from modelyard.serving import spec as serving_spec
from modelyard.serving.service import Catalog
from modelyard.store.base import DuplicateRecord, MetadataStore, Record, RecordNotFound
from modelyard.transform import spec as transform_spec
from modelyard.transform.controller import KIND, TransformJobController

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class TransformService:
    """CreateTransformJob, DescribeTransformJob, ListTransformJobs, StopTransformJob."""

    def __init__(
        self,
        settings: Settings,
        store: MetadataStore,
        models: Catalog,
        controller: TransformJobController,
        wake: Callable[[], None],
    ) -> None:
        self.settings = settings
        self.store = store
        self.models = models
        self.controller = controller
        self.wake = wake

    def operations(self) -> dict[str, Handler]:
        return {
            "CreateTransformJob": self.create,
            "DescribeTransformJob": self.describe,
            "ListTransformJobs": self.list,
            "StopTransformJob": self.stop,
        }

    def arn(self, name: str) -> str:
        return make_arn(self.settings.region, self.settings.account_id, "transform-job", name)

    # --- operations ----------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        transform_spec.validate_create(params)
        name = params["TransformJobName"]
        spec = {k: v for k, v in params.items() if k != "Tags"}
        spec["_model"] = self._model_snapshot(params["ModelName"])
        now = time.time()
        record = Record(
            kind=KIND, name=name, arn=self.arn(name), status="InProgress", created=now,
            modified=now, version=1, spec=spec, state=js.initial(now),
        )
        try:
            self.store.create(record)
        except DuplicateRecord as e:
            raise ResourceInUse(f"Job name must be unique within an AWS account and region, and a job with this name already exists ({record.arn})") from e
        if params.get("Tags"):
            self.store.set_tags(record.arn, {t["Key"]: t["Value"] for t in params["Tags"]})
        self.wake()
        return {"TransformJobArn": record.arn}

    def describe(self, params: dict[str, Any]) -> dict[str, Any]:
        return self.description(self._get(params["TransformJobName"]))

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        records, token = list_page(self.store, KIND, params)
        return {"TransformJobSummaries": [self._summary(r) for r in records], "NextToken": token}

    def stop(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._get(params["TransformJobName"])
        if record.status != "InProgress":
            raise ValidationError(
                f"The request was rejected because the transform job is in status {record.status}."
            )
        self.controller.request_stop(record.name)
        self.wake()
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

    def _get(self, name_or_arn: str) -> Record:
        name = name_from_arn(name_or_arn)
        try:
            return self.store.get(KIND, name)
        except RecordNotFound as e:
            raise LegacyNotFound(
                "transform job", self.arn(name), f"Could not find requested job with name {name}"
            ) from e
