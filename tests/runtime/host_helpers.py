"""Helpers for running ``python -m modelyard.runtime`` on plans that point at local folders."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from modelyard.runtime.plan import ChannelPlan, HostPlan

#: a script that dumps its environment, arguments and cwd into the model dir
DUMP_SCRIPT = """\
import json, os, sys
record = {"env": dict(os.environ), "args": sys.argv[1:], "cwd": os.getcwd(), "exe": sys.executable}
with open(os.path.join(os.environ["SM_MODEL_DIR"], "dump.json"), "w") as f:
    json.dump(record, f)
print("dumped")
"""


@dataclasses.dataclass
class Job:
    """One host dir, its plan and the result of running it."""

    root: Path
    host_dir: Path
    plan: HostPlan
    returncode: int | None = None

    @property
    def tree(self) -> Path:
        return self.host_dir / "opt_ml"

    def events(self) -> list[dict[str, Any]]:
        return _read_jsonl(self.host_dir / "events.jsonl")

    def logs(self) -> list[str]:
        return [r["m"] for r in _read_jsonl(self.host_dir / "logs.jsonl")]

    def exit_event(self) -> dict[str, Any]:
        exits = [e for e in self.events() if e["event"] == "exit"]
        assert len(exits) == 1, self.events()
        return exits[0]

    def statuses(self) -> list[str]:
        return [e["status"] for e in self.events() if e["event"] == "status"]

    def dump(self) -> dict[str, Any]:
        return json.loads((self.tree / "model" / "dump.json").read_text())

    def config(self, name: str) -> Any:
        return json.loads((self.tree / "input" / "config" / name).read_text())


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def runtime_env(root: Path, **extra: str) -> dict[str, str]:
    """The environment a controller would give the runtime: settings pointing into ``root``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODELYARD_")}
    env.update(
        MODELYARD_HOME=str(root / "home"),
        MODELYARD_ARTIFACT_ROOT=str(root / "artifacts"),
        MODELYARD_STOP_GRACE_SECONDS="10",
    )
    env.update(extra)
    return env


def write_code(directory: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (name → text, dedented) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return directory


def make_tar_gz(source: Path, target: Path) -> Path:
    """A sourcedir.tar.gz-style archive of ``source``'s contents (no leading dir)."""
    with tarfile.open(target, "w:gz") as tar:
        for path in sorted(source.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(source)), recursive=False)
    return target


def script_hps(code: Path | str, program: str = "train.py", **user: str) -> dict[str, str]:
    """Hyperparameters as the SageMaker SDK sends them for a Framework estimator."""
    hps = {
        "sagemaker_program": json.dumps(program),
        "sagemaker_submit_directory": json.dumps(str(code)),
        "sagemaker_container_log_level": "20",
        "sagemaker_region": json.dumps("us-east-1"),
    }
    hps.update(user)
    return hps


def job_factory(tmp_path: Path) -> Callable[..., Job]:
    """Build a job whose "S3" is local folders under tmp_path; fields override the plan."""

    def build(name: str = "job", **fields: Any) -> Job:
        root = tmp_path
        host = fields.get("host", "algo-1")
        host_dir = root / "hosts" / f"{name}-{host}"
        out = root / "s3out" / name
        values: dict[str, Any] = {
            "job_name": name,
            "job_arn": f"arn:aws:sagemaker:us-east-1:000000000000:training-job/{name}",
            "host": host,
            "hosts": ["algo-1"],
            "instance_type": "ml.m5.xlarge",
            "framework": "sklearn",
            "hyperparameters": {},
            "channels": [],
            "environment": {},
            "model_uri": str(out / "output" / "model.tar.gz"),
            "output_uri": str(out / "output" / "output.tar.gz"),
        }
        values.update(fields)
        plan = HostPlan(**values)
        plan.write(host_dir)
        return Job(root=root, host_dir=host_dir, plan=plan)

    return build


def start(job: Job, **env: str) -> subprocess.Popen[bytes]:
    """Start the runtime on ``job`` without waiting."""
    return subprocess.Popen(
        [sys.executable, "-m", "modelyard.runtime", str(job.host_dir)],
        env=runtime_env(job.root, **env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def run(job: Job, timeout: float = 120, **env: str) -> Job:
    """Run the runtime on ``job`` to its end; the job, with its return code."""
    proc = start(job, **env)
    output, _ = proc.communicate(timeout=timeout)
    job.returncode = proc.returncode
    if output:
        print(output.decode(errors="replace"))
    return job


def channel(name: str, source: Path, **fields: Any) -> ChannelPlan:
    """A channel reading a local folder (the "S3 prefix")."""
    return ChannelPlan(name=name, source_uri=str(source) + "/", **fields)


def tiny_wheel(directory: Path) -> Path:
    """``tinypkg`` 0.1 as a pure-Python wheel (a zip with dist-info), built without tools.

    No network and no `wheel` package offline: the local package is a wheel made by hand.
    """
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "tinypkg-0.1-py3-none-any.whl"
    info = "tinypkg-0.1.dist-info"
    files = {
        "tinypkg/__init__.py": "VALUE = 42\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 0.1\n",
        f"{info}/WHEEL": (
            "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        ),
    }
    record = "".join(f"{name},,\n" for name in [*files, f"{info}/RECORD"])
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in {**files, f"{info}/RECORD": record}.items():
            wheel.writestr(name, text)
    return path
