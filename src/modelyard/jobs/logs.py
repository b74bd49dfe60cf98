"""Job logs as CloudWatch Logs streams: ``/aws/sagemaker/TrainingJobs`` → ``<job>/algo-1-<epoch>``.

Each host's runtime writes ``logs.jsonl``; a stream is that file. Tokens are byte offsets into it
(``f/<offset>`` forward), so reading resumes exactly where the last page ended and never loads
the whole file.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

from modelyard.core.errors import ValidationError


@dataclasses.dataclass(frozen=True)
class Stream:
    """One host's log of one attempt of one job."""

    name: str
    path: Path
    created_ms: int


@dataclasses.dataclass(frozen=True)
class EventsPage:
    events: list[dict[str, Any]]
    next_forward: str
    next_backward: str


def stream_info(stream: Stream) -> dict[str, Any]:
    """DescribeLogStreams' entry for one stream."""
    try:
        st = os.stat(stream.path)
        size, last = st.st_size, int(st.st_mtime * 1000)
    except FileNotFoundError:
        size, last = 0, stream.created_ms
    return {
        "logStreamName": stream.name,
        "creationTime": stream.created_ms,
        "firstEventTimestamp": stream.created_ms,
        "lastEventTimestamp": last,
        "lastIngestionTime": last,
        "storedBytes": size,
    }


def read_events(
    stream: Stream,
    token: str | None,
    limit: int = 10000,
    start_from_head: bool = False,
    start_ms: int | None = None,
    end_ms: int | None = None,
    max_bytes: int = 1 << 20,
) -> EventsPage:
    """A page of events, GetLogEvents-style.

    Without a token, reading starts at the head when ``start_from_head`` and otherwise at the
    last ``limit`` events (as CloudWatch does). The forward token of the last page stays put, so
    a follower polls it until new lines arrive.
    """
    if token and token.startswith("b/"):
        # a backward token pages towards the head: the ``limit`` lines that end at it
        offset = _tail_offset(stream.path, limit, end=_decode(token))
    elif token:
        offset = _decode(token)
    else:
        offset = 0 if start_from_head else _tail_offset(stream.path, limit)
    events: list[dict[str, Any]] = []
    position = offset
    try:
        f = open(stream.path, "rb")
    except FileNotFoundError:
        return EventsPage([], _forward(offset), _backward(offset))
    with f:
        f.seek(offset)
        read = 0
        while len(events) < limit and read < max_bytes:
            raw = f.readline()
            if not raw.endswith(b"\n"):
                break  # a line still being written; take it on the next call
            read += len(raw)
            position += len(raw)
            event = _event(raw)
            if event is None:
                continue
            if start_ms is not None and event["timestamp"] < start_ms:
                continue
            if end_ms is not None and event["timestamp"] >= end_ms:
                continue
            events.append(event)
    return EventsPage(events, _forward(position), _backward(offset))


def _event(raw: bytes) -> dict[str, Any] | None:
    try:
        item = json.loads(raw)
    except ValueError:
        return None
    ts = int(item.get("t", 0))
    return {"timestamp": ts, "message": str(item.get("m", "")), "ingestionTime": ts}


def _tail_offset(path: Path, lines: int, end: int | None = None) -> int:
    """Byte offset where the last ``lines`` complete lines before byte ``end`` begin."""
    try:
        size = os.path.getsize(path) if end is None else end
    except FileNotFoundError:
        return 0
    block = 64 * 1024
    with open(path, "rb") as f:
        end = size
        seen = 0
        while end > 0:
            start = max(0, end - block)
            f.seek(start)
            chunk = f.read(end - start)
            for i in range(len(chunk) - 1, -1, -1):
                if chunk[i] == 0x0A and start + i + 1 < size:
                    seen += 1
                    if seen > lines:
                        return start + i + 1
            end = start
    return 0


def _forward(offset: int) -> str:
    return f"f/{offset:020d}"


def _backward(offset: int) -> str:
    return f"b/{offset:020d}"


def _decode(token: str) -> int:
    kind, _, number = token.partition("/")
    if kind not in ("f", "b") or not number.isdigit():
        raise ValidationError("The specified nextToken is invalid.")
    return int(number)
