"""What a transform job is: the rules a CreateTransformJob request must follow beyond its schema.

botocore's service model already checked types, ranges and enums; these are the rules that
span fields or depend on what modelyard can run. Anything modelyard does not do is refused with
a ValidationException that says so, never silently ignored.
"""

from __future__ import annotations

import re
from typing import Any

from modelyard.core.errors import ValidationError
from modelyard.runtime.transform.jsonpath import parse_path

KIND = "TransformJob"

#: SageMaker's defaults for what the request leaves out
DEFAULT_TIMEOUT_SECONDS = 600
DEFAULT_MAX_RETRIES = 3
#: MaxConcurrentTransforms × MaxPayloadInMB may not exceed this
MAX_TOTAL_PAYLOAD_MB = 100

_URI = re.compile(r"^(s3://[^/]+(/.*)?|file:///.*|/.*)$")
_SPLITS = ("None", "Line")


def validate_create(request: dict[str, Any]) -> None:
    """Raise ValidationError naming the first rule the request breaks."""
    _validate_input(request["TransformInput"])
    _validate_uri("TransformOutput.S3OutputPath", request["TransformOutput"]["S3OutputPath"])
    _validate_limits(request)
    _validate_data_processing(request)
    if request.get("DataCaptureConfig"):
        raise ValidationError("DataCaptureConfig is not supported by modelyard batch transform yet.")
    if "InstanceType" not in request["TransformResources"]:
        raise ValidationError("TransformResources.InstanceType is required.")


def _validate_input(transform_input: dict[str, Any]) -> None:
    source = transform_input["DataSource"].get("S3DataSource")
    if source is None:
        raise ValidationError("TransformInput.DataSource needs an S3DataSource.")
    if source.get("S3DataType", "S3Prefix") != "S3Prefix":
        raise ValidationError(
            f"S3DataType {source['S3DataType']} is not supported by modelyard batch transform; "
            "use S3Prefix."
        )
    _validate_uri("TransformInput.DataSource.S3DataSource.S3Uri", source["S3Uri"])
    split = transform_input.get("SplitType", "None")
    if split not in _SPLITS:
        raise ValidationError(
            f"SplitType {split} is not supported by modelyard; use None or Line "
            "(RecordIO and TFRecord framing are not implemented)."
        )


def _validate_limits(request: dict[str, Any]) -> None:
    payload = request.get("MaxPayloadInMB")
    if payload == 0:
        raise ValidationError(
            "MaxPayloadInMB 0 (unbounded, chunked requests) is not supported by modelyard; "
            "give a limit from 1 to 100."
        )
    concurrent = request.get("MaxConcurrentTransforms") or 1
    if payload and payload * concurrent > MAX_TOTAL_PAYLOAD_MB:
        raise ValidationError(
            f"MaxConcurrentTransforms ({concurrent}) × MaxPayloadInMB ({payload}) must not "
            f"exceed {MAX_TOTAL_PAYLOAD_MB} MB."
        )


def _validate_data_processing(request: dict[str, Any]) -> None:
    processing = request.get("DataProcessing") or {}
    for field in ("InputFilter", "OutputFilter"):
        if field in processing:
            try:
                parse_path(processing[field])
            except ValueError as e:
                raise ValidationError(f"DataProcessing.{field}: {e}") from e
    joined = processing.get("JoinSource", "None") == "Input"
    filtered = any(processing.get(f, "$") != "$" for f in ("InputFilter", "OutputFilter"))
    if (joined or filtered) and request["TransformInput"].get("SplitType", "None") != "Line":
        raise ValidationError(
            "DataProcessing (InputFilter, OutputFilter, JoinSource=Input) needs "
            "TransformInput.SplitType Line: filters and joins work record by record."
        )


def _validate_uri(where: str, uri: str) -> None:
    if not _URI.match(uri):
        raise ValidationError(
            f"{where}: {uri} is not a valid URI; use s3://bucket/key, file:///path or an absolute path."
        )
