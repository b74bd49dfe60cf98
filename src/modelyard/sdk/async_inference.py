"""Asynchronous and serverless endpoints from the SDK, SageMaker-SDK style.

``Model.deploy(async_inference_config=AsyncInferenceConfig(...))`` returns an
:class:`AsyncPredictor`; ``predict_async`` queues a request (InvokeEndpointAsync) and returns an
:class:`AsyncInferenceResponse` whose ``get_result`` reads the answer from the output location
once the endpoint has written it. Small payloads travel inline; larger ones are written to the
artifact store first (``input_path`` names an object that is already there).

>>> predictor = model.deploy(async_inference_config=AsyncInferenceConfig())   # doctest: +SKIP
>>> response = predictor.predict_async([[1.0, 2.0]])                          # doctest: +SKIP
>>> response.get_result(WaiterConfig(max_attempts=60, delay=1))               # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

from modelyard.core.errors import ArtifactNotFound
from modelyard.sdk.predictor import Predictor

#: the largest body sent inline (the server's limit for InvokeEndpointAsync's Body)
INLINE_LIMIT = 128_000


@dataclasses.dataclass
class ServerlessInferenceConfig:
    """A serverless variant: no instance while idle, at most ``max_concurrency`` requests."""

    memory_size_in_mb: int = 2048
    max_concurrency: int = 5
    provisioned_concurrency: int | None = None

    def to_request(self) -> dict[str, Any]:
        request = {"MemorySizeInMB": self.memory_size_in_mb, "MaxConcurrency": self.max_concurrency}
        if self.provisioned_concurrency is not None:
            request["ProvisionedConcurrency"] = self.provisioned_concurrency
        return request


@dataclasses.dataclass
class AsyncInferenceConfig:
    """Where an asynchronous endpoint writes answers and failures, and how many requests
    each instance runs at once. Without ``output_path`` the session's default bucket is used."""

    output_path: str | None = None
    max_concurrent_invocations_per_instance: int | None = None
    failure_path: str | None = None

    def to_request(self, default_output: str) -> dict[str, Any]:
        output = {"S3OutputPath": self.output_path or default_output}
        if self.failure_path:
            output["S3FailurePath"] = self.failure_path
        request: dict[str, Any] = {"OutputConfig": output}
        if self.max_concurrent_invocations_per_instance:
            request["ClientConfig"] = {
                "MaxConcurrentInvocationsPerInstance": self.max_concurrent_invocations_per_instance}
        return request


@dataclasses.dataclass
class WaiterConfig:
    """How long :meth:`AsyncInferenceResponse.get_result` polls: ``max_attempts`` × ``delay`` s."""

    max_attempts: int = 60
    delay: float = 15.0


class AsyncInferenceError(RuntimeError):
    """Base of the errors an asynchronous result raises."""


class ObjectNotExistedError(AsyncInferenceError):
    """The answer is not there yet (the request may still be running)."""


class AsyncInferenceModelError(AsyncInferenceError):
    """The model failed on the request; the message is what the failure object holds."""


class PollingTimeoutError(AsyncInferenceError):
    """The answer did not arrive within the waiter's attempts."""


class AsyncInferenceResponse:
    """One queued request: where its answer (or failure) will be."""

    def __init__(self, predictor: AsyncPredictor, output_path: str, failure_path: str | None,
                 inference_id: str | None = None) -> None:
        self.predictor = predictor
        self.output_path = output_path
        self.failure_path = failure_path
        self.inference_id = inference_id
        self._result: Any = None
        self._done = False

    def get_result(self, waiter_config: WaiterConfig | None = None) -> Any:
        """The deserialized answer. Without ``waiter_config`` it looks once and raises
        :class:`ObjectNotExistedError` when the answer is not there yet."""
        if self._done:
            return self._result
        attempts = waiter_config.max_attempts if waiter_config else 1
        for attempt in range(attempts):
            if self._look():
                return self._result
            if attempt + 1 < attempts:
                time.sleep(waiter_config.delay if waiter_config else 0)
        if waiter_config:
            raise PollingTimeoutError(
                f"No answer at {self.output_path} after {attempts} attempt(s), "
                f"{waiter_config.delay} s apart.")
        raise ObjectNotExistedError(f"No answer at {self.output_path} yet: the request may "
                                    "still be running; call get_result again later.")

    def _look(self) -> bool:
        artifacts = self.predictor.session.artifacts
        if self.failure_path:
            try:
                failure = artifacts.get_bytes(self.failure_path)
            except ArtifactNotFound:
                pass
            else:
                raise AsyncInferenceModelError(failure.decode("utf-8", "replace"))
        try:
            body = artifacts.get_bytes(self.output_path)
        except ArtifactNotFound:
            return False
        predictor = self.predictor
        self._result = predictor.deserializer.deserialize(body, predictor.deserializer.ACCEPT)
        self._done = True
        return True


class AsyncPredictor:
    """Queues requests on an asynchronous endpoint and fetches their answers."""

    def __init__(self, predictor: Predictor, name: str | None = None) -> None:
        self.predictor = predictor
        self.endpoint_name = predictor.endpoint_name
        self.name = name
        self.session = predictor.session
        self.serializer = predictor.serializer
        self.deserializer = predictor.deserializer

    def predict_async(self, data: Any = None, input_path: str | None = None,
                      initial_args: dict[str, Any] | None = None,
                      inference_id: str | None = None) -> AsyncInferenceResponse:
        """Queue one request (``data`` serialized, or the object at ``input_path``)."""
        if (data is None) == (input_path is None):
            raise ValueError("Pass exactly one of data and input_path.")
        kwargs: dict[str, Any] = {"EndpointName": self.endpoint_name,
                                  "ContentType": self.serializer.CONTENT_TYPE,
                                  "Accept": self.deserializer.ACCEPT, **(initial_args or {})}
        if inference_id:
            kwargs["InferenceId"] = inference_id
        if input_path is not None:
            kwargs["InputLocation"] = input_path
        else:
            body = self.serializer.serialize(data)
            if len(body) <= INLINE_LIMIT:
                kwargs["Body"] = body
            else:
                kwargs["InputLocation"] = self._upload(body)
        answer = self.session.client("sagemaker-runtime").invoke_endpoint_async(**kwargs)
        return AsyncInferenceResponse(self, answer["OutputLocation"], answer.get("FailureLocation"),
                                      answer.get("InferenceId"))

    def predict(self, data: Any = None, input_path: str | None = None,
                initial_args: dict[str, Any] | None = None, inference_id: str | None = None,
                waiter_config: WaiterConfig | None = None) -> Any:
        """Queue one request and wait for its answer (by default up to 15 minutes)."""
        response = self.predict_async(data, input_path, initial_args, inference_id)
        return response.get_result(waiter_config or WaiterConfig())

    def delete_endpoint(self, delete_endpoint_config: bool = True) -> None:
        """Delete the endpoint (and, by default, its endpoint config)."""
        self.predictor.delete_endpoint(delete_endpoint_config)

    def _upload(self, body: bytes) -> str:
        uri = f"{self.session.default_bucket_uri()}/async-endpoint-inputs/{self.endpoint_name}/{uuid.uuid4()}"
        self.session.artifacts.put_bytes(uri, body)
        return uri
