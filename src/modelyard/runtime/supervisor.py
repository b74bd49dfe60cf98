"""Run the work as a child process: pump its output into the log, stop it on SIGTERM.

The child gets its own process group, so a stop reaches everything it started: SIGTERM to the
group, then SIGKILL after a grace period (120 s, ``MODELYARD_STOP_GRACE_SECONDS``), as SageMaker
does with a container. When the child exits, whatever it left behind in its group is killed,
as a container's teardown would.

Platform code (a built-in algorithm) in a host that was itself forked from a preloaded
runtime is forked rather than started (:mod:`modelyard.runtime.forking`): the same pipes,
group, signals and exit codes, without a second interpreter start and its imports.
"""

from __future__ import annotations

import collections
import dataclasses
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Protocol

from modelyard.runtime import forking
from modelyard.runtime.reporting import Reporter

DEFAULT_GRACE_SECONDS = 120.0
_STDERR_TAIL = 10


class StopRequested(Exception):
    """SIGTERM arrived before the work started (while downloading or installing)."""


@dataclasses.dataclass(frozen=True)
class Outcome:
    """How the child ended: a shell-style exit code (128 + signal when killed)."""

    returncode: int
    stderr_tail: list[str]


def grace_seconds(env: Mapping[str, str]) -> float:
    """The stop grace period from MODELYARD_STOP_GRACE_SECONDS (default 120 s)."""
    try:
        return float(env.get("MODELYARD_STOP_GRACE_SECONDS", DEFAULT_GRACE_SECONDS))
    except ValueError:
        return DEFAULT_GRACE_SECONDS


class _Child(Protocol):
    """What the supervisor uses of a child: Popen's, or a :class:`_ForkedChild`'s."""

    pid: int
    stdout: IO[bytes] | None
    stderr: IO[bytes] | None

    def poll(self) -> int | None: ...

    def wait(self) -> int: ...


class _ForkedChild:
    """The work forked from this process, with the parts of Popen the supervisor uses."""

    def __init__(self, pid: int, stdout: IO[bytes], stderr: IO[bytes]) -> None:
        self.pid = pid
        self.stdout: IO[bytes] | None = stdout
        self.stderr: IO[bytes] | None = stderr
        self.returncode: int | None = None

    def poll(self) -> int | None:
        # Only wait() reaps (the run's own thread): until then the pid cannot be reused.
        return self.returncode

    def wait(self) -> int:
        _, status = os.waitpid(self.pid, 0)
        self.returncode = os.waitstatus_to_exitcode(status)  # -N when killed, as Popen's
        return self.returncode


class Supervisor:
    """Owns the work's process and the runtime's SIGTERM handling (one per runtime)."""

    def __init__(self, reporter: Reporter, grace: float) -> None:
        self._reporter = reporter
        self._grace = grace
        self._child: _Child | None = None
        self._starting = False  # True once the work is being started (or has run)
        self.stop_requested = threading.Event()

    def install(self) -> None:
        """Handle SIGTERM (and SIGINT, for people running the runtime by hand)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        first = not self.stop_requested.is_set()
        self.stop_requested.set()
        child = self._child
        if child is None and not self._starting:
            raise StopRequested()  # interrupts a download; the host run handles it
        if child is not None and first:
            self._reporter.runtime_log(f"Received signal {signum}: stopping the work")
            self._terminate(child)

    def _terminate(self, child: _Child) -> None:
        """SIGTERM to the work's group now, SIGKILL after the grace period."""
        signal_group(child.pid, signal.SIGTERM)
        killer = threading.Timer(self._grace, self._kill_after_grace, args=(child,))
        killer.daemon = True
        killer.start()

    def _kill_after_grace(self, child: _Child) -> None:
        if child.poll() is None:
            self._reporter.runtime_log(f"The work did not exit within {self._grace:g}s: SIGKILL")
            signal_group(child.pid, signal.SIGKILL)

    def run(
        self, command: list[str], cwd: Path, env: Mapping[str, str], module: str | None = None
    ) -> Outcome:
        """Run ``command`` to its end, logging every line it prints.

        ``module`` is the platform module that ``command`` runs with ``python -m``, if any: a
        warm host forks it instead when it can (see the module docstring).
        """
        if self.stop_requested.is_set():
            raise StopRequested()
        tail: collections.deque[str] = collections.deque(maxlen=_STDERR_TAIL)
        fork = module is not None and self._may_fork(module, env)
        self._starting = True  # from here on a SIGTERM only sets the flag, checked below
        child: _Child
        if fork and module is not None:
            child = _fork_module(module, cwd, env)
        else:
            child = subprocess.Popen(
                command,
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        self._child = child
        if self.stop_requested.is_set():  # it arrived while the child was being started
            self._terminate(child)
        assert child.stdout is not None and child.stderr is not None
        pumps = [
            pump_lines(child.stdout, self._reporter, None),
            pump_lines(child.stderr, self._reporter, tail),
        ]
        try:
            returncode = child.wait()
        finally:
            self._child = None
            signal_group(child.pid, signal.SIGKILL)  # leftovers of the work's group
        for pump in pumps:
            pump.join(timeout=10)
        code = 128 - returncode if returncode < 0 else returncode
        return Outcome(returncode=code, stderr_tail=list(tail))


    def _may_fork(self, module: str, env: Mapping[str, str]) -> bool:
        """Whether to fork ``module``; in a warm host, the log says which way it went."""
        refusal = forking.fork_refusal(env)
        if refusal == forking.STARTED_COLD:
            return False  # the usual cold host: nothing worth a log line
        if refusal is not None:
            self._reporter.runtime_log(f"Not forking {module}: {refusal}")
            return False
        self._reporter.runtime_log(f"Warm start: {module} runs in a fork of this runtime")
        return True


def _fork_module(module: str, cwd: Path, env: Mapping[str, str]) -> _ForkedChild:
    """Fork ``python -m module`` from this process, its output on two pipes (as Popen's)."""
    out_read, out_write = os.pipe()
    err_read, err_write = os.pipe()
    for stream in (sys.stdout, sys.stderr):  # nothing buffered here may come out twice
        stream.flush()
    with forking.signals_held():
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                forking.become(out_write, err_write, env, str(cwd), [])
                code = forking.run_module(module)
            finally:
                forking.exit_child(code)
    os.close(out_write)
    os.close(err_write)
    return _ForkedChild(pid, os.fdopen(out_read, "rb"), os.fdopen(err_read, "rb"))


def pump_lines(
    stream: IO[bytes], reporter: Reporter, tail: collections.deque[str] | None
) -> threading.Thread:
    """Copy ``stream`` line by line into the log (and the stderr tail) in a thread."""

    def copy() -> None:
        with stream:
            for raw in stream:
                line = raw.decode("utf-8", "replace").rstrip("\r\n")
                reporter.log(line)
                if tail is not None:
                    tail.append(line)

    thread = threading.Thread(target=copy, name="log-pump", daemon=True)
    thread.start()
    return thread


def signal_group(pid: int, signum: int) -> None:
    """Send ``signum`` to the process group led by ``pid``; a gone group is not an error."""
    try:
        os.killpg(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
