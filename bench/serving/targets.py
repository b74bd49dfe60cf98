"""The servers under test, each started alone, with the same number of worker processes.

A :class:`Target` starts its server on 127.0.0.1, says which request answers a payload and which
process ids own the server's CPU time, and stops the server again (its whole process group).

- ``floor``: ``floor_app.py`` under uvicorn, from the project's venv;
- ``modelyard``: a real modelyard server with one endpoint (sagemaker-xgboost image), invoked
  through the router with a SigV4-signed request; ``modelyard-batching``: the same with the
  model server's adaptive batching on;
- ``mlflow``: ``mlflow models serve --env-manager local``;
- ``bentoml`` / ``bentoml-batching``: ``bentoml serve`` of ``bento_service.py``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench.serving.load import HttpRequest
from bench.serving.model import BenchModel, Payload
from bench.serving.peer_models import save_for_bentoml, save_for_mlflow
from bench.serving.peers import BENTOML, MLFLOW

REPO = Path(__file__).resolve().parents[2]
SERVING = Path(__file__).resolve().parent
START_TIMEOUT = 120.0


class Target(ABC):
    """One server under test."""

    name: str
    #: what a reader needs to know about how the target was run
    notes: str = ""

    def __init__(self, model: BenchModel, workdir: Path, workers: int) -> None:
        self.model = model
        self.workdir = workdir
        self.workers = workers

    @abstractmethod
    def start(self) -> None:
        """Start the server and return once it answers."""

    @abstractmethod
    def request(self, payload: Payload) -> HttpRequest:
        """The HTTP request that scores ``payload``."""

    @abstractmethod
    def pids(self) -> list[int]:
        """Roots of the process trees that do the server's work."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the server and everything it started."""

    def versions(self) -> dict[str, str]:
        """Versions of the software that served, for the results file."""
        return {}


class ProcessTarget(Target):
    """A target that is one command, run in its own process group."""

    ready_path = "/ping"

    def __init__(self, model: BenchModel, workdir: Path, workers: int) -> None:
        super().__init__(model, workdir, workers)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / f"{self.name}.log"
        self._prepared = False

    @abstractmethod
    def command(self) -> tuple[Sequence[str], dict[str, str]]:
        """The argv and the extra environment of the server."""

    def prepare(self) -> None:
        """Anything to write before the command runs (model formats)."""

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        if not self._prepared:  # once, however many rounds
            self.prepare()
            self._prepared = True
        self.port = free_port()
        argv, extra = self.command()
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                list(argv), cwd=self.workdir, env={**os.environ, **extra},
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,  # its own group: stop() reaches every worker
            )
        wait_until_ready(self.base_url + self.ready_path, self.proc, self.log)

    def pids(self) -> list[int]:
        return [self.proc.pid] if self.proc else []

    def stop(self) -> None:
        if self.proc is None:
            return
        stop_group(self.proc)
        self.proc = None


class FloorTarget(ProcessTarget):
    """Starlette + uvicorn: parse CSV with numpy, ``inplace_predict``, answer CSV."""

    name = "floor"
    notes = "uvicorn (httptools, asyncio loop) + Starlette, from the project venv"

    def command(self) -> tuple[Sequence[str], dict[str, str]]:
        argv = [sys.executable, "-m", "uvicorn", "bench.serving.floor_app:app",
                "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers),
                "--no-access-log", "--log-level", "warning", "--app-dir", str(REPO)]
        return argv, {"BENCH_MODEL": str(self.model.model_file)}

    def request(self, payload: Payload) -> HttpRequest:
        return HttpRequest(self.base_url + "/invocations", {"Content-Type": "text/csv"},
                           payload.csv)


class MlflowTarget(ProcessTarget):
    """``mlflow models serve``; its scoring server reads CSV with a header line."""

    name = "mlflow"
    notes = ("`mlflow models serve --env-manager local` (uvicorn, access log off); model "
             "saved with a signature; the "
             "CSV body carries a header line, because the scoring server reads line 1 as "
             "column names (pandas.read_csv)")

    def prepare(self) -> None:
        MLFLOW.ensure()
        self.model_dir = save_for_mlflow(self.model.model_file, self.workdir)

    def command(self) -> tuple[Sequence[str], dict[str, str]]:
        argv = [str(MLFLOW.bin("mlflow")), "models", "serve", "-m", str(self.model_dir),
                "--env-manager", "local", "-w", str(self.workers), "-p", str(self.port),
                "-h", "127.0.0.1"]
        # mlflow starts its server by name (uvicorn/gunicorn): they must come from its venv
        return argv, {"PATH": f"{MLFLOW.root / 'bin'}:{os.environ['PATH']}",
                      # no access log, as for every target (uvicorn reads UVICORN_* options)
                      "UVICORN_ACCESS_LOG": "false",
                      "MLFLOW_TRACKING_URI": (self.workdir / "mlruns").as_uri()}

    def request(self, payload: Payload) -> HttpRequest:
        return HttpRequest(self.base_url + "/invocations", {"Content-Type": "text/csv"},
                           payload.with_header())

    def versions(self) -> dict[str, str]:
        return MLFLOW.versions()


class BentomlTarget(ProcessTarget):
    """``bentoml serve`` of one CSV-in, CSV-out API; ``batching`` picks the batchable one."""

    ready_path = "/readyz"

    def __init__(self, model: BenchModel, workdir: Path, workers: int, batching: bool) -> None:
        self.batching = batching
        self.name = "bentoml-batching" if batching else "bentoml"
        self.notes = ("`bentoml serve`, `@bentoml.api(batchable=True)` with default batch "
                      "limits; body: a JSON list holding the CSV text" if batching else
                      "`bentoml serve`; body: the CSV text as text/plain (a str root input)")
        super().__init__(model, workdir, workers)

    def prepare(self) -> None:
        BENTOML.ensure()
        self.home = save_for_bentoml(self.model.model_file, self.workdir)

    def command(self) -> tuple[Sequence[str], dict[str, str]]:
        service = "bento_service:BatchedClassifier" if self.batching else "bento_service:Classifier"
        argv = [str(BENTOML.bin("bentoml")), "serve", service, "--working-dir", str(SERVING),
                "--host", "127.0.0.1", "--port", str(self.port)]
        return argv, {"BENTOML_HOME": str(self.home), "BENCH_WORKERS": str(self.workers),
                      "BENTOML_DO_NOT_TRACK": "True"}

    def request(self, payload: Payload) -> HttpRequest:
        url = self.base_url + "/predict"
        if self.batching:
            body = json.dumps([payload.csv.decode()]).encode()
            return HttpRequest(url, {"Content-Type": "application/json"}, body)
        return HttpRequest(url, {"Content-Type": "text/plain"}, payload.csv)

    def versions(self) -> dict[str, str]:
        return BENTOML.versions()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Poll ``url`` until it answers 200; fail with the log's tail if the process exits."""
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{_tail(log)}")
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {START_TIMEOUT:.0f} s:\n{_tail(log)}")


def stop_group(proc: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """SIGTERM the process group, SIGKILL it after ``grace`` seconds."""
    for signum, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, signum)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(log: Path, chars: int = 3000) -> str:
    try:
        return log.read_text(errors="replace")[-chars:]
    except OSError:
        return ""


def make_targets(names: Sequence[str], model: BenchModel, workdir: Path,
                 workers: int) -> list[Target]:
    """The targets named, in the order given."""
    from bench.serving.modelyard_target import ModelyardTarget

    factories: dict[str, Any] = {
        "floor": lambda: FloorTarget(model, workdir, workers),
        "modelyard": lambda: ModelyardTarget(model, workdir, workers),
        "modelyard-batching": lambda: ModelyardTarget(model, workdir, workers, batching=True),
        "mlflow": lambda: MlflowTarget(model, workdir, workers),
        "bentoml": lambda: BentomlTarget(model, workdir, workers, batching=False),
        "bentoml-batching": lambda: BentomlTarget(model, workdir, workers, batching=True),
    }
    return [factories[name]() for name in names]


TARGETS = ("floor", "modelyard", "modelyard-batching", "mlflow", "bentoml", "bentoml-batching")
