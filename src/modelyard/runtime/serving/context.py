"""The ``context`` argument of handlers that declare one (the toolkit's MMS context, reduced)."""

from __future__ import annotations

from typing import Any

CUSTOM_ATTRIBUTES = b"x-amzn-sagemaker-custom-attributes"


class Context:
    """What the current request and the worker look like to a handler.

    One object per worker, re-pointed at each request before a handler runs: one request at a
    time, or in a batch (:mod:`.batching`) at each request in turn before its ``input_fn`` and
    again before its ``output_fn``, so a handler always sees the request it is working on.
    ``custom_attributes`` is the request's ``X-Amzn-SageMaker-Custom-Attributes``; a handler
    that calls :meth:`set_custom_attributes` gets that value sent back in the same header.
    """

    def __init__(self, model_dir: str, worker_index: int) -> None:
        self.system_properties: dict[str, Any] = {
            "model_dir": model_dir,
            "gpu_id": None,
            "server_name": "modelyard",
            "worker_index": worker_index,
        }
        self._headers: dict[bytes, bytes] = {}
        self.response_custom_attributes: str | None = None

    def begin(
        self, headers: dict[bytes, bytes], response_custom_attributes: str | None = None
    ) -> None:
        """Point the context at a request: a new one, or (in a batch) one whose handlers
        already set ``response_custom_attributes``."""
        self._headers = headers
        self.response_custom_attributes = response_custom_attributes

    @property
    def request_headers(self) -> dict[str, str]:
        """The request's headers, names lower-cased."""
        return {k.decode("latin-1"): v.decode("latin-1") for k, v in self._headers.items()}

    def get_request_header(self, name: str) -> str | None:
        """One request header by (case-insensitive) name."""
        value = self._headers.get(name.lower().encode("latin-1"))
        return None if value is None else value.decode("latin-1")

    @property
    def custom_attributes(self) -> str | None:
        """The request's X-Amzn-SageMaker-Custom-Attributes, if any."""
        value = self._headers.get(CUSTOM_ATTRIBUTES)
        return None if value is None else value.decode("latin-1")

    def set_custom_attributes(self, value: str) -> None:
        """Send ``value`` back in the response's X-Amzn-SageMaker-Custom-Attributes."""
        self.response_custom_attributes = value
