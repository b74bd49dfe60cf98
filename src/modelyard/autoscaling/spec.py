"""What scalable targets and scaling policies are: the Application Auto Scaling subset modelyard
serves, and the rules beyond botocore's schema.

Only SageMaker endpoint variants scale: ``ServiceNamespace=sagemaker``,
``ResourceId=endpoint/<endpoint>/variant/<variant>``,
``ScalableDimension=sagemaker:variant:DesiredInstanceCount``. A target is one record of kind
``ScalableTarget`` named by its ResourceId; its state holds Min/MaxCapacity, SuspendedState,
its policies (by name) and its latest scaling activities. Deregistering a target deletes its
policies, as in AWS. Only target tracking on the predefined
``SageMakerVariantInvocationsPerInstance`` metric is served; step scaling, predictive scaling
and customised metrics are refused.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from typing import Any, Final

from modelyard.core.errors import ModelyardError, ValidationError

TARGET: Final = "ScalableTarget"
SERVICE_NAMESPACE: Final = "sagemaker"
DIMENSION: Final = "sagemaker:variant:DesiredInstanceCount"
PREDEFINED_METRIC: Final = "SageMakerVariantInvocationsPerInstance"
DEFAULT_COOLDOWN: Final = 300  # seconds, Application Auto Scaling's default for SageMaker
ACTIVITY_LIMIT: Final = 100  # scaling activities kept per target

_RESOURCE_ID = re.compile(r"^endpoint/(?P<endpoint>[^/]+)/variant/(?P<variant>[^/]+)$")


class ObjectNotFound(ModelyardError):
    """No scalable target or scaling policy matches (``ObjectNotFoundException``)."""

    code = "ObjectNotFoundException"
    status = 400


def parse_resource_id(resource_id: str) -> tuple[str, str]:
    """``(endpoint, variant)`` of ``endpoint/<endpoint>/variant/<variant>``."""
    match = _RESOURCE_ID.match(resource_id)
    if match is None:
        raise ValidationError(
            f"Unsupported resource ID {resource_id}: SageMaker resource IDs look like "
            "endpoint/<endpoint-name>/variant/<variant-name>."
        )
    return match["endpoint"], match["variant"]


def check_dimension(params: Mapping[str, Any]) -> None:
    """Refuse any namespace or dimension other than a SageMaker variant's instance count."""
    if params["ServiceNamespace"] != SERVICE_NAMESPACE:
        raise ValidationError(
            f"Service namespace {params['ServiceNamespace']} is not supported by modelyard; "
            f"only {SERVICE_NAMESPACE} endpoint variants scale."
        )
    if params["ScalableDimension"] != DIMENSION:
        raise ValidationError(
            f"Unsupported scalable dimension {params['ScalableDimension']}; modelyard scales "
            f"{DIMENSION}."
        )


def target_arn(region: str, account: str, resource_id: str) -> str:
    # AWS names a target by an opaque id; a name-based UUID keeps it stable across calls
    ident = uuid.uuid5(uuid.NAMESPACE_URL, resource_id).hex
    return f"arn:aws:application-autoscaling:{region}:{account}:scalable-target/{ident}"


def policy_arn(region: str, account: str, resource_id: str, name: str) -> str:
    ident = uuid.uuid5(uuid.NAMESPACE_URL, f"{resource_id}/{name}")
    return (f"arn:aws:autoscaling:{region}:{account}:scalingPolicy:{ident}:resource/"
            f"{SERVICE_NAMESPACE}/{resource_id}:policyName/{name}")


def tracking_config(params: Mapping[str, Any]) -> dict[str, Any]:
    """The TargetTrackingScalingPolicyConfiguration of a PutScalingPolicy, defaults filled in."""
    kind = params.get("PolicyType", "StepScaling")
    if kind != "TargetTrackingScaling":
        raise ValidationError(
            f"PolicyType {kind} is not supported by modelyard; use TargetTrackingScaling."
        )
    config = params.get("TargetTrackingScalingPolicyConfiguration")
    if config is None:
        raise ValidationError("TargetTrackingScalingPolicyConfiguration is required for "
                              "TargetTrackingScaling policies.")
    if config.get("CustomizedMetricSpecification") is not None:
        raise ValidationError("CustomizedMetricSpecification is not supported by modelyard; use "
                              f"PredefinedMetricSpecification {PREDEFINED_METRIC}.")
    metric = (config.get("PredefinedMetricSpecification") or {}).get("PredefinedMetricType")
    if metric != PREDEFINED_METRIC:
        raise ValidationError(f"PredefinedMetricType {metric} is not supported by modelyard; "
                              f"use {PREDEFINED_METRIC}.")
    if config["TargetValue"] <= 0:
        raise ValidationError("TargetValue must be greater than 0.")
    return {
        "TargetValue": float(config["TargetValue"]),
        "PredefinedMetricSpecification": dict(config["PredefinedMetricSpecification"]),
        "ScaleOutCooldown": int(config.get("ScaleOutCooldown", DEFAULT_COOLDOWN)),
        "ScaleInCooldown": int(config.get("ScaleInCooldown", DEFAULT_COOLDOWN)),
        "DisableScaleIn": bool(config.get("DisableScaleIn", False)),
    }
