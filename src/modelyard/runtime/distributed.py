"""Wiring for multi-host jobs: rendezvous variables and the torchrun launcher.

Every host of a job runs on this machine (or on a Ray node) as its own runtime process, so the
master is reachable at 127.0.0.1 — or as ``algo-1`` under namespace isolation, where the job's
hosts file maps it there — on the port the controller reserved (``plan.master_port``).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from modelyard.core.errors import MissingExtra
from modelyard.runtime.failures import ClientError
from modelyard.runtime.hyperparameters import Hyperparameters
from modelyard.runtime.plan import HostPlan

_TORCH_FLAGS = ("sagemaker_torch_distributed_enabled", "sagemaker_pytorch_ddp_enabled")


def master_address(plan: HostPlan, namespace: bool) -> str:
    """Where rank 0 listens."""
    return sorted(plan.hosts)[0] if namespace else "127.0.0.1"


def rendezvous_env(plan: HostPlan, namespace: bool) -> dict[str, str]:
    """MASTER_ADDR, WORLD_SIZE, RANK ... for plain scripts (only for more than one host)."""
    env: dict[str, str] = {}
    if plan.master_port:
        env["MODELYARD_MASTER_PORT"] = str(plan.master_port)
    hosts = sorted(plan.hosts)
    if len(hosts) < 2:
        return env
    rank = str(hosts.index(plan.host))
    env.update(
        MASTER_ADDR=master_address(plan, namespace),
        WORLD_SIZE=str(len(hosts)),
        RANK=rank,
        NODE_RANK=rank,
        LOCAL_RANK="0",
    )
    if plan.master_port:
        env["MASTER_PORT"] = str(plan.master_port)
    return env


def uses_torchrun(hps: Hyperparameters) -> bool:
    """Whether the estimator's ``distribution`` asked for torch.distributed."""
    return any(hps.flag(flag) for flag in _TORCH_FLAGS)


def torchrun_command(
    python: Path, plan: HostPlan, namespace: bool, program: str, args: list[str]
) -> list[str]:
    """``python -m torch.distributed.run ... program args`` for this host (one process each)."""
    require_torch(python)
    hosts = sorted(plan.hosts)
    command = [str(python), "-m", "torch.distributed.run", "--nproc_per_node", "1"]
    if len(hosts) > 1:
        command += [
            "--nnodes",
            str(len(hosts)),
            "--node_rank",
            str(hosts.index(plan.host)),
            "--master_addr",
            master_address(plan, namespace),
            "--master_port",
            str(plan.master_port or 7777),
        ]
    return command + [program, *args]


def require_torch(python: Path) -> None:
    """Raise ClientError naming the ``torch`` extra when ``python`` cannot import torch."""
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"
    found = subprocess.run([str(python), "-c", probe], capture_output=True).returncode == 0
    if not found:
        missing = MissingExtra("torch (needed by distribution torch_distributed)", "torch")
        raise ClientError(str(missing))
