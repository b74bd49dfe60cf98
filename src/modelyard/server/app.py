"""The HTTP face of the platform: one ASGI app on one port.

``POST /`` carries every AWS-protocol call: ``X-Amz-Target: SageMaker.<Op>`` (the SageMaker
API), ``X-Amz-Target: Logs_20140328.<Op>`` (CloudWatch Logs),
``X-Amz-Target: GraniteServiceVersion20100801.<Op>`` (CloudWatch metrics and alarms, awsJson
1.0), ``X-Amz-Target: AnyScaleFrontendService.<Op>`` (Application Auto Scaling, awsJson 1.1) and
form-encoded ``Action=GetCallerIdentity`` (STS). Every call is SigV4-signed with one of the
platform's keys.
``POST /endpoints/{name}/invocations`` (and ``/async-invocations``,
``/invocations-response-stream``) is the ``sagemaker-runtime`` data plane; it bypasses the
framework and goes straight to :class:`~modelyard.serving.router.Router`.
``PUT /BatchPutMetrics`` and ``POST /BatchGetMetrics`` are ``sagemaker-metrics`` (rest-json),
signed like the rest.
``GET /ping`` answers unsigned, for health checks and server discovery.
``GET /metrics`` (Prometheus text) answers unsigned only while the server listens on a loopback
address, since scrapers cannot sign; bound to any other address it wants a SigV4 signature,
so that no one on the network reads endpoint traffic unsigned.
"""

from __future__ import annotations

import ipaddress
import os
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from modelyard import __version__
from modelyard.api.dispatch import JsonDispatcher
from modelyard.api.errors import json_error_response_body, new_request_id, query_xml_error
from modelyard.api.rest_dispatch import RestJsonDispatcher
from modelyard.api.sigv4 import Principal, verify_request
from modelyard.api.sts import handle_sts
from modelyard.core.errors import ModelyardError, ValidationError
from modelyard.server.platform import Platform


def build_app(platform: Platform) -> ASGIApp:
    """The ASGI app serving ``platform``."""
    strict = os.environ.get("MODELYARD_STRICT_RESPONSES") == "1"
    dispatchers = {
        "SageMaker": JsonDispatcher("sagemaker", platform.sagemaker_operations(), strict),
        "Logs_20140328": JsonDispatcher("logs", platform.logs.operations(), strict),
        "GraniteServiceVersion20100801": JsonDispatcher(
            "cloudwatch", platform.cloudwatch_operations(), strict
        ),
        "AnyScaleFrontendService": JsonDispatcher(
            "application-autoscaling", platform.autoscaling.operations(), strict
        ),
    }

    metrics_api = RestJsonDispatcher(
        "sagemaker-metrics", platform.experiment_metrics.operations(), strict
    )

    async def authenticate(request: Request, body: bytes) -> Principal:
        return await run_in_threadpool(
            verify_request,
            request.method,
            # SigV4 signs the path as sent, before any percent-decoding
            request.scope.get("raw_path", request.url.path.encode()).decode("latin-1"),
            request.url.query,
            dict(request.headers),
            body,
            platform.lookup_secret,
        )

    async def aws(request: Request) -> Response:
        body = await request.body()
        target = request.headers.get("x-amz-target", "")
        prefix, _, operation = target.partition(".")
        rid = new_request_id()
        if not target:
            return await _sts(request, body, rid)
        dispatcher = dispatchers.get(prefix)
        try:
            await authenticate(request, body)
            if dispatcher is None:
                raise ValidationError(f"Unknown target {target}.")
        except ModelyardError as e:
            if dispatcher is not None:  # in the service's own protocol (content type, codes)
                return _response(*dispatcher.error(e, rid))
            return _response(*json_error_response_body(e, "sagemaker", rid))
        return _response(*await run_in_threadpool(dispatcher.dispatch, operation, body, rid))

    async def _sts(request: Request, body: bytes, rid: str) -> Response:
        try:
            principal = await authenticate(request, body)
        except ModelyardError as e:
            return _response(*query_xml_error(e, rid))
        form = dict(parse_qsl(body.decode("utf-8", "replace")))
        return _response(*handle_sts(form, principal, platform.settings.account_id))

    async def interrupt(request: Request) -> Response:
        body = await request.body()
        rid = new_request_id()
        try:
            await authenticate(request, body)
            name = request.path_params["name"]
            await run_in_threadpool(platform.training.interrupt, name)
        except ModelyardError as e:
            return _response(*json_error_response_body(e, "sagemaker", rid))
        return JSONResponse({"TrainingJobName": name, "Interrupted": True})

    async def sagemaker_metrics(request: Request) -> Response:
        body = await request.body()
        rid = new_request_id()
        try:
            await authenticate(request, body)
        except ModelyardError as e:
            return _response(*metrics_api.error(e, rid))
        answer = await run_in_threadpool(
            metrics_api.dispatch, request.method, request.url.path, body, rid
        )
        return _response(*answer)

    metrics_unsigned = _is_loopback(platform.settings.host)

    async def metrics(request: Request) -> Response:
        if not metrics_unsigned:
            try:
                await authenticate(request, await request.body())
            except ModelyardError as e:
                return _response(*json_error_response_body(e, "sagemaker", new_request_id()))
        text = platform.endpoint_metrics.render_prometheus()
        return Response(text, media_type="text/plain; version=0.0.4; charset=utf-8")

    async def ping(request: Request) -> Response:
        return JSONResponse({"status": "ok", "service": "modelyard", "version": __version__})

    control = Starlette(
        routes=[
            Route("/", aws, methods=["POST"]),
            Route("/ping", ping, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            Route("/_modelyard/training-jobs/{name}/interrupt", interrupt, methods=["POST"]),
            *[Route(path, sagemaker_metrics, methods=methods)
              for path, methods in metrics_api.paths().items()],
        ],
    )
    router = platform.router

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        # invocations skip the framework: they are the hot path
        if router.handles(scope):
            await router(scope, receive, send)
        else:
            await control(scope, receive, send)

    return app


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve to anything
        return False


def _response(status: int, headers: dict[str, str], body: bytes) -> Response:
    return Response(content=body, status_code=status, headers=headers)
