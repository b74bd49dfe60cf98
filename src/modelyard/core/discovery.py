"""Finding the local server: ``<home>/server.json`` holds the URL and pid of a running one.

The server writes the file when it starts listening and removes it on a clean shutdown; a file
whose pid is gone (the server was killed) is ignored. A server started with ``--s3`` also
records the endpoint of the S3 gateway it manages as ``s3_url``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SERVER_FILE = "server.json"


def write_server_file(home: Path, url: str, s3_url: str | None = None) -> None:
    """Record this process as the server for ``home`` (atomically replacing an old record)."""
    info: dict[str, Any] = {"url": url, "pid": os.getpid()}
    if s3_url is not None:
        info["s3_url"] = s3_url
    path = home / SERVER_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(info))
    tmp.replace(path)


def remove_server_file(home: Path) -> None:
    path = home / SERVER_FILE
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def running_server_url(home: Path) -> str | None:
    """The URL of a live server using ``home``, or None."""
    info = _live_server_info(home)
    return None if info is None else str(info["url"])


def running_s3_url(home: Path) -> str | None:
    """The endpoint of the S3 gateway a live server for ``home`` manages, or None."""
    info = _live_server_info(home)
    return None if info is None or "s3_url" not in info else str(info["s3_url"])


def _live_server_info(home: Path) -> dict[str, Any] | None:
    try:
        info = json.loads((home / SERVER_FILE).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return info if isinstance(info.get("url"), str) else None
