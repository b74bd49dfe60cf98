"""Make the job's tree appear at ``/opt/ml`` (namespace isolation) — or say it cannot.

Two modes, chosen by ``plan.isolation``:

- ``namespace``: the runtime process itself leaves the host's mount namespace right at start
  (``unshare(CLONE_NEWNS)`` through libc, while it is still single-threaded — no re-exec, so its
  PID, and the controller's SIGTERM, stay the same), makes every mount private, bind-mounts
  ``<host_dir>/opt_ml`` on ``/opt/ml`` and a generated hosts file on ``/etc/hosts`` that maps
  every ``algo-N`` to 127.0.0.1. The work and everything it starts inherit that view, so
  scripts with literal ``/opt/ml`` paths and ``algo-2`` host names work, and concurrent jobs
  each see their own ``/opt/ml``. The controller just runs ``python -m modelyard.runtime``.
  Needs root (CAP_SYS_ADMIN); when the kernel refuses, the runtime falls back to ``rewrite``
  and says so in the job's log.
- ``rewrite``: nothing is mounted. ``SAGEMAKER_BASE_DIR`` and every ``SM_*`` path name the
  real tree, and hyperparameter values, script arguments and ``Environment`` values starting
  with ``/opt/ml`` are rewritten to it. Limits: paths written literally in the script's code,
  or built from pieces at run time, still point at ``/opt/ml``; ``algo-N`` names do not
  resolve unless the machine's own hosts file has them.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelyard.runtime.layout import CONTAINER_ROOT

_CLONE_NEWNS = 0x00020000
_MS_BIND = 4096
_MS_REC = 16384
_MS_PRIVATE = 1 << 18

HOSTS_FILE = "hosts"


def namespace_possible() -> bool:
    """Whether this process could try namespace isolation (Linux, root)."""
    return sys.platform.startswith("linux") and os.geteuid() == 0


def hosts_file_text(hosts: list[str], original: str) -> str:
    """``/etc/hosts`` for the job: every algo-N on loopback, then the machine's own entries."""
    lines = [f"127.0.0.1\t{host}\n" for host in sorted(hosts)]
    return "# algo-N hosts of this modelyard job\n" + "".join(lines) + original


def isolate(
    host_dir: Path,
    tree: Path,
    hosts: list[str],
    extra_binds: dict[str, Path],
    log: Callable[[str], None],
) -> bool:
    """Try :func:`enter_namespace`; whether it worked (the reason it did not is logged)."""
    if not namespace_possible():
        log("Namespace isolation needs root; rewriting /opt/ml paths")
        return False
    try:
        enter_namespace(host_dir, tree, hosts, extra_binds)
    except OSError as e:
        log(f"Namespace isolation refused ({e}); rewriting /opt/ml paths")
        return False
    return True


def enter_namespace(
    host_dir: Path, tree: Path, hosts: list[str], extra_binds: dict[str, Path]
) -> None:
    """Leave the host's mount namespace and mount the job's view (see the module docstring).

    ``extra_binds`` maps further visible paths (a checkpoint dir outside /opt/ml) to real ones.
    Must run before the process starts any thread. Raises OSError when refused.
    """
    import ctypes  # only here: keeps the runtime's start cheap in rewrite mode

    libc = ctypes.CDLL(None, use_errno=True)
    _check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    # Without this, mounts made here would propagate back to the host when / is shared.
    _check(libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None), "mount --make-rprivate /")
    try:
        original = Path("/etc/hosts").read_text()
    except OSError:
        original = ""
    hosts_path = host_dir / HOSTS_FILE
    hosts_path.write_text(hosts_file_text(hosts, original))
    _bind(libc, tree, Path(CONTAINER_ROOT))
    _bind(libc, hosts_path, Path("/etc/hosts"))
    for visible, real in extra_binds.items():
        _bind(libc, real, Path(visible))


def _bind(libc: Any, source: Path, target: Path) -> None:
    if source.is_dir():
        target.mkdir(parents=True, exist_ok=True)
    elif not target.exists():
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()
    flags = _MS_BIND | _MS_REC
    _check(libc.mount(bytes(source), bytes(target), None, flags, None), f"bind {source} {target}")


def _check(result: int, what: str) -> None:
    import ctypes

    if result != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")
