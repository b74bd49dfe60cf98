"""One model-server instance from start to stop: ``python -m modelyard.runtime.serving <dir>``.

Sequence: read ``plan.json`` → isolate (namespace or rewrite, as a training host) →
*Downloading* (model data, code, requirements environment) → bind ``127.0.0.1:<port>`` →
*Loading* (workers import the user module and call ``model_fn``) → *InService* → supervise
until SIGTERM → drain → one ``exit`` event. Exit codes: 0 stopped, 1 the model or its code
cannot start (``ClientError: ...``), 2 the platform failed.
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelyard.runtime import isolation
from modelyard.runtime.failures import ClientError, platform_error, truncate
from modelyard.runtime.hyperparameters import rewrite_opt_ml
from modelyard.runtime.layout import CONTAINER_ROOT
from modelyard.runtime.plan import EXIT_ALGORITHM_ERROR, EXIT_OK, EXIT_PLATFORM_ERROR
from modelyard.runtime.reporting import Reporter
from modelyard.runtime.serving import model_downloads, startup
from modelyard.runtime.serving.plan import PLAN_FILE, ServePlan
from modelyard.runtime.serving.workers import StartupFailed, WorkerPool

if TYPE_CHECKING:
    from modelyard.artifacts import Artifacts

#: seconds the workers get to finish in-flight requests after SIGTERM (their drain is 10 s)
STOP_GRACE_SECONDS = 12.0
DEFAULT_STARTUP_TIMEOUT = 600.0


class Stopped(Exception):
    """SIGTERM arrived before the instance was in service."""


class InstanceRun:
    """The state of one instance process; :meth:`execute` does the whole sequence."""

    def __init__(self, instance_dir: Path, plan: ServePlan, reporter: Reporter) -> None:
        self.instance_dir = instance_dir
        self.plan = plan
        self.reporter = reporter
        self.stop_requested = threading.Event()
        self.interruptible = True  # a SIGTERM may break into startup (not into serving/stopping)
        self.pool: WorkerPool | None = None
        self._store: Artifacts | None = None

    def store(self) -> Artifacts:
        """The artifact store, configured from the forwarded MODELYARD_* variables."""
        if self._store is None:
            from modelyard.artifacts import Artifacts

            self._store = Artifacts.from_environment()
        return self._store

    def execute(self) -> tuple[int, str | None]:
        """Start, serve until stopped; the exit code and failure reason (never raises)."""
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            self.serve(self.prepare())
            return EXIT_OK, None
        except Stopped:
            self.reporter.runtime_log("Stopped before the instance was in service")
            return EXIT_OK, None
        except ClientError as e:
            return EXIT_ALGORITHM_ERROR, e.reason
        except StartupFailed as e:
            return EXIT_ALGORITHM_ERROR, e.reason
        except Exception as e:  # the platform's own fault: say what, keep the traceback
            return EXIT_PLATFORM_ERROR, platform_error(e, self.reporter.runtime_log)
        finally:
            self.interruptible = False
            if self.pool is not None:
                self.pool.stop(STOP_GRACE_SECONDS)

    def _on_signal(self, signum: int, _frame: Any) -> None:
        if not self.stop_requested.is_set():
            self.reporter.runtime_log(f"Received signal {signum}: stopping the instance")
        self.stop_requested.set()
        if self.pool is not None:
            self.pool.wake()  # supervision notices the stop now, not at its next tick
        if self.interruptible:
            self.interruptible = False  # a second signal must not break into the cleanup
            raise Stopped()  # interrupts a download or the wait for loading workers

    def prepare(self) -> startup.Prepared:
        """Isolation, model data, code and environment: what the workers start with."""
        tree = self._isolate()
        env = dict(self.plan.environment)
        if tree.visible != CONTAINER_ROOT:
            env = {k: rewrite_opt_ml(v, tree.visible) for k, v in env.items()}
        self.reporter.status("Downloading", "Downloading the model data")
        if self.plan.multi_model:  # the workers download each model on its first request
            model_downloads.prepare_models_dir(tree.real / model_downloads.MODELS_DIR)
            prefix = self.plan.model_data_url
            self.reporter.runtime_log(f"Multi-model: models load on demand from {prefix}")
        else:
            startup.download_model(self.store, self.plan, tree.real / "model", self.reporter)
        code_dirs = startup.fetch_code(self.store, env, tree, self.reporter)
        python = startup.worker_python(code_dirs, self.plan, env, self.reporter)
        spec = startup.build_spec(self.plan, env, tree, code_dirs)
        worker_env = startup.worker_environment(self.plan, env, tree, spec, python)
        return startup.Prepared(spec, python, worker_env, tree.real)

    def _isolate(self) -> startup.Tree:
        real = (self.instance_dir / "opt_ml").resolve()
        real.mkdir(parents=True, exist_ok=True)
        if self.plan.isolation == "namespace":
            log = self.reporter.runtime_log
            if isolation.isolate(self.instance_dir, real, [], {}, log):
                return startup.Tree(real, CONTAINER_ROOT)
        return startup.Tree(real, str(real))

    def serve(self, prepared: startup.Prepared) -> None:
        """Bind, start the workers, supervise them until SIGTERM."""
        sock = bind(self.plan.port)
        workers = prepared.spec.workers
        self.reporter.status("Loading", f"Loading the model in {workers} worker(s)")
        self.pool = WorkerPool(
            prepared.spec, prepared.python, prepared.env, prepared.cwd, sock, self.reporter
        )
        self.pool.start(startup_timeout(prepared.env))
        self.interruptible = False
        if self.stop_requested.is_set():  # it arrived as the last worker came up
            return
        self.reporter.status("InService", f"Serving on 127.0.0.1:{self.plan.port}")
        while not self.stop_requested.is_set():
            self.pool.tick()
        sock.close()  # the workers still hold it until they drain


def bind(port: int) -> socket.socket:
    """The listening socket every worker accepts on."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError as e:
        sock.close()
        raise OSError(e.errno, f"cannot listen on 127.0.0.1:{port}: {e.strerror}") from e
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def startup_timeout(env: dict[str, str]) -> float:
    """SAGEMAKER_STARTUP_TIMEOUT (600 s by default)."""
    try:
        return float(env.get("SAGEMAKER_STARTUP_TIMEOUT", DEFAULT_STARTUP_TIMEOUT))
    except ValueError:
        return DEFAULT_STARTUP_TIMEOUT


def main(instance_dir: Path) -> int:
    """Run the instance in ``instance_dir``; returns the process exit code."""
    instance_dir = instance_dir.resolve()
    reporter = Reporter(instance_dir)
    try:
        plan = ServePlan.read(instance_dir)
    except Exception as e:
        reason = f"InternalServerError: unreadable {instance_dir / PLAN_FILE}: {e}"
        reporter.exit(EXIT_PLATFORM_ERROR, truncate(reason))
        reporter.close()
        return EXIT_PLATFORM_ERROR
    code, failure = InstanceRun(instance_dir, plan, reporter).execute()
    reporter.exit(code, failure)
    reporter.close()
    return code


def cli(argv: list[str]) -> int:
    """``python -m modelyard.runtime.serving <instance_dir>``."""
    if len(argv) != 1:
        print("usage: python -m modelyard.runtime.serving <instance_dir>", file=sys.stderr)
        return EXIT_PLATFORM_ERROR
    return main(Path(argv[0]))


__all__ = ["InstanceRun", "cli", "main"]
