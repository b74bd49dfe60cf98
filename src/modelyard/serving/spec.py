"""What models, endpoint configs and endpoints are: the rules beyond botocore's schema."""

from __future__ import annotations

import re
from typing import Any

from modelyard.compute.images import Runtime, runtime_for
from modelyard.core.errors import ValidationError
from modelyard.serving import multimodel, serverless
from modelyard.serving.async_spec import validate_async_config

MODEL = "Model"
ENDPOINT_CONFIG = "EndpointConfig"
ENDPOINT = "Endpoint"

_URI = re.compile(r"^(s3://[^/]+(/.*)?|file:///.*|/.*)$")

# What a variant may ask for that modelyard does not serve yet; refused, never ignored.
_NOT_YET = {
    "ManagedInstanceScaling": "managed instance scaling",
    "CoreDumpConfig": "core dump configuration",
}


def container_of(request: dict[str, Any]) -> dict[str, Any]:
    """The one container of a model (PrimaryContainer, or a single-element Containers)."""
    if "PrimaryContainer" in request:
        return dict(request["PrimaryContainer"])
    return dict(request["Containers"][0])


def validate_model(request: dict[str, Any]) -> Runtime:
    """Check a CreateModel request; return the runtime its image maps to."""
    has_primary, containers = "PrimaryContainer" in request, request.get("Containers")
    if has_primary == bool(containers):
        raise ValidationError("Specify exactly one of PrimaryContainer and Containers.")
    if containers and len(containers) > 1:
        raise ValidationError(
            "Inference pipelines (more than one container) are not supported by modelyard yet."
        )
    container = container_of(request)
    if "Image" not in container:
        raise ValidationError("The container needs an Image: model packages are not supported.")
    multimodel.validate_container(container)
    data = container.get("ModelDataUrl") or container.get("ModelDataSource", {}).get("S3DataSource", {}).get("S3Uri")
    if data is not None and not _URI.match(data):
        raise ValidationError(
            f"ModelDataUrl {data} is not a valid URI; use s3://bucket/key, file:///path or an absolute path."
        )
    return runtime_for(container["Image"])


def model_data(container: dict[str, Any]) -> tuple[str | None, bool]:
    """Where a container's model lives and whether it is a compressed model.tar.gz."""
    if "ModelDataUrl" in container:
        return container["ModelDataUrl"], True
    source = container.get("ModelDataSource", {}).get("S3DataSource")
    if source:
        return source["S3Uri"], source.get("CompressionType", "None") == "Gzip"
    return None, True


def validate_endpoint_config(request: dict[str, Any]) -> None:
    """Check a CreateEndpointConfig request (model existence is checked by the service)."""
    shadows = request.get("ShadowProductionVariants") or []
    if shadows and "AsyncInferenceConfig" in request:
        raise ValidationError(
            "ShadowProductionVariants cannot be combined with AsyncInferenceConfig: shadow "
            "variants copy real-time traffic."
        )
    capture = request.get("DataCaptureConfig")
    if capture is not None and not _URI.match(capture["DestinationS3Uri"]):
        raise ValidationError(
            f"DataCaptureConfig.DestinationS3Uri {capture['DestinationS3Uri']} is not a valid URI; "
            "use s3://bucket/key, file:///path or an absolute path."
        )
    if "AsyncInferenceConfig" in request:
        validate_async_config(request["AsyncInferenceConfig"])
        if any("ServerlessConfig" in v for v in request["ProductionVariants"]):
            raise ValidationError("AsyncInferenceConfig needs instances: a serverless variant "
                                  "cannot serve asynchronous invocations.")
    names: set[str] = set()
    for variant in request["ProductionVariants"] + shadows:
        name = variant["VariantName"]
        if name in names:
            raise ValidationError(f"Variant names must be unique; {name} appears more than once.")
        names.add(name)
        for field, what in _NOT_YET.items():
            if field in variant:
                raise ValidationError(f"Variant {name}: {what} ({field}) is not supported by modelyard yet.")
        if "ModelName" not in variant:
            raise ValidationError(f"Variant {name} needs a ModelName.")
        if "ServerlessConfig" in variant:
            if variant in shadows:
                raise ValidationError(f"Shadow variant {name} needs instances: serverless shadow "
                                      "variants are not available.")
            serverless.validate(variant)
            continue
        for field in ("InstanceType", "InitialInstanceCount"):
            if field not in variant:
                raise ValidationError(f"Variant {name} needs {field}.")


def variants_of(config_spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Variant name → {model, instance_type, count, weight, serverless, shadow} of an endpoint
    config, production variants first. A shadow variant gets a copy of the traffic."""
    shadows = config_spec.get("ShadowProductionVariants") or []
    return {
        v["VariantName"]: {
            "model": v["ModelName"],
            # a serverless instance is one small process; its count follows demand
            "instance_type": v.get("InstanceType", "ml.t2.medium"),
            "count": int(v.get("InitialInstanceCount", 0)),
            "weight": float(v.get("InitialVariantWeight", 1.0)),
            "serverless": v.get("ServerlessConfig"),
            "shadow": v in shadows,
        }
        for v in config_spec["ProductionVariants"] + shadows
    }
