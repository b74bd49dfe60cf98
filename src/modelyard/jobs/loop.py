"""The reconcile loop: one thread that drives every controller until the server stops.

API handlers call :meth:`ReconcileLoop.wake` after writing desired state, so a new job starts
at once instead of at the next tick. While any resource is active the loop ticks fast (its
hosts report through files, which have no wake-up of their own); when all is idle it sleeps.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import Protocol

log = logging.getLogger(__name__)


class Reconciler(Protocol):
    def reconcile_all(self) -> int: ...


class ReconcileLoop:
    """Runs ``reconcile_all`` of each controller in turn on a background thread."""

    def __init__(self, controllers: Sequence[Reconciler], busy_interval: float = 0.02,
                 idle_interval: float = 1.0) -> None:
        self.controllers = list(controllers)
        self.busy_interval = busy_interval
        self.idle_interval = idle_interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="modelyard-reconcile", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def run_once(self) -> int:
        active = 0
        for controller in self.controllers:
            try:
                active += controller.reconcile_all()
            except Exception:
                log.exception("controller %s failed", type(controller).__name__)
        return active

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            active = self.run_once()
            self._wake.wait(self.busy_interval if active else self.idle_interval)
