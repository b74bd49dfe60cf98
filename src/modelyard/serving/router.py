"""The data plane: ``POST /endpoints/{name}/invocations`` to a model-server instance and back.

This is the hot path, so it is a bare ASGI handler (no framework objects per request) that
forwards bytes over kept-alive connections to the instances: the request body and the model's
answer pass through untouched. A variant is drawn by weight (or named by ``TargetVariant``);
within it the instance with the fewest requests in flight gets the call.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol
from urllib.parse import unquote

from modelyard.api.errors import rest_json_error
from modelyard.api.sigv4 import verify_request
from modelyard.core.errors import ModelError, ModelyardError, ServiceUnavailable, ValidationError
from modelyard.core.settings import Settings
from modelyard.runtime.serving.loading import HEADER as LOADING_HEADER
from modelyard.runtime.serving.loading import Loading
from modelyard.serving import multimodel
from modelyard.serving.capture import Capturer
from modelyard.serving.routes import Route, RoutingTable, VariantRoute
from modelyard.serving.serverless import COLD_START_TIMEOUT, Demand, Throttled
from modelyard.serving.shadows import ShadowTraffic
from modelyard.serving.upstream import Upstream, UpstreamClosed

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_PREFIX = "/endpoints/"
_SUFFIX = "/invocations"
ASYNC_SUFFIX = "/async-invocations"
STREAM_SUFFIX = "/invocations-response-stream"
INVOCATION_TIMEOUT = 60.0
# request headers passed to the container as they are
_FORWARDED = (
    b"x-amzn-sagemaker-custom-attributes",
    b"x-amzn-sagemaker-inference-id",
    b"x-amzn-sagemaker-target-model",
)


class InvocationObserver(Protocol):
    """Receives one call per InvokeEndpoint (for metrics); must be cheap and never raise.

    ``status`` is the model server's own when it answered, else the one the caller got.
    """

    def observe(self, endpoint: str, variant: str | None, status: int,
                model_seconds: float, total_seconds: float) -> None: ...

    def observe_loading(self, endpoint: str, variant: str, loading: Loading) -> None:
        """What a multi-model invocation spent making its model ready."""


class Router:
    """Answers InvokeEndpoint from the routing table the endpoint controller publishes.

    ``observer`` (metrics) sees every invocation. ``extra_routes`` maps a path suffix
    (``/async-invocations``, ``/invocations-response-stream``) to a raw ASGI handler that
    capabilities register; unknown suffixes never reach the router.
    """

    def __init__(self, settings: Settings, table: RoutingTable,
                 lookup_secret: Callable[[str], str | None]) -> None:
        self.settings = settings
        self.table = table
        self.lookup_secret = lookup_secret
        self.upstreams: dict[int, Upstream] = {}
        self.observer: InvocationObserver | None = None
        self.capturer: Capturer | None = None
        self.demand = Demand()  # replaced by the platform with the controller's
        self.wake: Callable[[], None] = lambda: None
        self.extra_routes: dict[str, Callable[[Scope, Receive, Send], Awaitable[None]]] = {}
        self.shadows = ShadowTraffic(self)
        self._seen: object = None  # the routes the upstream pool was last pruned for

    def handles(self, scope: Scope) -> bool:
        path: str = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(_PREFIX):
            return False
        return path.endswith(_SUFFIX) or any(path.endswith(s) for s in self.extra_routes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        if not path.endswith(_SUFFIX):
            suffix = next(s for s in self.extra_routes if path.endswith(s))
            await self.extra_routes[suffix](scope, receive, send)
            return
        started = time.perf_counter()
        body = await read_body(receive)
        headers = {k: v for k, v in scope["headers"]}
        probe: list[Any] = [None, None, 0.0]  # endpoint, variant, model seconds of this call
        try:
            status, out_headers, out_body = await self._invoke(scope, headers, body, probe)
            observed = status
        except ModelyardError as e:
            status, out_headers, out_body = error_response(e)
            # metrics count the model's own status (SageMaker's 4XX/5XX), not ModelError's 424
            observed = e.original_status if isinstance(e, ModelError) else status
        if self.observer is not None and probe[0] is not None:
            endpoint, variant, model_seconds = probe
            self.observer.observe(endpoint, variant, observed, model_seconds, time.perf_counter() - started)
        out_headers.append((b"content-length", str(len(out_body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": out_body})

    async def _invoke(
        self, scope: Scope, headers: dict[bytes, bytes], body: bytes, probe: list[Any]
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        self.authenticate(scope, headers, body)
        name = endpoint_name(scope["path"], _SUFFIX)
        variant, upstream = await self.choose(name, headers.get(b"x-amzn-sagemaker-target-variant"))
        probe[:2] = name, variant.name
        multimodel.check_target(name, variant, headers.get(b"x-amzn-sagemaker-target-model"))
        forward = forward_headers(headers)
        route = self.table.routes.get(name)
        if route is not None and route.shadows:
            self.shadows.mirror(route, forward, body)
        model_started = time.perf_counter()
        try:
            status, reply_headers, reply = await asyncio.wait_for(
                upstream.post(b"/invocations", forward, body), INVOCATION_TIMEOUT)
        except TimeoutError as e:
            raise ModelError(variant.name, 408, "The model did not answer within "
                             f"{INVOCATION_TIMEOUT:.0f} s: timed out", self.settings.account_id) from e
        except UpstreamClosed as e:
            raise ServiceUnavailable(
                f"The model server of variant {variant.name} closed the connection before answering; "
                "retry the request."
            ) from e
        finally:
            probe[2] = time.perf_counter() - model_started
        if variant.multi_model and self.observer is not None:
            loading = Loading.parse(reply_headers.get(LOADING_HEADER))
            if loading is not None:
                self.observer.observe_loading(name, variant.name, loading)
        if status >= 300:
            refused = multimodel.refusal(reply_headers, reply)  # the caller's, not the model's
            if refused is not None:
                raise refused
            text = reply.decode("utf-8", "replace")
            raise ModelError(variant.name, status, text, self.settings.account_id)
        if route is not None and route.capture and self.capturer is not None:
            self.capture(route, variant.name, forward, body, reply_headers, reply)
        out = [(b"content-type", reply_headers.get(b"content-type", b"application/octet-stream")),
               (b"x-amzn-invoked-production-variant", variant.name.encode())]
        if b"x-amzn-sagemaker-custom-attributes" in reply_headers:
            out.append((b"x-amzn-sagemaker-custom-attributes", reply_headers[b"x-amzn-sagemaker-custom-attributes"]))
        return 200, out, reply

    def capture(self, route: Route, variant: str, forward: list[tuple[bytes, bytes]], body: bytes,
                reply_headers: dict[bytes, bytes], reply: bytes) -> None:
        """Hand one successful invocation to data capture (the route's config samples it)."""
        assert route.capture is not None and self.capturer is not None
        inference_id = dict(forward).get(b"x-amzn-sagemaker-inference-id")
        self.capturer.record(
            route.endpoint, variant, route.capture,
            (forward[0][1].decode("latin-1"), body),
            (reply_headers.get(b"content-type", b"application/octet-stream").decode("latin-1"), reply),
            inference_id.decode("latin-1") if inference_id else None,
        )

    async def choose(self, name: str, wanted: bytes | None) -> tuple[VariantRoute, Upstream]:
        """The variant to call (``wanted``, else drawn by weight) and its least busy instance.

        ValidationError when the endpoint has no route or ``wanted`` is not one of its variants.
        A serverless variant with no instance is cold-started (the caller waits); one at its
        MaxConcurrency throttles.
        """
        variant = self._variant(name, wanted)
        if variant.max_concurrency is not None:
            self.demand.touch(name, variant.name)
            if not variant.ports:
                variant = await self._cold_start(name, variant.name)
            busy = sum(self.upstreams[p].in_flight for p in variant.ports if p in self.upstreams)
            if busy >= variant.max_concurrency:
                raise Throttled(
                    f"Variant {variant.name} of endpoint {name} is at its MaxConcurrency "
                    f"({variant.max_concurrency}); retry the request."
                )
        return variant, self.least_busy(variant.ports)

    def _variant(self, name: str, wanted: bytes | None) -> VariantRoute:
        routes = self.table.routes
        if routes is not self._seen:
            self._forget({p for r in routes.values() for v in r.variants for p in v.ports})
            self._seen = routes
        route = routes.get(name)
        if route is None:
            raise ValidationError(f"Endpoint {name} of account {self.settings.account_id} not found.")
        variant = route.pick(wanted.decode("latin-1") if wanted else None)
        if variant is None:
            raise ValidationError(f"The variant {wanted!r} does not exist in endpoint {name}.".replace("b'", "'"))
        return variant

    async def _cold_start(self, name: str, variant: str) -> VariantRoute:
        """Wait until the controller has started an instance for a serverless variant."""
        self.wake()
        deadline = time.monotonic() + COLD_START_TIMEOUT
        while time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            route = self.table.routes.get(name)
            found = next((v for v in route.variants if v.name == variant), None) if route else None
            if found is not None and found.ports:
                return found
            self.demand.touch(name, variant)
        raise ServiceUnavailable(f"Variant {variant} of endpoint {name} did not start in time; retry the request.")

    def authenticate(self, scope: Scope, headers: dict[bytes, bytes], body: bytes) -> None:
        """Check the request's SigV4 signature (raises the error the client sees)."""
        verify_request(
            scope["method"],
            scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
            scope.get("query_string", b"").decode("latin-1"),
            {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()},
            body,
            self.lookup_secret,
        )

    def least_busy(self, ports: tuple[int, ...]) -> Upstream:
        """The instance among ``ports`` with the fewest requests in flight."""
        best: Upstream | None = None
        for port in ports:
            upstream = self.upstreams.get(port)
            if upstream is None:
                upstream = self.upstreams[port] = Upstream(port)
            if best is None or upstream.in_flight < best.in_flight:
                best = upstream
        assert best is not None  # a route never has a variant without ports
        return best

    def _forget(self, live_ports: set[int]) -> None:
        """Drop connections to instances that left the table."""
        for port in [p for p in self.upstreams if p not in live_ports]:
            self.upstreams.pop(port).close()


def endpoint_name(path: str, suffix: str) -> str:
    """``/endpoints/{name}{suffix}`` → the endpoint name."""
    return unquote(path[len(_PREFIX):-len(suffix)])


def forward_headers(headers: dict[bytes, bytes], content_type: bytes = b"content-type",
                    accept: bytes = b"accept") -> list[tuple[bytes, bytes]]:
    """The headers the container gets, its Content-Type and Accept read from the request
    headers named ``content_type`` and ``accept`` (the async and streaming operations use
    ``X-Amzn-SageMaker-*`` names). botocore sends no Content-Type when the caller gave none."""
    forward = [(b"content-type", headers.get(content_type, b"application/octet-stream"))]
    if accept in headers:
        forward.append((b"accept", headers[accept]))
    return forward + [(k, headers[k]) for k in _FORWARDED if k in headers]


def error_response(error: ModelyardError) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """A runtime error as ``(status, ASGI headers, body)``."""
    status, headers, body = rest_json_error(error, _error_members(error), service="sagemaker-runtime")
    return status, [(k.lower().encode(), v.encode()) for k, v in headers.items()], body


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _error_members(error: ModelyardError) -> dict[str, Any] | None:
    if isinstance(error, ModelError):
        return {"OriginalStatusCode": error.original_status, "OriginalMessage": error.original_message}
    return None
