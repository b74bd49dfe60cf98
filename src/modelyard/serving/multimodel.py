"""Multi-model endpoints, the platform's part: what CreateModel accepts and what the router checks.

A model whose container has ``Mode: MultiModel`` serves every ``model.tar.gz`` below its
``ModelDataUrl`` prefix; ``MultiModelConfig.ModelCacheSetting`` (Enabled by default) says
whether loaded models stay in memory between invocations. InvokeEndpoint names the model in
``TargetModel``: required on a multi-model variant, refused on any other. The model server does
the rest (:mod:`modelyard.runtime.serving.multimodel`).
"""

from __future__ import annotations

from typing import Any

from modelyard.compute.resources import instance_slot
from modelyard.core.errors import ValidationError
from modelyard.runtime.serving.targets import (
    ERROR_CODE_HEADER,
    VALIDATION_ERROR,
    InvalidTargetModel,
    decode_target_model,
)
from modelyard.serving.routes import VariantRoute

MULTI_MODEL = "MultiModel"


def validate_container(container: dict[str, Any]) -> None:
    """Check the multi-model fields of a CreateModel container (ValidationError)."""
    config = container.get("MultiModelConfig")
    if container.get("Mode") != MULTI_MODEL:
        if config is not None:
            raise ValidationError(
                "MultiModelConfig applies only to a container with Mode MultiModel."
            )
        return
    if "ModelDataSource" in container:
        raise ValidationError(
            "A container with Mode MultiModel takes its models from ModelDataUrl (a prefix of "
            "model.tar.gz files); ModelDataSource is not supported with it."
        )
    if not container.get("ModelDataUrl"):
        raise ValidationError(
            "A container with Mode MultiModel needs ModelDataUrl: the prefix its models are under."
        )


def variant_fields(container: dict[str, Any]) -> dict[str, Any]:
    """What an endpoint's variant keeps of its model's multi-model settings."""
    multi = container.get("Mode") == MULTI_MODEL
    cache = (container.get("MultiModelConfig") or {}).get("ModelCacheSetting", "Enabled")
    return {"multi_model": multi, "model_cache": cache != "Disabled"}


def instance_memory_mb(variant: dict[str, Any]) -> int:
    """The memory of one instance of ``variant``: its serverless size or its instance type's."""
    serverless = variant.get("serverless")
    if serverless:
        return int(serverless["MemorySizeInMB"])
    return int(instance_slot(variant["instance_type"]).memory_gib * 1024)


def check_target(endpoint: str, variant: VariantRoute, raw: bytes | None) -> None:
    """The router's TargetModel rules (ValidationError): required on a multi-model variant,
    refused elsewhere, and never a key that leaves the prefix."""
    if not variant.multi_model:
        if raw is not None:
            raise ValidationError(
                f"Endpoint {endpoint} is not a multi-model endpoint (variant {variant.name}) "
                "and does not support TargetModel."
            )
        return
    if raw is None:
        raise ValidationError(
            f"Endpoint {endpoint} is a multi-model endpoint: TargetModel is required (a key "
            "below the model's ModelDataUrl prefix, e.g. model-a.tar.gz)."
        )
    try:
        decode_target_model(raw)
    except InvalidTargetModel as e:
        raise ValidationError(str(e)) from None


def refuse_untargeted(endpoint: str, variant: VariantRoute, operation: str) -> None:
    """ValidationError when an operation that cannot name a TargetModel meets a multi-model
    variant."""
    if variant.multi_model:
        raise ValidationError(
            f"Endpoint {endpoint} is a multi-model endpoint: {operation} cannot name a "
            "TargetModel; use InvokeEndpoint."
        )


def refusal(reply_headers: dict[bytes, bytes], reply: bytes) -> ValidationError | None:
    """The model server's answer as the ValidationError it stands for, when it refused the
    request because of the caller (e.g. a TargetModel with no object); else None."""
    if reply_headers.get(ERROR_CODE_HEADER) != VALIDATION_ERROR:
        return None
    return ValidationError(reply.decode("utf-8", "replace"))
