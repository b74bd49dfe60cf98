"""The local executor: job hosts are process groups on this machine.

Each process starts in a new session so that it survives the server (a killed server does not
kill its jobs) and so that a stop signal reaches every process the job started. The handle is
``<pid>.<start time>``: after a restart the pid alone could name an unrelated process that
reused it, the start time cannot.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading

import psutil

from modelyard.compute.base import EXIT_UNKNOWN, Executor, Handle, LaunchSpec


class LocalExecutor(Executor):
    """Runs job hosts as local process groups."""

    name = "local"

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def launch(self, spec: LaunchSpec) -> Handle:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(spec.log_path, "ab") as log:
            proc = subprocess.Popen(
                list(spec.argv),
                env=dict(spec.env),
                cwd=spec.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        with self._lock:
            self._children[proc.pid] = proc
        return Handle(self.name, f"{proc.pid}.{_start_time(proc.pid)}")

    def poll(self, handle: Handle) -> int | None:
        pid, started = _split(handle)
        with self._lock:
            child = self._children.get(pid)
        if child is not None:
            code = child.poll()
            if code is not None:
                with self._lock:
                    self._children.pop(pid, None)
            return code
        return None if _alive(pid, started) else EXIT_UNKNOWN

    def signal(self, handle: Handle, graceful: bool = True) -> None:
        pid, started = _split(handle)
        if not _alive(pid, started):
            return
        try:
            os.killpg(pid, signal.SIGTERM if graceful else signal.SIGKILL)
        except ProcessLookupError:
            pass


def _split(handle: Handle) -> tuple[int, str]:
    pid, _, started = handle.ident.partition(".")
    return int(pid), started


def _start_time(pid: int) -> str:
    try:
        return str(int(psutil.Process(pid).create_time() * 1000))
    except psutil.Error:
        return "0"


def _alive(pid: int, started: str) -> bool:
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        return str(int(proc.create_time() * 1000)) == started
    except psutil.Error:
        return False
