"""The endpoint operations: desired state in, the controller converges the fleet.

An endpoint record's state holds the ``target`` (the config to serve, its variants with their
model definitions copied in, weights and instance counts), the ``fleet`` (instance processes)
and ``live`` (the config and weights the router uses now). The API only changes ``target`` and
the status; :mod:`modelyard.serving.controller` does everything else.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from modelyard.api.listing import list_page
from modelyard.core.errors import ValidationError
from modelyard.core.settings import Settings
from modelyard.serving import multimodel, rollout, spec
from modelyard.serving.capture import capture_status
from modelyard.serving.service import Catalog, ModelService
from modelyard.store.base import MetadataStore, Record
from modelyard.store.mutate import mutate

Handler = Callable[[dict[str, Any]], dict[str, Any]]

_BUSY = ("Creating", "Updating", "Deleting", "RollingBack", "SystemUpdating")


class EndpointService:
    """CreateEndpoint, DescribeEndpoint, ListEndpoints, UpdateEndpoint,
    UpdateEndpointWeightsAndCapacities, DeleteEndpoint."""

    def __init__(self, settings: Settings, store: MetadataStore, models: ModelService,
                 wake: Callable[[], None]) -> None:
        self.store = store
        self.models = models
        self.endpoints = Catalog(settings, store, spec.ENDPOINT, "endpoint", "endpoint")
        self.wake = wake

    def operations(self) -> dict[str, Handler]:
        return {
            "CreateEndpoint": self.create,
            "DescribeEndpoint": self.describe,
            "ListEndpoints": self.list,
            "UpdateEndpoint": self.update,
            "UpdateEndpointWeightsAndCapacities": self.update_weights,
            "DeleteEndpoint": self.delete,
        }

    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("DeploymentConfig"):
            raise ValidationError("CreateEndpoint: DeploymentConfig is not supported by modelyard yet.")
        target = self._target(params["EndpointConfigName"])
        record = self.endpoints.create(params["EndpointName"], {"EndpointName": params["EndpointName"]},
                                       params.get("Tags"))
        now = time.time()
        self.store.update(spec.ENDPOINT, record.name, record.version, status="Creating", modified=now,
                          state={"EndpointStatus": "Creating", "LastModifiedTime": now,
                                 "target": target, "fleet": [], "live": None})
        self.wake()
        return {"EndpointArn": record.arn}

    def describe(self, params: dict[str, Any]) -> dict[str, Any]:
        return describe_endpoint(self.endpoints.get(params["EndpointName"]))

    def list(self, params: dict[str, Any]) -> dict[str, Any]:
        records, token = list_page(self.store, spec.ENDPOINT, params, default_order="Descending")
        endpoints = [
            {"EndpointName": r.name, "EndpointArn": r.arn, "CreationTime": r.created,
             "LastModifiedTime": r.state.get("LastModifiedTime", r.modified), "EndpointStatus": r.status}
            for r in records
        ]
        return {"Endpoints": endpoints, "NextToken": token}

    def update(self, params: dict[str, Any]) -> dict[str, Any]:
        if params.get("ExcludeRetainedVariantProperties"):
            raise ValidationError("UpdateEndpoint: ExcludeRetainedVariantProperties is not supported by modelyard yet.")
        record = self._idle(params["EndpointName"], "update")
        target = self._target(params["EndpointConfigName"])
        plan = None
        if params.get("DeploymentConfig"):
            plan = rollout.plan(params["DeploymentConfig"], target["variants"])
        if params.get("RetainAllVariantProperties"):
            for name, variant in target["variants"].items():
                current = record.state["target"]["variants"].get(name)
                if current:
                    variant.update(count=current["count"], weight=current["weight"])

        def change(state: dict[str, Any]) -> dict[str, Any]:
            return {**state, "EndpointStatus": "Updating", "target": target, "FailureReason": None,
                    "rollout": plan}

        self._change(record, change)
        return {"EndpointArn": record.arn}

    def update_weights(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self._idle(params["EndpointName"], "update")
        variants = {k: dict(v) for k, v in record.state["target"]["variants"].items()}
        for desired in params["DesiredWeightsAndCapacities"]:
            name = desired["VariantName"]
            if name not in variants:
                raise ValidationError(f"The variant {name} does not exist in endpoint {record.name}.")
            if "DesiredWeight" in desired:
                variants[name]["weight"] = float(desired["DesiredWeight"])
            if "DesiredInstanceCount" in desired:
                variants[name]["count"] = int(desired["DesiredInstanceCount"])

        def change(state: dict[str, Any]) -> dict[str, Any]:
            target = {**state["target"], "variants": variants}
            return {**state, "EndpointStatus": "Updating", "target": target}

        self._change(record, change)
        return {"EndpointArn": record.arn}

    def delete(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.endpoints.get(params["EndpointName"])
        self._change(record, lambda state: {**state, "EndpointStatus": "Deleting"})
        return {}

    # --- helpers -------------------------------------------------------------------------
    def _target(self, config_name: str) -> dict[str, Any]:
        """The config's variants with their models' definitions copied in."""
        config = self.models.configs.get(config_name)
        variants = spec.variants_of(dict(config.spec))
        for variant in variants.values():
            model = self.models.models.get(variant["model"])
            container = spec.container_of(dict(model.spec))
            url, compressed = spec.model_data(container)
            variant.update(
                image=container["Image"],
                framework=spec.validate_model(dict(model.spec)).framework,
                model_data=url,
                compressed=compressed,
                environment=dict(container.get("Environment", {})),
                **multimodel.variant_fields(container),
            )
        return {"config": config.name, "variants": variants, "capture": config.spec.get("DataCaptureConfig")}

    def _idle(self, name: str, action: str) -> Record:
        record = self.endpoints.get(name)
        if record.status in _BUSY or record.status == "Failed":
            raise ValidationError(
                f"Cannot {action} endpoint {record.name} while it is {record.status}."
            )
        return record

    def _change(self, record: Record, change: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
        def apply(state: dict[str, Any]) -> dict[str, Any]:
            new = change(state)
            new["LastModifiedTime"] = time.time()
            return new

        mutate(self.store, spec.ENDPOINT, record.name, apply, status_key="EndpointStatus")
        self.wake()


def describe_endpoint(record: Record) -> dict[str, Any]:
    """DescribeEndpoint's answer from a record."""
    state = record.state
    target = state["target"]
    live = state.get("live") or {}
    ready = [i for i in state.get("fleet", []) if i["status"] == "ready" and not i.get("retire_at")]
    variants, shadows = [], []
    for name, variant in target["variants"].items():
        serving = [i for i in ready if i["variant"] == name and i["config"] == live.get("config")]
        (shadows if variant.get("shadow") else variants).append({
            "VariantName": name,
            "DeployedImages": [{"SpecifiedImage": variant["image"], "ResolvedImage": variant["image"]}],
            "CurrentWeight": live.get("weights", {}).get(name, 0.0),
            "DesiredWeight": variant["weight"],
            "CurrentInstanceCount": len(serving),
            "DesiredInstanceCount": variant["count"],
        })
        if variant.get("serverless"):  # never a shadow
            variants[-1].update(CurrentServerlessConfig=variant["serverless"],
                                DesiredServerlessConfig=variant["serverless"])
    return {
        "EndpointName": record.name,
        "EndpointArn": record.arn,
        "EndpointConfigName": live.get("config") or target["config"],
        "ProductionVariants": variants,
        "ShadowProductionVariants": shadows or None,
        "EndpointStatus": state["EndpointStatus"],
        "FailureReason": state.get("FailureReason"),
        "DataCaptureConfig": capture_status((state.get("live_target") or target).get("capture")),
        "CreationTime": record.created,
        "LastModifiedTime": state.get("LastModifiedTime", record.modified),
    }
