"""The local executor: job hosts are process groups on this machine.

Each process starts in a new session so that it survives the server (a killed server does not
kill its jobs) and so that a stop signal reaches every process the job started. The handle is
``<pid>.<start time>``: after a restart the pid alone could name an unrelated process that
reused it, the start time cannot.

With warm starts on, a launch marked ``warm_start`` is forked by a zygote that has the runtime
and the built-in algorithms imported already (:mod:`modelyard.compute.warm`); its handle is
the same ``<pid>.<start time>``, and a stop reaches it the same way.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
from pathlib import Path

import psutil

from modelyard.compute.base import EXIT_UNKNOWN, Executor, Handle, LaunchSpec
from modelyard.compute.warm import Zygote

_EXITED_KEPT = 1024


class LocalExecutor(Executor):
    """Runs job hosts as local process groups.

    ``zygote_log``: where the warm-start zygote writes (None: warm starts off).
    """

    name = "local"

    def __init__(self, zygote_log: Path | None = None) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        # exit codes of reaped children, by pid: the kernel may ask after the reaping
        self._exited: collections.OrderedDict[int, tuple[str, int]] = collections.OrderedDict()
        self._started: dict[int, str] = {}
        self._lock = threading.Lock()
        self._zygote = Zygote(zygote_log) if zygote_log is not None else None

    def launch(self, spec: LaunchSpec) -> Handle:
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        if spec.warm_start and self._zygote is not None:
            pid = self._zygote.launch(spec)
            if pid is not None:
                return Handle(self.name, f"{pid}.{_start_time(pid)}")
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
            self._started[proc.pid] = started = _start_time(proc.pid)
        self._reap()
        return Handle(self.name, f"{proc.pid}.{started}")

    def poll(self, handle: Handle) -> int | None:
        pid, started = _split(handle)
        self._reap()
        with self._lock:
            if pid in self._children:
                return None
            ended = self._exited.get(pid)
            if ended is not None and ended[0] == started:
                return ended[1]
        zygote = self._zygote
        if zygote is not None and zygote.forked(pid):
            code = zygote.exit_code(pid)
            if code is not None or zygote.connected:
                return code  # while the zygote lives, its report is the end of the host
        return None if _alive(pid, started) else EXIT_UNKNOWN

    def _reap(self) -> None:
        """Collect every child that has ended, so none lingers as a zombie once the kernel
        has learned its end from the job's own exit event and stopped asking."""
        with self._lock:
            for pid, child in list(self._children.items()):
                code = child.poll()
                if code is not None:
                    del self._children[pid]
                    self._exited[pid] = (self._started.pop(pid, ""), code)
                    while len(self._exited) > _EXITED_KEPT:
                        self._exited.popitem(last=False)

    def close(self) -> None:
        """Stop the zygote, if any (running hosts carry on, as after a server crash)."""
        if self._zygote is not None:
            self._zygote.close()

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
