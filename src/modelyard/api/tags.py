"""AddTags, ListTags and DeleteTags for every resource, by ARN."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from modelyard.api import pagination
from modelyard.core.errors import ResourceNotFound, ValidationError
from modelyard.core.settings import Settings
from modelyard.store.base import MetadataStore, Query

Handler = Callable[[dict[str, Any]], dict[str, Any]]

# ARN resource type -> store kind; capabilities add theirs as they arrive
KINDS_BY_ARN_TYPE = {
    "training-job": "TrainingJob",
    "hyper-parameter-tuning-job": "HyperParameterTuningJob",
    "transform-job": "TransformJob",
    "model": "Model",
    "endpoint-config": "EndpointConfig",
    "experiment": "Experiment",
    "experiment-trial": "ExperimentTrial",
    "experiment-trial-component": "ExperimentTrialComponent",
    "artifact": "Artifact",
    "action": "Action",
    "context": "Context",
    "endpoint": "Endpoint",
}

_ARN = re.compile(r"^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:\d*:(?P<type>[a-z\-]+)/(?P<name>.+)$")
_MAX_TAGS = 50


class TagService:
    """Tags live beside records in the metadata store, keyed by ARN."""

    def __init__(self, settings: Settings, store: MetadataStore) -> None:
        self.settings = settings
        self.store = store

    def operations(self) -> dict[str, Handler]:
        return {"AddTags": self.add, "ListTags": self.list, "DeleteTags": self.delete}

    def add(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = self._existing(params["ResourceArn"])
        tags = {t["Key"]: t["Value"] for t in params["Tags"]}
        if len(set(self.store.get_tags(arn)) | set(tags)) > _MAX_TAGS:
            raise ValidationError(f"A resource can have at most {_MAX_TAGS} tags.")
        self.store.set_tags(arn, tags)
        return {"Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = self._existing(params["ResourceArn"])
        offset, limit = pagination.page_window(params, default_max=50)
        items = list(self.store.get_tags(arn).items())
        page = items[offset : offset + limit]
        out: dict[str, Any] = {"Tags": [{"Key": k, "Value": v} for k, v in page]}
        if offset + limit < len(items):
            out["NextToken"] = pagination.next_token(params, offset + limit)
        return out

    def delete(self, params: dict[str, Any]) -> dict[str, Any]:
        arn = self._existing(params["ResourceArn"])
        self.store.remove_tags(arn, params["TagKeys"])
        return {}

    def _existing(self, arn: str) -> str:
        match = _ARN.match(arn)
        kind = KINDS_BY_ARN_TYPE.get(match["type"]) if match else None
        if match is None or kind is None:
            raise ValidationError(f"{arn} is not the ARN of a resource modelyard can tag.")
        name = match["name"]
        for record in self.store.list(Query(kind=kind, name_contains=name)):
            if record.arn == arn.lower() or record.arn == arn:
                return record.arn
        raise ResourceNotFound(match["type"], name)
