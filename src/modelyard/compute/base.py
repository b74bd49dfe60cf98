"""The executor interface: launch, poll, cancel one process per job host.

An executor runs ``python -m modelyard.runtime <host_dir>`` (or any argv) somewhere and hands
back a :class:`Handle`, a small string-serialisable token that is stored with the job so that a
restarted server can find the process again.

Contract for every implementation:

- Thread-safe: the controller calls it from its reconcile thread and API threads may cancel.
- ``launch`` returns once the process exists; it never waits for the work.
- ``poll`` never blocks. It returns ``None`` while the process runs and its exit code once it
  has ended. For a process this server did not start (reattached after a restart) the exit code
  is unknowable, and ``poll`` returns :data:`EXIT_UNKNOWN`: the runtime's own exit event in the
  host dir is the source of truth then.
- ``signal`` delivers SIGTERM (``graceful=True``) or SIGKILL to the whole process group; a
  process that has already ended is not an error.
- Handles of another executor or of a process that no longer exists poll as ended.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path

EXIT_UNKNOWN = -1000


@dataclasses.dataclass(frozen=True)
class LaunchSpec:
    """One process to start. stdout/stderr go to ``log_path`` (the runtime's own diagnostics).

    ``warm_start``: the process runs only platform code (a built-in algorithm's host), so an
    executor may fork it from a preloaded runtime instead of starting an interpreter.
    """

    argv: Sequence[str]
    env: Mapping[str, str]
    cwd: Path
    log_path: Path
    warm_start: bool = False


@dataclasses.dataclass(frozen=True)
class Handle:
    """Where a launched process lives: executor name plus an executor-specific id."""

    executor: str
    ident: str

    def __str__(self) -> str:
        return f"{self.executor}:{self.ident}"

    @classmethod
    def parse(cls, text: str) -> Handle:
        executor, _, ident = text.partition(":")
        return cls(executor=executor, ident=ident)


class Executor(abc.ABC):
    """Starts and watches job-host processes. See the module docstring for the contract."""

    name: str = ""

    @abc.abstractmethod
    def launch(self, spec: LaunchSpec) -> Handle:
        """Start the process and return its handle."""

    @abc.abstractmethod
    def poll(self, handle: Handle) -> int | None:
        """``None`` while running; the exit code (or EXIT_UNKNOWN) once ended."""

    @abc.abstractmethod
    def signal(self, handle: Handle, graceful: bool = True) -> None:
        """SIGTERM (graceful) or SIGKILL the process group."""
