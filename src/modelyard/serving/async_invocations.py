"""InvokeEndpointAsync: ``POST /endpoints/{name}/async-invocations`` enqueues, and answers 202.

The request is authenticated as InvokeEndpoint is; the endpoint must serve an endpoint config
with an ``AsyncInferenceConfig``. The request becomes a Queued ``AsyncInvocation`` record (see
:mod:`.async_spec`) before the answer goes out, so an accepted request survives a crash; the
:class:`~modelyard.serving.async_controller.AsyncInvocationController` runs it later. The answer
says where the result will appear: ``{"InferenceId": ...}`` with the headers
``X-Amzn-SageMaker-OutputLocation`` and ``X-Amzn-SageMaker-FailureLocation``.

The input is ``X-Amzn-SageMaker-InputLocation`` (``s3://``, ``file://`` or a local path, all
through :class:`~modelyard.artifacts.Artifacts`), or, as newer APIs allow, an inline body of up
to 128,000 bytes that is staged under the artifact root.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from modelyard.api.shaping import encode_json
from modelyard.artifacts import Artifacts
from modelyard.artifacts.uris import parse_uri
from modelyard.core.arns import make_arn
from modelyard.core.errors import ArtifactError, ModelyardError, ValidationError
from modelyard.serving import async_spec, spec
from modelyard.serving.async_spec import AsyncRequest
from modelyard.serving.router import (
    ASYNC_SUFFIX,
    Receive,
    Router,
    Scope,
    Send,
    endpoint_name,
    error_response,
    forward_headers,
    read_body,
)
from modelyard.store.base import MetadataStore, Record, RecordNotFound

_INFERENCE_ID = b"x-amzn-sagemaker-inference-id"


class AsyncInvocationHandler:
    """The raw ASGI handler the router calls for the ``/async-invocations`` suffix."""

    def __init__(self, router: Router, store: MetadataStore, artifacts: Artifacts,
                 wake: Callable[[], None]) -> None:
        self.router = router
        self.store = store
        self.artifacts = artifacts
        self.wake = wake

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_body(receive)
        headers = {k: v for k, v in scope["headers"]}
        try:
            self.router.authenticate(scope, headers, body)
            name = endpoint_name(scope["path"], ASYNC_SUFFIX)
            # the store and the artifact store block: keep them off the event loop
            request = await asyncio.to_thread(self.enqueue, name, headers, body)
        except ModelyardError as e:
            status, out, payload = error_response(e)
        else:
            self.wake()
            status, payload = 202, encode_json({"InferenceId": request.inference_id})
            out = [(b"content-type", b"application/json"),
                   (b"x-amzn-sagemaker-outputlocation", request.output_location.encode()),
                   (b"x-amzn-sagemaker-failurelocation", request.failure_location.encode())]
        out.append((b"content-length", str(len(payload)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": payload})

    def enqueue(self, endpoint: str, headers: Mapping[bytes, bytes], body: bytes) -> AsyncRequest:
        """Check the request and store it as a Queued invocation; ValidationError when it is wrong."""
        config = self._async_config(endpoint)
        name = str(uuid.uuid4())
        inference_id = headers.get(_INFERENCE_ID, name.encode()).decode("latin-1")
        output, failure = async_spec.locations(config, name, _text(headers, b"x-amzn-sagemaker-s3outputpathextension"),
                                               _text(headers, b"x-amzn-sagemaker-filename"))
        forward = forward_headers({**headers, _INFERENCE_ID: inference_id.encode("latin-1")},
                                  content_type=b"x-amzn-sagemaker-content-type", accept=b"x-amzn-sagemaker-accept")
        request = AsyncRequest(
            endpoint=endpoint,
            inference_id=inference_id,
            input_location=self._input(headers, body, endpoint, name),
            headers=tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in forward),
            output_location=output,
            failure_location=failure,
            ttl_seconds=async_spec.header_int(headers, b"x-amzn-sagemaker-requestttlseconds",
                                              async_spec.DEFAULT_TTL_SECONDS, async_spec.TTL_RANGE),
            timeout_seconds=async_spec.header_int(headers, b"x-amzn-sagemaker-invocationtimeoutseconds",
                                                  async_spec.DEFAULT_TIMEOUT_SECONDS, async_spec.TIMEOUT_RANGE),
            max_concurrent=async_spec.max_concurrent(config),
            enqueued_at=time.time(),
        )
        settings = self.router.settings
        self.store.create(Record(
            kind=async_spec.ASYNC_INVOCATION, name=name,
            arn=make_arn(settings.region, settings.account_id, "endpoint", f"{endpoint}/async-invocations/{name}"),
            status=async_spec.QUEUED, created=request.enqueued_at, modified=request.enqueued_at, version=1,
            spec=request.to_spec(), state={"Status": async_spec.QUEUED, "Attempts": 0},
        ))
        return request

    def _async_config(self, endpoint: str) -> Mapping[str, Any]:
        """The AsyncInferenceConfig of the config the endpoint serves (or is being created with)."""
        settings = self.router.settings
        try:
            record = self.store.get(spec.ENDPOINT, endpoint)
        except RecordNotFound:
            raise ValidationError(f"Endpoint {endpoint} of account {settings.account_id} not found.") from None
        if record.status in ("Deleting", "Failed"):
            raise ValidationError(f"Endpoint {endpoint} is {record.status} and takes no requests.")
        config_name = (record.state.get("live") or {}).get("config") or record.state["target"]["config"]
        try:
            config = self.store.get(spec.ENDPOINT_CONFIG, config_name)
        except RecordNotFound:
            raise ValidationError(f"The endpoint configuration {config_name} of endpoint {endpoint} "
                                  "no longer exists.") from None
        async_config = config.spec.get("AsyncInferenceConfig")
        if not async_config:
            raise ValidationError(
                f"Endpoint {endpoint} is not an asynchronous endpoint: its endpoint configuration "
                f"{config_name} has no AsyncInferenceConfig. Use InvokeEndpoint."
            )
        return async_config

    def _input(self, headers: Mapping[bytes, bytes], body: bytes, endpoint: str, name: str) -> str:
        """The input's URI: InputLocation, or the inline body staged under the artifact root."""
        location = _text(headers, b"x-amzn-sagemaker-inputlocation")
        if (location is None) == (not body):
            raise ValidationError("Provide exactly one of InputLocation and Body.")
        if location is not None:
            if location.lower().startswith(("https://", "http://")):
                raise ValidationError(f"InputLocation {location}: HTTPS locations are not supported; use s3://.")
            try:
                parse_uri(location)
            except ArtifactError as e:
                raise ValidationError(f"InputLocation {location}: {e.message}") from e
            return location
        if len(body) > async_spec.MAX_INLINE_BODY:
            raise ValidationError(f"An inline Body holds at most {async_spec.MAX_INLINE_BODY} bytes; "
                                  "upload larger inputs and pass InputLocation.")
        staged = self.artifacts.default_uri("async-invocations", endpoint, f"{name}.in")
        self.artifacts.put_bytes(staged, body)
        return staged


def _text(headers: Mapping[bytes, bytes], name: bytes) -> str | None:
    value = headers.get(name)
    return None if value is None else value.decode("latin-1")
