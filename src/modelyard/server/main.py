"""Running the server: the platform, its HTTP app and a discovery file for local clients.

The server records its URL in ``<home>/server.json`` (see :mod:`modelyard.core.discovery`) so
that the CLI and the SDK on the same machine find it without configuration.
"""

from __future__ import annotations

import logging
import socket

import uvicorn

from modelyard.core.discovery import remove_server_file, write_server_file
from modelyard.core.settings import Settings
from modelyard.server.app import build_app
from modelyard.server.platform import Platform

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    """Run the control plane in this process until SIGINT/SIGTERM."""
    platform = Platform(settings)
    sock = _bind(settings.host, settings.port)
    url = f"http://{settings.host}:{sock.getsockname()[1]}"
    config = uvicorn.Config(
        build_app(platform), log_level="warning", access_log=False, lifespan="off",
        timeout_graceful_shutdown=5,
    )
    server = uvicorn.Server(config)
    platform.start()
    write_server_file(settings.home, url)
    print(f"modelyard server listening on {url} (home {settings.home})", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        platform.close()
        remove_server_file(settings.home)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock

