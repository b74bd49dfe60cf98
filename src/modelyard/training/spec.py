"""What a training job is: the rules a CreateTrainingJob request must follow beyond its schema.

botocore's service model already checked types, lengths, patterns and enums; these are the
rules that span fields or depend on what modelyard can run.
"""

from __future__ import annotations

import re
from typing import Any

from modelyard.artifacts.uris import join_uri
from modelyard.compute.images import runtime_for
from modelyard.core.errors import ValidationError

_URI = re.compile(r"^(s3://[^/]+(/.*)?|file:///.*|/.*)$")


def validate_create(request: dict[str, Any]) -> None:
    """Raise ValidationError naming the first rule the request breaks."""
    algorithm = request["AlgorithmSpecification"]
    if "TrainingImage" not in algorithm:
        raise ValidationError(
            "AlgorithmSpecification.TrainingImage is required: modelyard runs framework images "
            "and the built-in XGBoost image, not marketplace AlgorithmName resources."
        )
    runtime_for(algorithm["TrainingImage"])
    if algorithm.get("TrainingInputMode") == "Pipe":
        raise _pipe_mode("AlgorithmSpecification.TrainingInputMode")
    _validate_metric_definitions(algorithm.get("MetricDefinitions", []))
    _validate_channels(request.get("InputDataConfig", []))
    _validate_uri("OutputDataConfig.S3OutputPath", request["OutputDataConfig"]["S3OutputPath"])
    checkpoint = request.get("CheckpointConfig")
    if checkpoint:
        _validate_uri("CheckpointConfig.S3Uri", checkpoint["S3Uri"])
    _validate_spot(request)
    if "InstanceGroups" in request["ResourceConfig"]:
        raise ValidationError("ResourceConfig.InstanceGroups (heterogeneous clusters) is not supported by modelyard; use InstanceType and InstanceCount.")
    for field in ("InstanceType",):
        if field not in request["ResourceConfig"]:
            raise ValidationError(f"ResourceConfig.{field} is required.")


def _pipe_mode(where: str) -> ValidationError:
    return ValidationError(
        f"{where}: Pipe input mode is not supported by modelyard; use File or FastFile."
    )


def _validate_metric_definitions(definitions: list[dict[str, str]]) -> None:
    for definition in definitions:
        try:
            pattern = re.compile(definition["Regex"])
        except re.error as e:
            raise ValidationError(
                f"MetricDefinitions: Regex for metric {definition['Name']} is invalid: {e}"
            ) from e
        if pattern.groups < 1:
            raise ValidationError(
                f"MetricDefinitions: Regex for metric {definition['Name']} must have a capture group."
            )


def _validate_channels(channels: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for channel in channels:
        name = channel["ChannelName"]
        if name in seen:
            raise ValidationError(f"Channel names must be unique; {name} appears more than once.")
        seen.add(name)
        if channel.get("InputMode") == "Pipe":
            raise _pipe_mode(f"Channel {name} InputMode")
        source = channel["DataSource"].get("S3DataSource")
        if source is None:
            raise ValidationError(
                f"Channel {name}: only S3DataSource is supported by modelyard "
                "(s3://, file:// URIs or local paths)."
            )
        if source.get("S3DataType", "S3Prefix") not in ("S3Prefix", "ManifestFile"):
            raise ValidationError(
                f"Channel {name}: S3DataType {source['S3DataType']} needs Pipe mode, "
                "which modelyard does not support; use S3Prefix or ManifestFile."
            )
        _validate_uri(f"Channel {name} S3Uri", source["S3Uri"])


def _validate_uri(where: str, uri: str) -> None:
    if not _URI.match(uri):
        raise ValidationError(
            f"{where}: {uri} is not a valid URI; use s3://bucket/key, file:///path or an absolute path."
        )


def _validate_spot(request: dict[str, Any]) -> None:
    stopping = request.get("StoppingCondition", {})
    if not request.get("EnableManagedSpotTraining"):
        return
    wait = stopping.get("MaxWaitTimeInSeconds")
    runtime = stopping.get("MaxRuntimeInSeconds", 86400)
    if wait is None:
        raise ValidationError(
            "StoppingCondition.MaxWaitTimeInSeconds is required when EnableManagedSpotTraining is true."
        )
    if wait < runtime:
        raise ValidationError(
            f"Invalid MaxWaitTimeInSeconds {wait}: it must be greater than or equal to "
            f"MaxRuntimeInSeconds ({runtime})."
        )


def framework_of(request: dict[str, Any]) -> str:
    return runtime_for(request["AlgorithmSpecification"]["TrainingImage"]).framework


def is_builtin_algorithm(request: dict[str, Any]) -> bool:
    """The built-in XGBoost algorithm runs when the image has one and no script is named."""
    runtime = runtime_for(request["AlgorithmSpecification"]["TrainingImage"])
    return runtime.builtin_algorithm and "sagemaker_program" not in request.get("HyperParameters", {})


def metric_definitions(request: dict[str, Any]) -> list[dict[str, str]]:
    """The job's MetricDefinitions plus those SageMaker attaches to the built-in algorithm."""
    given = list(request["AlgorithmSpecification"].get("MetricDefinitions", []))
    if not is_builtin_algorithm(request):
        return given
    from modelyard.runtime.algorithms.xgboost import metric_definitions_for

    names = {d["Name"] for d in given}
    auto = metric_definitions_for(dict(request.get("HyperParameters", {})))
    return given + [d for d in auto if d["Name"] not in names]


def output_prefix(request: dict[str, Any], name: str) -> str:
    """``{S3OutputPath}/{job}/output``, whatever slashes S3OutputPath ends with."""
    return join_uri(request["OutputDataConfig"]["S3OutputPath"], name, "output")


def compresses_model(request: dict[str, Any]) -> bool:
    return request["OutputDataConfig"].get("CompressionType", "GZIP") != "NONE"


def model_artifacts_uri(request: dict[str, Any], name: str) -> str:
    """Where the job's model goes: ``.../output/model.tar.gz`` (``.../output/model/`` uncompressed)."""
    if compresses_model(request):
        return join_uri(output_prefix(request, name), "model.tar.gz")
    return join_uri(output_prefix(request, name), "model") + "/"
