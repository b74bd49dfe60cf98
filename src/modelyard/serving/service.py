"""Models and endpoint configs: immutable definitions that endpoints are built from.

Both are "legacy" SageMaker resources: a missing one is a ``ValidationException`` saying
``Could not find model "<arn>".`` and a duplicate one ``Cannot create already existing model
"<arn>".`` — the SDK matches on both phrases.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from modelyard.api.entities import Kind
from modelyard.api.listing import list_page
from modelyard.core.arns import name_from_arn
from modelyard.core.errors import LegacyNotFound, ValidationError
from modelyard.core.settings import Settings
from modelyard.serving import spec
from modelyard.store.base import MetadataStore, Record, RecordNotFound

Handler = Callable[[dict[str, Any]], dict[str, Any]]


class Catalog(Kind):
    """Create, read and delete of one kind of immutable definition."""

    def create(self, name: str, spec_doc: dict[str, Any], tags: list[dict[str, str]] | None) -> Record:
        now = time.time()
        record = Record(kind=self.kind, name=name, arn=self.arn(name), status="Created", created=now,
                        modified=now, version=1, spec=spec_doc, state={})
        self.store_new(record, tags, f'Cannot create already existing {self.noun} "{record.arn}".')
        return record

    def get(self, name_or_arn: str) -> Record:
        name = name_from_arn(name_or_arn)
        try:
            return self.store.get(self.kind, name)
        except RecordNotFound as e:
            raise LegacyNotFound(self.noun, self.arn(name)) from e

    def delete(self, name_or_arn: str) -> None:
        record = self.get(name_or_arn)
        self.store.delete(self.kind, record.name)


class ModelService:
    """CreateModel, DescribeModel, ListModels, DeleteModel."""

    def __init__(self, settings: Settings, store: MetadataStore) -> None:
        self.models = Catalog(settings, store, spec.MODEL, "model", "model")
        self.configs = Catalog(settings, store, spec.ENDPOINT_CONFIG, "endpoint-config", "endpoint configuration")
        self.store = store

    def operations(self) -> dict[str, Handler]:
        return {
            "CreateModel": self.create_model,
            "DescribeModel": self.describe_model,
            "ListModels": self.list_models,
            "DeleteModel": self.delete_model,
            "CreateEndpointConfig": self.create_config,
            "DescribeEndpointConfig": self.describe_config,
            "ListEndpointConfigs": self.list_configs,
            "DeleteEndpointConfig": self.delete_config,
        }

    # --- models --------------------------------------------------------------------------
    def create_model(self, params: dict[str, Any]) -> dict[str, Any]:
        spec.validate_model(params)
        record = self.models.create(params["ModelName"], _without_tags(params), params.get("Tags"))
        return {"ModelArn": record.arn}

    def describe_model(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.models.get(params["ModelName"])
        return {**record.spec, "ModelArn": record.arn, "CreationTime": record.created,
                "EnableNetworkIsolation": record.spec.get("EnableNetworkIsolation", False)}

    def list_models(self, params: dict[str, Any]) -> dict[str, Any]:
        records, token = list_page(self.store, spec.MODEL, params, default_order="Descending")
        models = [{"ModelName": r.name, "ModelArn": r.arn, "CreationTime": r.created} for r in records]
        return {"Models": models, "NextToken": token}

    def delete_model(self, params: dict[str, Any]) -> dict[str, Any]:
        self.models.delete(params["ModelName"])  # endpoints keep serving: they loaded it already
        return {}

    # --- endpoint configs ----------------------------------------------------------------
    def create_config(self, params: dict[str, Any]) -> dict[str, Any]:
        spec.validate_endpoint_config(params)
        doc = _without_tags(params)
        for field in ("ProductionVariants", "ShadowProductionVariants"):
            for variant in params.get(field, []):
                model = self.models.get(variant["ModelName"])
                if "AsyncInferenceConfig" in params and spec.container_of(dict(model.spec)).get("Mode") == "MultiModel":
                    # InvokeEndpointAsync has no TargetModel: every request would fail later
                    raise ValidationError(f"Model {model.name} is a multi-model container; "
                                          "AsyncInferenceConfig needs single-model variants.")
            if params.get(field):
                doc[field] = [{"InitialVariantWeight": 1.0, **v} for v in params[field]]
        record = self.configs.create(params["EndpointConfigName"], doc, params.get("Tags"))
        return {"EndpointConfigArn": record.arn}

    def describe_config(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.configs.get(params["EndpointConfigName"])
        return {**record.spec, "EndpointConfigArn": record.arn, "CreationTime": record.created}

    def list_configs(self, params: dict[str, Any]) -> dict[str, Any]:
        records, token = list_page(self.store, spec.ENDPOINT_CONFIG, params, default_order="Descending")
        configs = [{"EndpointConfigName": r.name, "EndpointConfigArn": r.arn, "CreationTime": r.created}
                   for r in records]
        return {"EndpointConfigs": configs, "NextToken": token}

    def delete_config(self, params: dict[str, Any]) -> dict[str, Any]:
        self.configs.delete(params["EndpointConfigName"])
        return {}


def _without_tags(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "Tags"}
