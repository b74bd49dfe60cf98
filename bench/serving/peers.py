"""Separate, pinned virtual environments for the peer servers (MLflow, BentoML).

The peers never enter the project's own environment or ``pyproject.toml``: each gets its own
venv under ``bench/.venv-peers/<name>`` (git-ignored), created on first use with the pins below
and reused afterwards. A venv is ready once its ``.bench-ready`` marker holds the exact pins it
was built with, so changing a pin rebuilds it.

Usage from the command line (the bench does this by itself when a peer is selected)::

    .venv/bin/python -m bench.serving.peers mlflow bentoml
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
PEERS_ROOT = BENCH / ".venv-peers"
#: the interpreter the project's venv was built from, so every server runs the same Python
BASE_PYTHON = Path(getattr(sys, "_base_executable", sys.executable))


@dataclass(frozen=True)
class PeerEnv:
    """One peer's venv: its name and the exact requirements it is built from."""

    name: str
    requirements: tuple[str, ...]

    @property
    def root(self) -> Path:
        return PEERS_ROOT / self.name

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def bin(self, tool: str) -> Path:
        """Path of a console script installed in this venv."""
        return self.root / "bin" / tool

    @property
    def _marker(self) -> Path:
        return self.root / ".bench-ready"

    def ready(self) -> bool:
        """Whether the venv exists and was built from exactly these requirements."""
        try:
            return json.loads(self._marker.read_text()) == list(self.requirements)
        except (OSError, ValueError):
            return False

    def ensure(self) -> PeerEnv:
        """Create (or rebuild) the venv if needed; raise ``RuntimeError`` naming the cause."""
        if self.ready():
            return self
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.parent.mkdir(parents=True, exist_ok=True)
        print(f"creating {self.root} with {' '.join(self.requirements)}", file=sys.stderr, flush=True)
        _run([str(BASE_PYTHON), "-m", "venv", str(self.root)])
        _run([str(self.python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
              *self.requirements])
        self._marker.write_text(json.dumps(list(self.requirements)))
        return self

    def versions(self) -> dict[str, str]:
        """``pip freeze`` of the venv as {name: version}, kept with the results."""
        out = subprocess.run([str(self.python), "-m", "pip", "freeze", "--disable-pip-version-check"],
                             capture_output=True, text=True, check=True).stdout
        return dict(line.split("==", 1) for line in out.splitlines() if "==" in line)


def _run(cmd: list[str]) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed:\n{result.stderr[-2000:]}")


#: the project's xgboost, so every target scores with the same library version. (The newest
#: mlflow and bentoml releases need packages the package index here does not have yet.)
XGBOOST_PIN = "xgboost==3.2.0"
MLFLOW = PeerEnv("mlflow", ("mlflow==3.17.2", XGBOOST_PIN))
BENTOML = PeerEnv("bentoml", ("bentoml==1.4.39", XGBOOST_PIN))
PEERS = {env.name: env for env in (MLFLOW, BENTOML)}


if __name__ == "__main__":
    for name in sys.argv[1:]:
        PEERS[name].ensure()
        print(f"{name}: ready at {PEERS[name].root}")
