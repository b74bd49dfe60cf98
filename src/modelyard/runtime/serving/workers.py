"""The instance process's worker pool: start, watch, replace and stop worker processes.

Workers are fresh interpreters (``subprocess`` with the listening socket passed by fd), not
forks of the instance process. Three reasons: a ``requirements.txt`` environment means another
interpreter anyway; the instance process runs log-pump threads, and forking a threaded process
copies locks in whatever state other threads left them; and OpenMP or PyTorch thread pools are
not fork-safe once used, so a model loaded before a fork could hang its children. Each worker
therefore imports the user module and calls ``model_fn`` itself (memory is per worker, as with
the toolkit's MMS/gunicorn servers), and a replacement loads while the others keep serving.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from modelyard.runtime.failures import truncate
from modelyard.runtime.reporting import Reporter
from modelyard.runtime.serving.spec import WorkerSpec
from modelyard.runtime.supervisor import pump_lines

_TAIL = 10
_TICK = 0.2
_MAX_RESTART_DELAY = 30.0


class StartupFailed(Exception):
    """A worker could not start; ``reason`` is the instance's failure (``ClientError: ...``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclasses.dataclass
class Worker:
    """One worker process and the read end of its ready pipe (-1 once it reported)."""

    index: int
    process: subprocess.Popen[bytes]
    ready_fd: int
    tail: collections.deque[str]
    pumps: list[threading.Thread]
    buffer: bytes = b""
    serving: bool = False

    def read_ready(self) -> str | None:
        """Read what is there; "" while pending, None when ready, else the failure reason."""
        chunk = os.read(self.ready_fd, 4096)
        self.buffer += chunk
        if chunk and b"\n" not in self.buffer:
            return ""
        os.close(self.ready_fd)
        self.ready_fd = -1
        if not chunk and not self.buffer:  # it died before saying anything
            code = self.process.wait()
            detail = "\n".join(self.tail)
            reason = f"ClientError: the model server worker exited with code {code} while starting"
            return truncate(f"{reason}:\n{detail}" if detail else reason)
        failure: str | None = json.loads(self.buffer)["failure"]
        self.serving = failure is None
        return failure


class WorkerPool:
    """``spec.workers`` workers sharing ``sock``; replaces those that die."""

    def __init__(
        self,
        spec: WorkerSpec,
        python: Path,
        env: Mapping[str, str],
        cwd: Path,
        sock: socket.socket,
        reporter: Reporter,
    ) -> None:
        self.spec, self.python, self.env, self.cwd = spec, python, dict(env), cwd
        self.sock = sock
        self.reporter = reporter
        self.workers: dict[int, Worker] = {}
        self._restart_delay = 1.0
        self._restart_at: dict[int, float] = {}
        # a byte here ends the current wait at once (a stop must not wait out a tick)
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)

    def wake(self) -> None:
        """End the current supervision wait now; safe to call from a signal handler."""
        try:
            os.write(self._wake_w, b"x")
        except (BlockingIOError, OSError):
            pass  # already woken, or closed

    def spawn(self, index: int) -> Worker:
        """Start worker ``index`` (it is not serving until its ready line arrives)."""
        read_fd, write_fd = os.pipe()
        command = [
            str(self.python), "-m", "modelyard.runtime.serving.worker",
            "--listen-fd", str(self.sock.fileno()), "--ready-fd", str(write_fd),
            "--index", str(index), self.spec.to_json(),
        ]  # fmt: skip
        try:
            process = subprocess.Popen(
                command,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                pass_fds=(self.sock.fileno(), write_fd),
            )
        finally:
            os.close(write_fd)  # the worker holds the only write end: EOF tells of its death
        tail: collections.deque[str] = collections.deque(maxlen=_TAIL)
        assert process.stdout is not None and process.stderr is not None
        pumps = [
            pump_lines(process.stdout, self.reporter, None),
            pump_lines(process.stderr, self.reporter, tail),
        ]
        worker = Worker(index, process, read_fd, tail, pumps)
        self.workers[index] = worker
        return worker

    def start(self, timeout: float) -> None:
        """Start every worker and wait until all serve; StartupFailed when one cannot."""
        for index in range(self.spec.workers):
            self.spawn(index)
        deadline = time.monotonic() + timeout
        while any(w.ready_fd >= 0 for w in self.workers.values()):
            if time.monotonic() > deadline:
                raise StartupFailed(
                    f"ClientError: the model server did not start within {timeout:g} seconds"
                )
            for worker, outcome in self._poll_ready(_TICK):
                if outcome is not None:
                    raise StartupFailed(outcome)
                pid = worker.process.pid
                self.reporter.runtime_log(f"Worker {worker.index} (pid {pid}) is serving")

    def _poll_ready(self, timeout: float) -> list[tuple[Worker, str | None]]:
        """Workers whose startup ended within ``timeout``, with None (serving) or the failure."""
        pending = {w.ready_fd: w for w in self.workers.values() if w.ready_fd >= 0}
        readable, _, _ = select.select([self._wake_r, *pending], [], [], timeout)
        done = []
        for fd in readable:
            if fd == self._wake_r:
                os.read(self._wake_r, 64)
                continue
            worker = pending[fd]
            outcome = worker.read_ready()
            if outcome != "":
                done.append((worker, outcome))
        return done

    def tick(self) -> None:
        """One round of supervision: report replacements that came up, replace dead workers."""
        for worker, outcome in self._poll_ready(_TICK):
            if outcome is None:
                self._restart_delay = 1.0
                self.reporter.runtime_log(
                    f"Worker {worker.index} (pid {worker.process.pid}) is serving again"
                )
            else:
                self.reporter.runtime_log(f"Worker {worker.index} failed to start: {outcome}")
        now = time.monotonic()
        for index, worker in list(self.workers.items()):
            code = worker.process.poll()
            if code is None:
                continue
            if index not in self._restart_at:
                self._worker_died(worker, code, now)
            elif now >= self._restart_at[index]:
                del self._restart_at[index]
                self.spawn(index)

    def _worker_died(self, worker: Worker, code: int, now: float) -> None:
        delay = 0.0
        if not worker.serving:  # died while loading: back off, it may keep failing
            delay = self._restart_delay
            self._restart_delay = min(self._restart_delay * 2, _MAX_RESTART_DELAY)
        if worker.ready_fd >= 0:
            os.close(worker.ready_fd)
            worker.ready_fd = -1
        self.reporter.runtime_log(
            f"Worker {worker.index} (pid {worker.process.pid}) exited with code {code}; "
            f"starting a replacement"
        )
        self._restart_at[worker.index] = now + delay

    def stop(self, grace: float) -> None:
        """SIGTERM every worker, SIGKILL those still running after ``grace`` seconds."""
        for worker in self.workers.values():
            _signal(worker.process, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for worker in self.workers.values():
            try:
                worker.process.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.reporter.runtime_log(f"Worker {worker.index} did not stop in time: SIGKILL")
                _signal(worker.process, signal.SIGKILL)
                worker.process.wait()
            if worker.ready_fd >= 0:
                os.close(worker.ready_fd)
                worker.ready_fd = -1
        for worker in self.workers.values():
            for pump in worker.pumps:
                pump.join(timeout=2)  # their last lines belong in the log before the exit


def _signal(process: subprocess.Popen[bytes], signum: int) -> None:
    if process.poll() is None:
        try:
            process.send_signal(signum)
        except ProcessLookupError:
            pass
