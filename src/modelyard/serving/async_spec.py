"""What asynchronous inference is: the endpoint config's AsyncInferenceConfig and one request.

An InvokeEndpointAsync request becomes one ``AsyncInvocation`` record, named by a fresh UUID.
Its ``spec`` holds everything needed to run it later without the request or the endpoint config
(the input location, the headers for the container, where the output and the error go, the
limits); its status moves::

    Queued ──► Running ──► Succeeded | Failed
       │          │
       │          └──► Queued   (the server restarted while it ran: its result was never written)
       └──► Expired             (it waited longer than RequestTTLSeconds)

Where outputs go (SageMaker's layout): ``{S3OutputPath}[/{S3OutputPathExtension}]/{uuid}.out``,
or ``.../{Filename}`` when the caller names the file; failures go to
``{S3FailurePath}/{uuid}-error.out`` (``S3OutputPath`` when no failure path is configured).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from modelyard.artifacts.uris import join_uri, parse_uri
from modelyard.core.errors import ArtifactError, ValidationError

ASYNC_INVOCATION = "AsyncInvocation"
QUEUED, RUNNING, SUCCEEDED, FAILED, EXPIRED = "Queued", "Running", "Succeeded", "Failed", "Expired"
PENDING = (QUEUED, RUNNING)

#: SageMaker picks a value when ClientConfig gives none; a few calls per instance keep every
#: worker of a default instance busy without queueing much inside it.
DEFAULT_MAX_CONCURRENT = 4
DEFAULT_TTL_SECONDS = 6 * 3600
DEFAULT_TIMEOUT_SECONDS = 900
TTL_RANGE = (60, 21600)
TIMEOUT_RANGE = (1, 3600)
MAX_INLINE_BODY = 128000


def validate_async_config(config: Mapping[str, Any]) -> None:
    """Check an EndpointConfig's AsyncInferenceConfig; ValidationError says what is wrong."""
    output = config.get("OutputConfig") or {}
    if output.get("NotificationConfig"):
        raise ValidationError(
            "AsyncInferenceConfig.OutputConfig.NotificationConfig: SNS notifications are not "
            "supported by modelyard; poll the output location instead."
        )
    if not output.get("S3OutputPath"):
        raise ValidationError("AsyncInferenceConfig.OutputConfig.S3OutputPath is required.")
    for field in ("S3OutputPath", "S3FailurePath"):
        if field in output:
            _check_location(f"AsyncInferenceConfig.OutputConfig.{field}", output[field])
    limit = (config.get("ClientConfig") or {}).get("MaxConcurrentInvocationsPerInstance")
    if limit is not None and not 1 <= int(limit) <= 1000:
        raise ValidationError("MaxConcurrentInvocationsPerInstance must be between 1 and 1000.")


def _check_location(field: str, uri: str) -> None:
    try:
        parse_uri(uri)
    except ArtifactError as e:
        raise ValidationError(f"{field}: {e.message}") from e


@dataclasses.dataclass(frozen=True)
class AsyncRequest:
    """The members of one InvokeEndpointAsync request that outlive it (see the module doc)."""

    endpoint: str
    inference_id: str
    input_location: str
    headers: tuple[tuple[str, str], ...]  # for the container, as the router forwards them
    output_location: str
    failure_location: str
    ttl_seconds: int
    timeout_seconds: int
    max_concurrent: int
    enqueued_at: float

    def to_spec(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "headers": [list(h) for h in self.headers]}

    @classmethod
    def from_spec(cls, spec: Mapping[str, Any]) -> AsyncRequest:
        return cls(**{**spec, "headers": tuple(tuple(h) for h in spec["headers"])})


def locations(config: Mapping[str, Any], uuid: str, extension: str | None,
              filename: str | None) -> tuple[str, str]:
    """``(output, failure)`` URIs of one request under the endpoint's AsyncInferenceConfig."""
    output = config["OutputConfig"]
    base = output["S3OutputPath"]
    folder = join_uri(base, extension) if extension else base
    failures = output.get("S3FailurePath") or base
    return join_uri(folder, filename or f"{uuid}.out"), join_uri(failures, f"{uuid}-error.out")


def header_int(headers: Mapping[bytes, bytes], name: bytes, default: int, bounds: tuple[int, int]) -> int:
    """An integer request header within ``bounds`` (inclusive); ValidationError otherwise."""
    raw = headers.get(name)
    if raw is None:
        return default
    low, high = bounds
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ValidationError(f"{name.decode()} must be an integer between {low} and {high}.")
    return value


def max_concurrent(config: Mapping[str, Any]) -> int:
    """MaxConcurrentInvocationsPerInstance, or modelyard's default."""
    client = config.get("ClientConfig") or {}
    return int(client.get("MaxConcurrentInvocationsPerInstance") or DEFAULT_MAX_CONCURRENT)
