"""The local executor: process groups, exit codes, and no zombies left behind."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import psutil

from modelyard.compute.base import EXIT_UNKNOWN, LaunchSpec
from modelyard.compute.local import LocalExecutor


def _spec(tmp_path: Path, code: str, name: str) -> LaunchSpec:
    return LaunchSpec(argv=[sys.executable, "-c", code], env={"PATH": "/usr/bin:/bin"}, cwd=tmp_path,
                      log_path=tmp_path / f"{name}.log")


def _wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                time.sleep(0.05)
                continue
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def test_ended_children_are_reaped_and_keep_their_exit_code(tmp_path: Path) -> None:
    executor = LocalExecutor()
    first = executor.launch(_spec(tmp_path, "import sys; print('hi'); sys.exit(3)", "first"))
    pid = int(first.ident.split(".")[0])
    deadline = time.monotonic() + 10
    while psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:  # ended, not yet collected
        assert time.monotonic() < deadline
        time.sleep(0.05)
    # nobody polls the first job; launching another collects it anyway
    second = executor.launch(_spec(tmp_path, "print('there')", "second"))
    assert _wait_gone(pid), "the ended child was left as a zombie"
    assert executor.poll(first) == 3  # its exit code survives the reaping
    deadline = time.monotonic() + 10
    while (code := executor.poll(second)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert code == 0
    assert (tmp_path / "first.log").read_text() == "hi\n"


def test_an_unknown_handle_that_is_not_running_has_an_unknown_end(tmp_path: Path) -> None:
    executor = LocalExecutor()
    handle = executor.launch(_spec(tmp_path, "pass", "quick"))
    forged = type(handle)(handle.executor, handle.ident.split(".")[0] + ".1")  # another start time
    deadline = time.monotonic() + 10
    while executor.poll(handle) is None:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert executor.poll(forged) == EXIT_UNKNOWN
