"""The data plane: ``POST /endpoints/{name}/invocations`` to a model-server instance and back.

This is the hot path, so it is a bare ASGI handler (no framework objects per request) that
forwards bytes over kept-alive connections to the instances: the request body and the model's
answer pass through untouched. A variant is drawn by weight (or named by ``TargetVariant``);
within it the instance with the fewest requests in flight gets the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from urllib.parse import unquote

from modelyard.api.errors import rest_json_error
from modelyard.api.sigv4 import verify_request
from modelyard.core.errors import ModelError, ModelyardError, ServiceUnavailable, ValidationError
from modelyard.core.settings import Settings
from modelyard.serving.routes import RoutingTable
from modelyard.serving.upstream import Upstream, UpstreamClosed

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

_PREFIX = "/endpoints/"
_SUFFIX = "/invocations"
INVOCATION_TIMEOUT = 60.0
# request headers passed to the container as they are
_FORWARDED = (
    b"accept",
    b"x-amzn-sagemaker-custom-attributes",
    b"x-amzn-sagemaker-inference-id",
    b"x-amzn-sagemaker-target-model",
)


class Router:
    """Answers InvokeEndpoint from the routing table the endpoint controller publishes."""

    def __init__(self, settings: Settings, table: RoutingTable,
                 lookup_secret: Callable[[str], str | None]) -> None:
        self.settings = settings
        self.table = table
        self.lookup_secret = lookup_secret
        self.upstreams: dict[int, Upstream] = {}
        self._seen: object = None  # the routes the upstream pool was last pruned for

    @staticmethod
    def handles(scope: Scope) -> bool:
        path: str = scope.get("path", "")
        return scope["type"] == "http" and path.startswith(_PREFIX) and path.endswith(_SUFFIX)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        headers = {k: v for k, v in scope["headers"]}
        try:
            status, out_headers, out_body = await self._invoke(scope, headers, body)
        except ModelyardError as e:
            status, error_headers, out_body = rest_json_error(e, _error_members(e), service="sagemaker-runtime")
            out_headers = [(k.lower().encode(), v.encode()) for k, v in error_headers.items()]
        out_headers.append((b"content-length", str(len(out_body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": out_body})

    async def _invoke(self, scope: Scope, headers: dict[bytes, bytes], body: bytes) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        self._authenticate(scope, headers, body)
        name = unquote(scope["path"][len(_PREFIX):-len(_SUFFIX)])
        routes = self.table.routes
        if routes is not self._seen:
            self._forget({p for r in routes.values() for v in r.variants for p in v.ports})
            self._seen = routes
        route = routes.get(name)
        if route is None:
            raise ValidationError(f"Endpoint {name} of account {self.settings.account_id} not found.")
        wanted = headers.get(b"x-amzn-sagemaker-target-variant")
        variant = route.pick(wanted.decode("latin-1") if wanted else None)
        if variant is None:
            raise ValidationError(f"The variant {wanted!r} does not exist in endpoint {name}.".replace("b'", "'"))
        upstream = self._least_busy(variant.ports)
        forward = [(b"content-type", headers.get(b"content-type", b"application/octet-stream"))]
        forward += [(k, headers[k]) for k in _FORWARDED if k in headers]
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
        if status >= 300:
            text = reply.decode("utf-8", "replace")
            raise ModelError(variant.name, status, text, self.settings.account_id)
        out = [(b"content-type", reply_headers.get(b"content-type", b"application/octet-stream")),
               (b"x-amzn-invoked-production-variant", variant.name.encode())]
        if b"x-amzn-sagemaker-custom-attributes" in reply_headers:
            out.append((b"x-amzn-sagemaker-custom-attributes", reply_headers[b"x-amzn-sagemaker-custom-attributes"]))
        return 200, out, reply

    def _authenticate(self, scope: Scope, headers: dict[bytes, bytes], body: bytes) -> None:
        verify_request(
            scope["method"],
            scope.get("raw_path", scope["path"].encode()).decode("latin-1"),
            scope.get("query_string", b"").decode("latin-1"),
            {k.decode("latin-1"): v.decode("latin-1") for k, v in headers.items()},
            body,
            self.lookup_secret,
        )

    def _least_busy(self, ports: tuple[int, ...]) -> Upstream:
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


async def _read_body(receive: Receive) -> bytes:
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
