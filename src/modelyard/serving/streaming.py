"""InvokeEndpointWithResponseStream: ``POST /endpoints/{name}/invocations-response-stream``.

The request is checked and routed as InvokeEndpoint is (:class:`~modelyard.serving.router.Router`
does both); the instance's answer is relayed as it arrives, each chunk as one ``PayloadPart``
event of an ``application/vnd.amazon.eventstream`` body. A handler that does not stream gives
one chunk, hence one event.

What can go wrong, and what the caller sees:

- before the model answers (unknown endpoint, bad signature, instance gone): the ordinary
  rest-json error, as InvokeEndpoint would give;
- the model answers non-2xx: ``ModelError`` (424), as InvokeEndpoint would give;
- the stream fails after it started (the handler raised, the instance died, the model was
  silent for :data:`~modelyard.serving.router.INVOCATION_TIMEOUT` seconds): a
  ``ModelStreamError`` event ends the stream; an internal fault, ``InternalStreamFailure``.

The timeout is per chunk, not per call: a model may stream for as long as it keeps talking.
"""

from __future__ import annotations

import asyncio
import logging
import time

from modelyard.core.errors import ModelError, ModelyardError, ServiceUnavailable
from modelyard.serving import eventstream, multimodel
from modelyard.serving.router import (
    INVOCATION_TIMEOUT,
    STREAM_SUFFIX,
    Receive,
    Router,
    Scope,
    Send,
    endpoint_name,
    error_response,
    forward_headers,
    read_body,
)
from modelyard.serving.upstream import UpstreamClosed

log = logging.getLogger(__name__)

#: ModelStreamError.ErrorCode values the service documents
STREAM_BROKEN = "StreamBroken"
TIME_EXCEEDED = "ModelInvocationTimeExceeded"


class ResponseStreamHandler:
    """The raw ASGI handler the router calls for the ``/invocations-response-stream`` suffix."""

    def __init__(self, router: Router) -> None:
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        body = await read_body(receive)
        headers = {k: v for k, v in scope["headers"]}
        try:
            self.router.authenticate(scope, headers, body)
            name = endpoint_name(scope["path"], STREAM_SUFFIX)
            variant, upstream = await self.router.choose(name, headers.get(b"x-amzn-sagemaker-target-variant"))
            multimodel.refuse_untargeted(name, variant, "InvokeEndpointWithResponseStream")
        except ModelyardError as e:
            await _send_error(send, e)
            return
        relay = _Relay(send, variant.name)
        forward = forward_headers(headers, accept=b"x-amzn-sagemaker-accept")
        try:
            async with asyncio.timeout(INVOCATION_TIMEOUT) as relay.deadline:
                failure = await upstream.stream(b"/invocations", forward, body, relay.head, relay.chunk)
            await relay.finish(failure, self.router.settings.account_id)
        except TimeoutError:
            await relay.fail(TIME_EXCEEDED, ModelError(
                variant.name, 408, f"The model did not answer within {INVOCATION_TIMEOUT:.0f} s: timed out",
                self.router.settings.account_id))
        except UpstreamClosed:
            await relay.fail(STREAM_BROKEN, ServiceUnavailable(
                f"The model server of variant {variant.name} closed the connection before answering; "
                "retry the request."))
        except Exception as e:  # a fault of ours: say so in the stream, keep the details in the log
            log.exception("streaming from endpoint %s failed", name)
            await relay.fail(None, ModelyardError(f"The stream failed: {type(e).__name__}"))
        observer = self.router.observer
        if observer is not None:
            observer.observe(name, variant.name, relay.status, time.perf_counter() - started,
                             time.perf_counter() - started)


class _Relay:
    """Turns the instance's answer into events, or into an error while nothing was sent."""

    def __init__(self, send: Send, variant: str) -> None:
        self.send = send
        self.variant = variant
        self.status = 200
        self.streaming = False  # the event stream has begun: errors must be events now
        self.error_body: list[bytes] = []
        self.deadline: asyncio.Timeout | None = None

    async def head(self, status: int, headers: dict[bytes, bytes]) -> None:
        self.status = status
        if status >= 300:
            return  # a ModelError, sent whole once the body is read
        out = [(b"content-type", eventstream.CONTENT_TYPE.encode()),
               (b"x-amzn-sagemaker-content-type", headers.get(b"content-type", b"application/octet-stream")),
               (b"x-amzn-invoked-production-variant", self.variant.encode())]
        if b"x-amzn-sagemaker-custom-attributes" in headers:
            out.append((b"x-amzn-sagemaker-custom-attributes", headers[b"x-amzn-sagemaker-custom-attributes"]))
        await self.send({"type": "http.response.start", "status": 200, "headers": out})
        self.streaming = True

    async def chunk(self, data: bytes) -> None:
        if self.deadline is not None:  # the model is still talking: it gets another full period
            self.deadline.reschedule(asyncio.get_running_loop().time() + INVOCATION_TIMEOUT)
        if not self.streaming:
            self.error_body.append(data)
            return
        await self.send({"type": "http.response.body", "body": eventstream.payload_part(data), "more_body": True})

    async def finish(self, failure: str | None, account: str) -> None:
        """End the response: the stream's last event, or the model's error."""
        if not self.streaming:
            text = b"".join(self.error_body).decode("utf-8", "replace")
            await _send_error(self.send, ModelError(self.variant, self.status, text, account))
            return
        last = b""
        if failure is not None:
            last = eventstream.exception("ModelStreamError", {"Message": failure, "ErrorCode": STREAM_BROKEN})
        await self.send({"type": "http.response.body", "body": last})

    async def fail(self, code: str | None, error: ModelyardError) -> None:
        """End the response after a failure of the call itself: a ``ModelStreamError`` with
        ``code``, or ``InternalStreamFailure`` when ``code`` is None."""
        if not self.streaming:
            self.status = error.status
            await _send_error(self.send, error)
            return
        if code is None:
            last = eventstream.exception("InternalStreamFailure", {"Message": error.message})
        else:
            last = eventstream.exception("ModelStreamError", {"Message": error.message, "ErrorCode": code})
        await self.send({"type": "http.response.body", "body": last})


async def _send_error(send: Send, error: ModelyardError) -> None:
    status, headers, body = error_response(error)
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
