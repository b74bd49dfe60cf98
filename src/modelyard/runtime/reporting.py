"""The two append-only report files of a host dir: ``events.jsonl`` and ``logs.jsonl``.

The controller tails both files while the job runs, so every record is one complete line,
written and flushed at once. One :class:`Reporter` per runtime process is the only writer;
its methods are thread-safe (the stdout and stderr pumps and the checkpoint syncer all log).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, TypeVar

from modelyard.runtime.plan import EVENTS_FILE, LOGS_FILE

P = TypeVar("P")

#: prefix of the lines the runtime itself writes into logs.jsonl, so readers tell them apart
RUNTIME_PREFIX = "[modelyard] "


class Reporter:
    """Append events and log lines to a host dir; one instance per runtime process.

    Example::

        reporter = Reporter(host_dir)
        reporter.status("Downloading", "Downloading input data")
        reporter.log("epoch 1 loss 0.3")
        reporter.exit(0, None)
    """

    def __init__(self, host_dir: Path) -> None:
        self._lock = threading.Lock()
        # Line-buffered text files: one write + flush per record keeps the tail readers
        # from ever seeing half a line.
        self._events: IO[str] = open(host_dir / EVENTS_FILE, "a", encoding="utf-8")
        self._logs: IO[str] = open(host_dir / LOGS_FILE, "a", encoding="utf-8")
        self._exited = False

    def status(self, status: str, message: str) -> None:
        """Record a secondary-status change."""
        self._event({"event": "status", "status": status, "message": message})
        self.runtime_log(message)

    def log(self, line: str) -> None:
        """Record one line of the work's output (no trailing newline)."""
        record = {"t": int(time.time() * 1000), "m": line}
        self._write(self._logs, record)

    def runtime_log(self, line: str) -> None:
        """Record a line written by the runtime itself (downloads, pip, uploads ...)."""
        self.log(RUNTIME_PREFIX + line)

    def exit(self, code: int, failure: str | None) -> None:
        """Record the final outcome; only the first call counts (the event is written once)."""
        with self._lock:
            if self._exited:
                return
            self._exited = True
        self._event({"event": "exit", "code": code, "failure": failure})

    def close(self) -> None:
        """Close both files."""
        with self._lock:
            self._events.close()
            self._logs.close()

    def _event(self, fields: dict[str, Any]) -> None:
        self._write(self._events, {"t": time.time(), **fields})

    def _write(self, stream: IO[str], record: dict[str, Any]) -> None:
        text = json.dumps(record, ensure_ascii=False) + "\n"
        with self._lock:
            stream.write(text)
            stream.flush()


def run_host(
    argv: list[str],
    module: str,
    read_plan: Callable[[Path], P],
    execute: Callable[[Path, P, Reporter], tuple[int, str | None]],
) -> int:
    """The ``main`` of a host runtime: read the plan, execute, write the one ``exit`` event.

    ``argv`` is ``[<host_dir>]``; an unreadable plan is a platform error (exit code 2).
    """
    from modelyard.runtime.failures import truncate
    from modelyard.runtime.plan import EXIT_PLATFORM_ERROR, PLAN_FILE

    if len(argv) != 1:
        print(f"usage: python -m {module} <host_dir>", file=sys.stderr)
        return EXIT_PLATFORM_ERROR
    host_dir = Path(argv[0]).resolve()
    reporter = Reporter(host_dir)
    failure: str | None
    try:
        plan = read_plan(host_dir)
    except Exception as e:
        reason = f"InternalServerError: unreadable {host_dir / PLAN_FILE}: {e}"
        code, failure = EXIT_PLATFORM_ERROR, truncate(reason)
    else:
        code, failure = execute(host_dir, plan, reporter)
    reporter.exit(code, failure)
    reporter.close()
    return code
