"""Running the server: the platform, its HTTP app and a discovery file for local clients.

The server records its URL in ``<home>/server.json`` (see :mod:`modelyard.core.discovery`) so
that the CLI and the SDK on the same machine find it without configuration.

With a managed S3 gateway (``modelyard server --s3``) a SeaweedFS process is started first,
with its data in ``<home>/seaweedfs`` and the platform's own key pair, so one pair signs both
the SageMaker API and S3; ``s3://`` URIs then go to it. It is stopped when the server stops.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING

import uvicorn

from modelyard.core.discovery import remove_server_file, write_server_file
from modelyard.core.settings import Settings
from modelyard.server.app import build_app
from modelyard.server.platform import Platform

if TYPE_CHECKING:
    from modelyard.artifacts.seaweedfs import S3Gateway

log = logging.getLogger(__name__)


def serve(settings: Settings, *, s3_port: int | None = None) -> None:
    """Run the control plane in this process until SIGINT/SIGTERM.

    ``s3_port`` set (0 picks a free port) starts a managed S3 gateway on 127.0.0.1 and points
    ``settings``' S3 endpoint and keys at it, overriding any configured endpoint.
    """
    with _terminate_raises():
        if s3_port is None:
            _run(settings, s3_url=None)
            return
        gateway = _start_managed_gateway(settings, s3_port)
        try:
            managed = dataclasses.replace(
                settings,
                s3_endpoint_url=gateway.endpoint_url,
                s3_access_key_id=gateway.access_key_id,
                s3_secret_access_key=gateway.secret_access_key,
            )
            _run(managed, s3_url=gateway.endpoint_url)
        finally:
            gateway.stop()


def _run(settings: Settings, s3_url: str | None) -> None:
    platform = Platform(settings)
    sock = _bind(settings.host, settings.port)
    url = f"http://{settings.host}:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        build_app(platform), log_level="warning", access_log=False, lifespan="off",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    platform.start()
    print(f"modelyard server listening on {url} (home {settings.home})", flush=True)
    if s3_url is not None:
        print(f"S3 artifact store (SeaweedFS) on {s3_url}", flush=True)
    # Last: whoever finds the discovery file may rely on the lines above being out.
    write_server_file(settings.home, url, s3_url)
    try:
        server.run(sockets=[sock])
    finally:
        platform.close()
        remove_server_file(settings.home)


def _start_managed_gateway(settings: Settings, port: int) -> S3Gateway:
    # Imported here: boto3 and the gateway code are only needed with --s3.
    from modelyard.artifacts.seaweedfs import start_gateway
    from modelyard.core.credentials import load_or_create_credentials

    credentials = load_or_create_credentials(settings.home)
    log.info("starting the SeaweedFS S3 gateway in %s", settings.home / "seaweedfs")
    return start_gateway(
        settings.home / "seaweedfs",
        access_key_id=credentials.access_key_id,
        secret_access_key=credentials.secret_access_key,
        region=settings.region,
        s3_port=port,
    )


@contextmanager
def _terminate_raises() -> Iterator[None]:
    """Turn SIGTERM into SystemExit for the block, so that ``finally`` clauses run.

    Python's default SIGTERM ends the process at once, which would leave ``weed`` running in
    its own session and the discovery file in place. uvicorn handles SIGTERM while serving
    but re-raises it through the previous handler on the way out: this one.
    """

    def _raise(signum: int, frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread: signals are not ours to handle
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP (not 0) makes asyncio set TCP_NODELAY on accepted connections; without it
    # every response on a kept-alive connection waits ~40 ms for the client's delayed ACK
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock
