"""``python -m modelyard.runtime.zygote <fd>``: fork job hosts from a preloaded runtime.

Started by the local executor with one end of a Unix socket pair as ``<fd>``. It imports the
runtime and every built-in algorithm's heavy modules, runs no work itself (no OpenMP or BLAS
thread pool is ever started here, so forks are safe), says it is ready, then serves
newline-delimited JSON on the socket, one request at a time:

- request ``{"id": n, "argv": [...], "env": {...}, "cwd": "...", "log": "..."}`` where argv
  is ``[<this interpreter>, "-m", "modelyard.runtime", <host_dir>]``; answer
  ``{"id": n, "pid": p}``, or ``{"id": n, "error": "..."}`` when it will not fork (the
  executor then starts the process cold);
- every forked host that ends: ``{"exit": p, "code": c}`` (``-N`` when killed by signal N),
  since only this process, their parent, can learn their exit codes.

EOF on the socket (the server is gone) ends the zygote; its running hosts carry on, as cold
ones do when the server dies. How a forked host matches a cold one: :mod:`.forking`.
"""

from __future__ import annotations

import errno
import gc
import importlib
import json
import os
import select
import signal
import socket
import sys
import traceback
from typing import Any

from modelyard.runtime import forking

#: the only module a zygote forks hosts of
RUNTIME_MODULE = "modelyard.runtime"
#: what a host imports on its way through a job (the built-in algorithms' come on top)
_PRELOAD = ("modelyard.runtime.host", "modelyard.runtime.training", "modelyard.artifacts")


def preload() -> None:
    """Import the runtime and the built-in algorithms, as the jobs forked from here will."""
    for module in _PRELOAD:
        importlib.import_module(module)
    from modelyard.runtime.entrypoint import ALGORITHMS

    for module in ALGORITHMS.values():
        importlib.import_module(module + ".entrypoint").preload()
    forking.mark_preloaded(os.environ)
    # Out of the collector's sight: a full collection in a fork would otherwise touch, and
    # so copy, every page of these objects.
    gc.freeze()


class Zygote:
    """The request loop: fork hosts on request, report their exits."""

    def __init__(self, control: socket.socket) -> None:
        self.control = control
        self._buffer = b""
        # SIGCHLD wakes select() through this pipe: exits are reported at once, no polling
        self._wake_read, wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(wake_write, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.set_wakeup_fd(wake_write)

    def serve(self) -> int:
        """Answer requests until the server closes its end; the exit code."""
        self._send({"ready": True, "pid": os.getpid()})
        control = self.control.fileno()
        while True:
            readable, _, _ = select.select([control, self._wake_read], [], [])
            if self._wake_read in readable:
                self._drain_wakeups()
            self._reap()
            if control in readable and not self._read_requests():
                return 0

    def _read_requests(self) -> bool:
        """Handle every complete request line received; False at EOF."""
        data = self.control.recv(65536)
        if not data:
            return False
        self._buffer += data
        while b"\n" in self._buffer:
            line, self._buffer = self._buffer.split(b"\n", 1)
            request = json.loads(line)
            self._send({"id": request.get("id"), **self._spawn(request)})
        return True

    def _spawn(self, request: dict[str, Any]) -> dict[str, Any]:
        """Fork a host for ``request``: ``{"pid": p}`` or ``{"error": why}``."""
        argv = [str(a) for a in request["argv"]]
        if argv[:3] != [sys.executable, "-m", RUNTIME_MODULE]:
            return {"error": f"only `{sys.executable} -m {RUNTIME_MODULE}` runs warm"}
        env = {str(k): str(v) for k, v in request["env"].items()}
        refusal = forking.fork_refusal(env)
        if refusal is not None:
            return {"error": refusal}
        try:
            log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
        except OSError as e:
            return {"error": f"cannot open the log: {e}"}
        for stream in (sys.stdout, sys.stderr):  # nothing buffered here may reach the job
            stream.flush()
        with forking.signals_held():
            pid = os.fork()
            if pid == 0:
                _host(log, env, str(request["cwd"]), argv[3:])
        os.close(log)
        return {"pid": pid}

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            self._send({"exit": pid, "code": os.waitstatus_to_exitcode(status)})

    def _drain_wakeups(self) -> None:
        try:
            while os.read(self._wake_read, 512):
                pass
        except BlockingIOError:
            pass

    def _send(self, message: dict[str, Any]) -> None:
        self.control.sendall(json.dumps(message).encode() + b"\n")


def _host(log: int, env: dict[str, str], cwd: str, args: list[str]) -> None:
    """The forked child: become ``python -m modelyard.runtime <args>``; never returns."""
    code = 1
    try:
        forking.become(log, log, env, cwd, args)
        code = forking.run_module(RUNTIME_MODULE)
    except BaseException:  # noqa: BLE001 - the child must end here, whatever happened
        traceback.print_exc()
    finally:
        forking.exit_child(code)


def main(argv: list[str]) -> int:
    """Preload, then serve the socket whose descriptor is ``argv[0]``."""
    control = socket.socket(fileno=int(argv[0]))
    preload()
    try:
        return Zygote(control).serve()
    except OSError as e:
        if e.errno in (errno.EPIPE, errno.ECONNRESET):
            return 0  # the server went away mid-message
        raise


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
