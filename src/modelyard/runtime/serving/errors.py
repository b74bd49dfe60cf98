"""Errors of the inference path, each carrying the HTTP status the container answers with.

The tree::

    InferenceError          root; ``status`` is the response status, the message its body
    ├── UnsupportedContentType   415: the body cannot be decoded as its Content-Type says
    ├── UnsupportedAccept        406: no encoder for any type the Accept header names
    ├── PredictionFailed         400: the model refused the decoded data (built-in handlers)
    └── NoContent                204: the body is empty (built-in XGBoost handlers)

Anything else a handler raises is answered with 500 and its traceback (see :mod:`.app`).
Startup failures are :class:`modelyard.runtime.failures.ClientError`.
"""

from __future__ import annotations


class InferenceError(Exception):
    """A request the container refuses with ``status``."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UnsupportedContentType(InferenceError):
    """The request body cannot be decoded (unknown Content-Type or malformed data)."""

    status = 415


class UnsupportedAccept(InferenceError):
    """None of the Accept header's types can be produced."""

    status = 406

    def __init__(self, accept: str, supported: list[str]) -> None:
        super().__init__(f"Accept {accept!r} is not supported; use one of {', '.join(supported)}")


class PredictionFailed(InferenceError):
    """The model rejected well-formed input (wrong feature count, for instance)."""

    status = 400


class NoContent(InferenceError):
    """An empty request body: nothing to predict (answered 204 with no body)."""

    status = 204

    def __init__(self) -> None:
        super().__init__("")
