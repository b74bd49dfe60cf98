"""Wiring for multi-host jobs: rendezvous variables and the torchrun launcher.

Every host of a job is its own runtime process on this machine, so the hosts share one loopback
interface and the master (rank 0, the first of the sorted hosts, as the toolkit picks it) is
reachable at 127.0.0.1 on the port the controller reserved (``plan.master_port``).

``MASTER_ADDR`` names the master host (``algo-1``) as the PyTorch container does when namespace
isolation is on and the job's hosts file really makes that name resolve to loopback; otherwise
(rewrite isolation, or a resolver that bypasses ``/etc/hosts`` such as nscd) it is 127.0.0.1.

``distribution={"torch_distributed": ...}`` (or ``pytorch_ddp``, which SageMaker runs through
its own SMDataParallel launcher, not available here) starts
``python -m torch.distributed.run`` on every host with static rendezvous at the master; like the
toolkit, it accepts only a Python script as the entry point.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import subprocess
from pathlib import Path

from modelyard.core.errors import MissingExtra
from modelyard.runtime import entrypoint
from modelyard.runtime.failures import ClientError
from modelyard.runtime.hyperparameters import Hyperparameters
from modelyard.runtime.plan import HostPlan

LOOPBACK = "127.0.0.1"
#: the PyTorch container's port, used only when the controller reserved none
DEFAULT_MASTER_PORT = 7777

_TORCH_FLAGS = ("sagemaker_torch_distributed_enabled", "sagemaker_pytorch_ddp_enabled")


def master_address(plan: HostPlan, namespace: bool) -> str:
    """Where rank 0 listens: the master's host name when it resolves here, else 127.0.0.1."""
    master = min(plan.hosts)  # the toolkit sorts the hosts and takes the first
    if namespace and _resolves_to_loopback(master):
        return master
    return LOOPBACK


@functools.cache
def _resolves_to_loopback(name: str) -> bool:
    """Whether every address of ``name`` is a loopback one (False when it does not resolve)."""
    try:
        infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def rendezvous_env(plan: HostPlan, namespace: bool) -> dict[str, str]:
    """MASTER_ADDR, WORLD_SIZE, RANK ... for plain scripts (only for more than one host).

    One process per host: ``init_process_group()`` with its default ``env://`` works unchanged.
    Under torchrun these are the agent's; it gives its workers their own.
    """
    env: dict[str, str] = {}
    if plan.master_port:
        env["MODELYARD_MASTER_PORT"] = str(plan.master_port)
    hosts = sorted(plan.hosts)
    if len(hosts) < 2:
        return env
    rank = str(hosts.index(plan.host))
    env.update(
        MASTER_ADDR=master_address(plan, namespace),
        MASTER_PORT=str(plan.master_port or DEFAULT_MASTER_PORT),
        WORLD_SIZE=str(len(hosts)),
        RANK=rank,
        NODE_RANK=rank,
        LOCAL_RANK="0",
    )
    return env


def uses_torchrun(hps: Hyperparameters) -> bool:
    """Whether the estimator's ``distribution`` asked for torch.distributed."""
    return any(hps.flag(flag) for flag in _TORCH_FLAGS)


def torchrun_command(
    python: Path,
    plan: HostPlan,
    namespace: bool,
    kind: str,
    program: str,
    args: list[str],
    processes: int = 1,
) -> list[str]:
    """``python -m torch.distributed.run ... program args`` for this host.

    ``processes`` is the toolkit's processes per host: the host's GPUs, or 1 without any.
    ClientError for an entry point that is not a Python script, or when torch is missing.
    """
    if kind == entrypoint.PACKAGE:
        raise ClientError(_NO_PACKAGES)
    if kind != entrypoint.PROGRAM:
        raise ClientError(_NOT_A_SCRIPT)
    require_torch(python)
    hosts = sorted(plan.hosts)
    command = [str(python), "-m", "torch.distributed.run", "--nnodes", str(len(hosts))]
    command += ["--nproc_per_node", str(max(1, processes))]
    if len(hosts) > 1:
        command += [
            "--master_addr",
            master_address(plan, namespace),
            "--master_port",
            str(plan.master_port or DEFAULT_MASTER_PORT),
            "--node_rank",
            str(hosts.index(plan.host)),
        ]
    return command + [program, *args]


# The toolkit's refusals, word for word: torchrun starts a script, not a package or a command.
_NO_PACKAGES = (
    "Python packages are not supported for torch_distributed. "
    "Please use a python script as the entry-point"
)
_NOT_A_SCRIPT = "Unsupported entry point type for torch_distributed"


def require_torch(python: Path) -> None:
    """Raise ClientError naming the ``torch`` extra when ``python`` cannot import torch."""
    probe = "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"
    probed = subprocess.run([str(python), "-c", probe], capture_output=True, check=False)
    found = probed.returncode == 0
    if not found:
        missing = MissingExtra("torch (needed by distribution torch_distributed)", "torch")
        raise ClientError(str(missing))
