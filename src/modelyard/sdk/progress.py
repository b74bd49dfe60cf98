"""A live progress line for a job, with its log lines printed above it."""

from __future__ import annotations

import time
from types import TracebackType
from typing import Any

from rich.console import Console
from rich.status import Status

from modelyard.sdk.logs import line_prefix

_console = Console(highlight=False)


class JobProgress:
    """Shows ``<job>: <status> / <secondary status> (elapsed)`` while logs scroll above."""

    def __init__(self, job_name: str, status_key: str = "TrainingJobStatus",
                 secondary_key: str = "SecondaryStatus") -> None:
        self.job_name = job_name
        self.status_key = status_key
        self.secondary_key = secondary_key
        self.started = time.monotonic()
        self._status = Status(f"{job_name}: starting", console=_console)
        self._last: tuple[str, str] | None = None

    def __enter__(self) -> JobProgress:
        self._status.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._status.stop()

    def update(self, job: dict[str, Any]) -> None:
        current = (job[self.status_key], job[self.secondary_key])
        elapsed = time.monotonic() - self.started
        self._status.update(f"{self.job_name}: {current[0]} / {current[1]} ({elapsed:.0f}s)")
        if current != self._last:
            transitions = job.get("SecondaryStatusTransitions") or []
            message = transitions[-1].get("StatusMessage", "") if transitions else ""
            _console.print(f"[dim]{time.strftime('%H:%M:%S')} {current[1]}: {message}[/dim]")
            self._last = current

    def log(self, stream: str, message: str) -> None:
        _console.out(line_prefix(stream) + message, highlight=False)
