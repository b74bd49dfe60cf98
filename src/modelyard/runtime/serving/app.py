"""The container's three routes over the resolved handlers: ``/ping``, ``/invocations``,
``/execution-parameters``.

:meth:`InferenceApp.handle` is synchronous and runs inline in the worker's event loop: a worker
serves one request at a time and the router keeps several connections, so there is no thread
hop and no per-request task. Handler failures never escape: an :class:`InferenceError` becomes
its status, anything else a 500 whose body is the message and traceback (the platform turns it
into ``ModelError``). A handler that returns an iterator is answered in chunks (see
:mod:`.streams`). With batching on (:mod:`.batching`), invocations run a batch at a time
through :mod:`.batch_inference`, which answers each request with :func:`answer` or
:func:`failure` as :meth:`InferenceApp.invoke` does.
"""

from __future__ import annotations

import itertools
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

from modelyard.runtime.serving.context import CUSTOM_ATTRIBUTES, Context
from modelyard.runtime.serving.errors import InferenceError
from modelyard.runtime.serving.handlers import Handlers
from modelyard.runtime.serving.spec import WorkerSpec
from modelyard.runtime.serving.streams import StreamFailed, encoded_chunks, is_stream

#: request types that user handlers receive as ``str`` (the toolkit's UTF-8 types)
TEXT_TYPES = frozenset({b"application/json", b"text/csv"})
PLAIN = b"text/plain"


class Response(NamedTuple):
    """What goes back on the wire; ``headers`` are extra (name, value) pairs.

    With ``stream`` set the body is sent in chunks as the iterator yields them and ``body`` is
    unused; the iterator raises :class:`StreamFailed` when the handler fails midway.
    """

    status: int
    content_type: bytes
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = ()
    stream: Iterator[bytes] | None = None


class InferenceApp:
    """Routes requests of one worker to its model and handlers."""

    def __init__(self, handlers: Handlers, model: Any, spec: WorkerSpec, context: Context) -> None:
        self.handlers = handlers
        self.model = model
        self.context = context
        self.default_accept = handlers.default_accept
        self._text_bodies = handlers.transform_fn is not None or handlers.input_fn.user
        self._ping = Response(200, b"application/json", b'{"status": "Healthy"}\n')
        parameters = {
            "MaxConcurrentTransforms": spec.workers,
            "BatchStrategy": "MULTI_RECORD",
            "MaxPayloadInMB": spec.max_payload_mb,
        }
        self._parameters = Response(200, b"application/json", json.dumps(parameters).encode())

    def handle(
        self, method: bytes, path: bytes, headers: dict[bytes, bytes], body: bytes
    ) -> Response:
        """The response to one request."""
        return route(method, path, headers, body, self.invoke, self._ping, self._more)

    def _more(self, method: bytes, path: bytes) -> Response | None:
        if path == b"/execution-parameters" and method == b"GET":
            return self._parameters
        return None

    def invoke(self, headers: dict[bytes, bytes], body: bytes) -> Response:
        """Run the handlers on one request body."""
        self.context.begin(headers)
        try:
            handler_body, content_type, accept = self.request_parts(headers, body)
            return answer(self._run(handler_body, content_type, accept), accept, self.context)
        except Exception as e:
            return failure(e)

    def request_parts(
        self, headers: dict[bytes, bytes], body: bytes
    ) -> tuple[bytes | str, str, str]:
        """The body as the handlers get it, its content type and the Accept to answer with."""
        raw_type = headers.get(b"content-type", b"")
        accept = headers.get(b"accept", b"").decode("latin-1")
        if not accept or accept == "*/*":
            accept = self.default_accept
        return self._body_for_handlers(body, raw_type), raw_type.decode("latin-1"), accept

    def _run(self, body: bytes | str, content_type: str, accept: str) -> Any:
        h, context = self.handlers, self.context
        if h.transform_fn is not None:
            return h.transform_fn(context, self.model, body, content_type, accept)
        data = h.input_fn(context, body, content_type)
        prediction = h.predict_fn(context, data, self.model)
        if is_stream(prediction) and not h.output_fn.user:
            return prediction  # the default encoders know arrays, not streams: send it as it is
        return h.output_fn(context, prediction, accept)

    def _body_for_handlers(self, body: bytes, raw_type: bytes) -> bytes | str:
        # User handlers get JSON and CSV as text, as the toolkit gives them; the defaults
        # parse bytes, which spares a decode of every request.
        if self._text_bodies and raw_type.split(b";", 1)[0].strip().lower() in TEXT_TYPES:
            return body.decode("utf-8")
        return body


def answer(result: Any, accept: str, context: Context) -> Response:
    """The 200 response for what output_fn/transform_fn returned, with the custom attributes
    the handlers set on ``context``; a stream is begun first (see :func:`_begun`)."""
    payload, response_type = split_result(result, accept)
    stream = None if isinstance(payload, bytes) else _begun(payload)
    extra: tuple[tuple[bytes, bytes], ...] = ()
    attributes = context.response_custom_attributes
    if attributes is not None:
        extra = ((CUSTOM_ATTRIBUTES, attributes.encode("latin-1")),)
    if stream is not None:
        return Response(200, response_type.encode("latin-1"), b"", extra, stream)
    return Response(200, response_type.encode("latin-1"), payload, extra)  # type: ignore[arg-type]


def failure(e: Exception) -> Response:
    """The response to a handler's exception: an :class:`InferenceError`'s own status, else 500
    with the traceback as the body (printed into the instance's log as well)."""
    if isinstance(e, InferenceError):
        return error(e.status, e.message)
    if isinstance(e, StreamFailed):
        return error(500, e.message)
    text = "".join(traceback.format_exception(e))
    print(text, file=sys.stderr, end="")
    return error(500, text)


def route(
    method: bytes, path: bytes, headers: dict[bytes, bytes], body: bytes,
    invoke: Callable[[dict[bytes, bytes], bytes], Response], ping: Response,
    more: Callable[[bytes, bytes], Response | None],
) -> Response:
    """The container's routes: ``POST /invocations``, ``GET /ping``, then what ``more`` answers
    (None: no such route, 404)."""
    path = path.split(b"?", 1)[0]
    if path == b"/invocations":
        if method != b"POST":
            return error(405, "Use POST /invocations")
        return invoke(headers, body)
    if path == b"/ping" and method in (b"GET", b"HEAD"):
        return ping
    found = more(method, path)
    if found is None:
        return error(404, f"No route for {method.decode()} {path.decode('latin-1')}")
    return found


def split_result(result: Any, accept: str) -> tuple[bytes | Iterator[bytes], str]:
    """``(body, content_type)`` from what output_fn/transform_fn returned; an iterator is a
    streamed body (its items as bytes)."""
    content_type = accept
    if isinstance(result, tuple):
        result, content_type = result[0], result[1]
    if isinstance(result, str):
        return result.encode("utf-8"), content_type
    if isinstance(result, (bytes, bytearray, memoryview)):
        return bytes(result), content_type
    if is_stream(result):
        return encoded_chunks(result), content_type
    raise TypeError(
        f"the handler returned a {type(result).__name__}; return bytes, str or an iterator "
        "of them (or a (body, content_type) tuple)"
    )


def _begun(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """Run the stream up to its first chunk now: a handler that fails before producing
    anything gets an ordinary error status instead of a failed stream."""
    for first in chunks:
        return itertools.chain((first,), chunks)
    return iter(())


def error(status: int, message: str) -> Response:
    """A plain-text error response (204 has no body by definition)."""
    body = b"" if status == 204 else message.encode("utf-8", "replace")
    return Response(status, PLAIN, body)
