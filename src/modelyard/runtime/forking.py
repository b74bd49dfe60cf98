"""Warm starts: run ``python -m <module>`` as a fork of a process that already imported it.

A cold job host pays an interpreter start and its imports twice: once for the runtime
(``python -m modelyard.runtime``), once more for a built-in algorithm, whose numpy, pandas,
SciPy and XGBoost imports cost most of a second of CPU. A *zygote* (:mod:`.zygote`) imports
all of that once and forks job hosts from itself; a host forked that way forks the built-in
algorithm too instead of starting a new interpreter. Only platform code runs warm: a user's
script always gets a fresh interpreter with its own environment at import time.

A forked child is made to look like the cold process it replaces: a new session (so a stop
that signals the group reaches it), stdin from ``/dev/null``, stdout and stderr where the cold
process's went, no other inherited file descriptors, the environment replaced, the working
directory and ``sys.argv``/``sys.path[0]`` as ``python -m`` sets them, default signal
handlers, and the exit code ``python -m`` would give (``SystemExit`` rules; 1 on an uncaught
exception, with its traceback on stderr). Known differences: the process's command line
(``ps``) is the zygote's, the hash seed is shared, and variables read when a library is
loaded (``OMP_*``, ``OPENBLAS_*`` ...) are the zygote's, so a fork is refused unless those
are equal (:func:`fork_refusal`).
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

#: variables read once, when the interpreter starts or a native library is loaded: a warm
#: child would see the zygote's values, so they must be equal for a fork (PYTHONPATH is
#: applied to ``sys.path`` in the child instead)
_LOAD_TIME_PREFIXES = (
    "PYTHON", "OMP_", "GOMP_", "KMP_", "OPENBLAS_", "GOTO", "MKL_", "BLIS_", "NUMEXPR_",
    "XGBOOST_", "LD_", "MALLOC_", "LC_", "LANG",
)
_APPLIED_IN_CHILD = frozenset({"PYTHONPATH"})
#: set in the environment of a zygote; ``0`` anywhere turns warm starts off
WARM_STARTS_VARIABLE = "MODELYARD_WARM_STARTS"
#: :func:`fork_refusal`'s answer in a process that preloaded nothing
STARTED_COLD = "this process was started cold"

# The load-time variables of the process that preloaded the modules (None: nothing preloaded,
# this process started cold). Inherited by every fork, so a forked host knows it is warm.
_preloaded_env: dict[str, str] | None = None


def mark_preloaded(env: Mapping[str, str]) -> None:
    """Record that this process imported the warm modules with ``env`` (the zygote calls it)."""
    global _preloaded_env
    _preloaded_env = load_time_variables(env)


def load_time_variables(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` that only take effect when a process starts."""
    return {
        k: v for k, v in env.items()
        if k.startswith(_LOAD_TIME_PREFIXES) and k not in _APPLIED_IN_CHILD
    }


def fork_refusal(env: Mapping[str, str]) -> str | None:
    """Why a child with ``env`` cannot be forked from this process, or None when it can."""
    if _preloaded_env is None:
        return STARTED_COLD
    if env.get(WARM_STARTS_VARIABLE) == "0":
        return f"{WARM_STARTS_VARIABLE}=0"
    wanted = load_time_variables(env)
    if wanted != _preloaded_env:
        changed = sorted(set(wanted.items()) ^ set(_preloaded_env.items()))
        return "load-time variables differ: " + ", ".join(sorted({k for k, _ in changed}))
    return None


@contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGTERM/SIGINT around a fork: the child must not run the parent's handlers."""
    held = {signal.SIGTERM, signal.SIGINT, signal.SIGCHLD}
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def become(
    stdout_fd: int, stderr_fd: int, env: Mapping[str, str], cwd: str, argv: list[str],
) -> None:
    """In a just-forked child (signals held): turn into the cold process's twin.

    ``argv`` is ``sys.argv`` from index 1 on; index 0 is set by :func:`run_module`.
    """
    os.setsid()
    for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.set_wakeup_fd(-1)
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(stdout_fd, 1)
    os.dup2(stderr_fd, 2)
    # What Popen(close_fds=True) gives a cold child: only 0, 1 and 2. Above all no end of the
    # zygote's control socket or of a sibling's pipe, whose EOF others wait for.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    sys.argv = ["-m", *argv]
    # `python -m` puts the working directory first, then PYTHONPATH's entries.
    extra = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in sys.path]
    sys.path[:1] = [os.getcwd(), *extra]
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def run_module(module: str) -> int:
    """Run ``module`` as ``__main__`` (as ``python -m`` does); the exit code it would give."""
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as e:
        code = _exit_code(e.code)
    except BaseException:  # an uncaught exception (KeyboardInterrupt too): traceback, exit 1
        traceback.print_exc()
        code = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed stream must not change the exit code
            pass
    return code


def exit_child(code: int) -> None:
    """End a forked child now, without the parent's atexit handlers or finalizers."""
    os._exit(code & 0xFF)


def _exit_code(value: object) -> int:
    """The process exit code of ``SystemExit(value)``, as the interpreter computes it."""
    if value is None:
        return 0
    if isinstance(value, int):
        return value
    print(value, file=sys.stderr)
    return 1
