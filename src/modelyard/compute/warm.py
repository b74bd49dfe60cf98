"""The local executor's warm starts: a zygote process that forks job hosts preloaded.

The zygote (:mod:`modelyard.runtime.zygote`) is started on the first launch that may run warm,
with this server's interpreter, and talks over a Unix socket pair. That first launch waits for
it to be ready (its imports cost what the cold job would have spent on the same imports);
later launches are a fork away. Anything wrong — the zygote cannot start, refuses a request,
does not answer — makes the launch cold, as without warm starts, and is logged once. A zygote
that dies after it was ready is replaced at the next launch, up to ``MAX_RESTARTS`` times (a
zygote the kernel keeps killing for memory must not be restarted forever); after that, or
after any other fault, launches stay cold.

Only the zygote can wait for the hosts it forked, so it reports their exit codes and
:meth:`Zygote.exit_code` hands them to the executor's ``poll``. Once the zygote is gone,
its hosts are like processes of an earlier server: ``poll`` sees them end, with the exit code
unknown, and the runtime's ``exit`` event is the source of truth.
"""

from __future__ import annotations

import json
import logging
import queue
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import psutil

from modelyard.compute.base import LaunchSpec

log = logging.getLogger(__name__)

#: how long the first launch waits for the zygote's imports, and any launch for a fork
_READY_TIMEOUT = 60.0
_FORK_TIMEOUT = 10.0
#: how many times a zygote that died is replaced
MAX_RESTARTS = 3


class Zygote:
    """Client of the zygote process; thread-safe. States: new → ready → gone (for good), and
    ready → new again when the zygote died and may be replaced."""

    def __init__(self, log_path: Path) -> None:
        self._log_path = log_path
        # one request (or start) at a time; never needed by the reader thread, which must
        # keep reading exits while a launch waits for its reply
        self._requests = threading.Lock()
        self._lock = threading.Lock()  # the exit bookkeeping below, briefly
        self._state = "new"
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._replies: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._exits: dict[int, int] = {}
        self._forked: set[int] = set()
        self._next_id = 0
        self._restarts_left = MAX_RESTARTS

    @property
    def connected(self) -> bool:
        """Whether the zygote is alive and reporting the exits of the hosts it forked."""
        return self._state == "ready"

    def launch(self, spec: LaunchSpec) -> int | None:
        """Fork ``spec`` from the zygote: its pid, or None to launch it cold."""
        if list(spec.argv[:1]) != [sys.executable]:
            return None  # another interpreter: only a cold start gives it
        with self._requests:
            if self._state == "new":
                self._start(dict(spec.env))
            if self._state != "ready":
                return None
            self._next_id += 1
            request = {"id": self._next_id, "argv": list(spec.argv), "env": dict(spec.env),
                       "cwd": str(spec.cwd), "log": str(spec.log_path)}
            try:
                assert self._sock is not None
                self._sock.sendall(json.dumps(request).encode() + b"\n")
                reply = self._replies.get(timeout=_FORK_TIMEOUT)
            except (OSError, queue.Empty) as e:
                self._give_up(f"no answer to a fork request ({type(e).__name__})")
                return None
            if reply is None:
                return None  # it died meanwhile (logged by the reader)
            if reply.get("id") != request["id"]:
                self._give_up(f"an answer to another request: {reply}")
                return None
            if "error" in reply:
                log.info("launching %s cold: the zygote says %s", spec.cwd, reply["error"])
                return None
            pid = int(reply["pid"])
            with self._lock:
                self._forked.add(pid)
            return pid

    def exit_code(self, pid: int) -> int | None:
        """The exit code the zygote reported for ``pid`` (once), or None."""
        with self._lock:
            code = self._exits.pop(pid, None)
            if code is not None:
                self._forked.discard(pid)
            return code

    def forked(self, pid: int) -> bool:
        """Whether ``pid`` was forked by this zygote and its exit not yet handed out."""
        with self._lock:
            return pid in self._forked

    def close(self) -> None:
        """Stop the zygote (its hosts carry on); later launches are cold."""
        with self._requests:
            self._state = "gone"
            _hang_up(self._sock)

    # --- internals (called with the request lock held) --------------------------------------
    def _start(self, env: dict[str, str]) -> None:
        self._replies = queue.Queue()  # nothing a dead predecessor's reader left behind
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._log_path.parent.mkdir(parents=True, exist_ok=True)
            with open(self._log_path, "ab") as out:
                self._proc = subprocess.Popen(
                    [sys.executable, "-m", "modelyard.runtime.zygote", str(theirs.fileno())],
                    env=env, cwd="/", stdin=subprocess.DEVNULL, stdout=out,
                    stderr=subprocess.STDOUT, pass_fds=(theirs.fileno(),),
                    start_new_session=True,  # a Ctrl-C at the server's terminal is not for it
                )
        except OSError as e:
            ours.close()
            self._state = "gone"
            log.warning("warm starts are off: the zygote did not start (%s)", e)
            return
        finally:
            theirs.close()
        self._sock = ours
        threading.Thread(target=self._read, name="zygote-reader", daemon=True).start()
        try:
            hello = self._replies.get(timeout=_READY_TIMEOUT)
        except queue.Empty:
            hello = None
        if hello is None or not hello.get("ready"):
            self._give_up(f"the zygote did not become ready (see {self._log_path})")
            return
        self._state = "ready"
        log.info("warm starts: zygote %s is ready", self._proc.pid)

    def _give_up(self, why: str) -> None:
        """Stop using the zygote for good; kill it and any fork it did not tell us about."""
        if self._state == "gone":
            return
        self._state = "gone"
        log.warning("warm starts are off from now on, jobs start cold: %s", why)
        if self._proc is None:
            return
        with self._lock:
            known = set(self._forked)
        try:
            for child in psutil.Process(self._proc.pid).children():
                if child.pid not in known:  # a fork whose pid never reached us
                    child.kill()
        except psutil.Error:
            pass
        self._proc.kill()
        _hang_up(self._sock)

    # --- the reader thread ----------------------------------------------------------------
    def _read(self) -> None:
        assert self._sock is not None
        try:
            stream = self._sock.makefile("rb")
            for line in stream:
                message = json.loads(line)
                if "exit" in message:
                    with self._lock:
                        self._exits[int(message["exit"])] = int(message["code"])
                else:
                    self._replies.put(message)
        except (OSError, ValueError):
            pass
        # EOF: the zygote is gone. Exits it reported before are kept, to be handed out; the
        # ends of its other hosts will be learned as those of an earlier server's processes.
        with self._lock:
            self._forked &= set(self._exits)
        self._replies.put(None)
        if self._proc is not None:
            self._proc.wait()
        if self._state != "ready":
            return
        if self._restarts_left > 0:
            self._restarts_left -= 1
            self._state = "new"
            log.warning("the warm-start zygote exited (see %s); a new one starts with the next "
                        "warm launch", self._log_path)
        else:
            self._state = "gone"
            log.warning("warm starts are off from now on, jobs start cold: the zygote "
                        "exited %d times (see %s)", MAX_RESTARTS + 1, self._log_path)


def _hang_up(sock: socket.socket | None) -> None:
    """Close our end; shutdown() first, as it also wakes the reader blocked on it."""
    if sock is None:
        return
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
