"""One job host from start to finish: ``python -m modelyard.runtime <host_dir>``.

Sequence: read ``plan.json`` → isolate (namespace or rewrite) → lay out the ``/opt/ml`` tree and
its config files → *Downloading* (channels, checkpoints, code) → *Training* (requirements
environment, then the work as a child process while checkpoints sync) → *Uploading* (model and
output data, on the uploading host) → one ``exit`` event. Exit codes are those of
:mod:`modelyard.runtime.plan`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from modelyard.runtime import isolation
from modelyard.runtime.failures import ClientError, platform_error
from modelyard.runtime.hyperparameters import rewrite_opt_ml
from modelyard.runtime.layout import Layout, write_configs
from modelyard.runtime.plan import (
    EXIT_ALGORITHM_ERROR,
    EXIT_OK,
    EXIT_PLATFORM_ERROR,
    EXIT_STOPPED,
    HostPlan,
)
from modelyard.runtime.reporting import Reporter, run_host
from modelyard.runtime.supervisor import StopRequested, Supervisor, grace_seconds

if TYPE_CHECKING:
    from modelyard.artifacts import Artifacts


class HostRun:
    """The state of one runtime process; :meth:`execute` does the whole sequence."""

    def __init__(self, host_dir: Path, plan: HostPlan, reporter: Reporter) -> None:
        self.host_dir = host_dir
        self.plan = plan
        self.reporter = reporter
        self.supervisor = Supervisor(reporter, grace_seconds(os.environ))
        self.namespace = False
        self.layout = Layout.for_host(host_dir, plan, namespace=False)
        self.hyperparameters: dict[str, str] = dict(plan.hyperparameters)
        self.environment: dict[str, str] = dict(plan.environment)
        self._store: Artifacts | None = None

    @property
    def store(self) -> Artifacts:
        """The artifact store, configured from the forwarded MODELYARD_* variables."""
        if self._store is None:
            from modelyard.artifacts import Artifacts

            self._store = Artifacts.from_environment()
        return self._store

    def execute(self) -> tuple[int, str | None]:
        """Run every step; the exit code and failure reason (never raises)."""
        try:
            self.prepare()
            self.supervisor.install()
            from modelyard.runtime.training import train

            return train(self)
        except StopRequested:
            self.reporter.runtime_log("Stopped before the work started")
            return EXIT_STOPPED, None
        except ClientError as e:
            return EXIT_ALGORITHM_ERROR, e.reason
        except Exception as e:  # the platform's own fault: say what, keep the traceback
            return EXIT_PLATFORM_ERROR, platform_error(e, self.reporter.runtime_log)

    def prepare(self) -> None:
        """Isolate, then lay out the tree and write the config files."""
        self.namespace = self._isolate()
        self.layout = Layout.for_host(self.host_dir, self.plan, self.namespace)
        if not self.namespace:
            root = str(self.layout.real)
            self.hyperparameters = {
                k: rewrite_opt_ml(v, root) for k, v in self.plan.hyperparameters.items()
            }
            self.environment = {
                k: rewrite_opt_ml(v, root) for k, v in self.plan.environment.items()
            }
        self.layout.create(self.plan.channels)
        write_configs(self.layout, self.plan, self.hyperparameters)

    def _isolate(self) -> bool:
        """Enter the job's mount namespace when the plan asks for it; whether it worked."""
        if self.plan.isolation != "namespace":
            return False
        tree = (self.host_dir / "opt_ml").resolve()
        tree.mkdir(parents=True, exist_ok=True)
        extra = self._extra_binds(tree)
        return isolation.isolate(
            self.host_dir, tree, self.plan.hosts, extra, self.reporter.runtime_log
        )

    def _extra_binds(self, tree: Path) -> dict[str, Path]:
        """A checkpoint dir outside /opt/ml is mounted from the tree's checkpoints dir."""
        layout = Layout.for_host(self.host_dir, self.plan, namespace=True)
        if layout.checkpoint_visible.startswith(layout.visible + "/"):
            return {}
        (tree / "checkpoints").mkdir(parents=True, exist_ok=True)
        return {layout.checkpoint_visible: tree / "checkpoints"}


def main(host_dir: Path) -> int:
    """Run the host in ``host_dir``; returns the process exit code."""
    return cli([str(host_dir)])


def cli(argv: list[str]) -> int:
    """``python -m modelyard.runtime <host_dir>``."""
    return run_host(argv, "modelyard.runtime", HostPlan.read,
                    lambda d, plan, reporter: HostRun(d, plan, reporter).execute())


__all__ = ["EXIT_OK", "HostRun", "cli", "main"]
