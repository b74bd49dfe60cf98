"""Finding the local server: ``<home>/server.json`` holds the URL and pid of a running one.

The server writes the file when it starts listening and removes it on a clean shutdown; a file
whose pid is gone (the server was killed) is ignored.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

SERVER_FILE = "server.json"


def write_server_file(home: Path, url: str) -> None:
    path = home / SERVER_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"url": url, "pid": os.getpid()}))
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
    try:
        info = json.loads((home / SERVER_FILE).read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(info["url"])
