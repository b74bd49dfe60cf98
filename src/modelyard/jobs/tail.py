"""Incremental reading of the append-only JSON-lines files a job host writes.

The runtime appends whole lines and flushes each one; a reader can still catch a line half
written, so a trailing fragment without its newline is left for the next read.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_new_lines(path: Path, offset: int, max_bytes: int = 4 << 20) -> tuple[list[dict[str, Any]], int]:
    """Parse the complete lines after byte ``offset``; return them and the new offset.

    At most ``max_bytes`` are read per call so that a chatty job cannot stall a reconcile pass;
    the caller reads again on its next pass. A line that is not valid JSON is skipped.
    """
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            chunk = f.read(max_bytes)
    except FileNotFoundError:
        return [], offset
    end = chunk.rfind(b"\n")
    if end < 0:
        return [], offset
    items = []
    for raw in chunk[: end + 1].splitlines():
        try:
            items.append(json.loads(raw))
        except ValueError:
            continue
    return items, offset + end + 1
