"""The ``/opt/ml`` tree of one host and the config files in ``input/config``.

The tree always lives at ``<host_dir>/opt_ml`` (its *real* location). What the work sees is its
*visible* root: ``/opt/ml`` when the tree is bind-mounted there (namespace isolation), the real
path otherwise (rewrite isolation). Config files and ``SM_*`` variables use visible paths; the
runtime itself always works on real paths.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from modelyard.runtime.plan import ChannelPlan, HostPlan

CONTAINER_ROOT = "/opt/ml"
GROUP_NAME = "homogeneousCluster"
NETWORK_INTERFACE = "eth0"

_DIRS = (
    "input/config",
    "input/data",
    "model",
    "output/data",
    "output/intermediate",
    "checkpoints",
    "code",
)


@dataclasses.dataclass(frozen=True)
class Layout:
    """Real and visible paths of one host's tree."""

    real: Path  # <host_dir>/opt_ml
    visible: str  # "/opt/ml" (namespace) or str(real) (rewrite)
    checkpoint_visible: str  # the checkpoint dir as the work sees it

    @classmethod
    def for_host(cls, host_dir: Path, plan: HostPlan, namespace: bool) -> Layout:
        """The layout of ``host_dir``; ``namespace`` says whether /opt/ml is the bind mount."""
        real = (host_dir / "opt_ml").resolve()
        visible = CONTAINER_ROOT if namespace else str(real)
        local = plan.checkpoint_local_path or f"{CONTAINER_ROOT}/checkpoints"
        if local == CONTAINER_ROOT or local.startswith(CONTAINER_ROOT + "/"):
            checkpoint = visible + local[len(CONTAINER_ROOT) :]
        elif namespace:
            checkpoint = local  # isolation bind-mounts the tree's checkpoints dir there
        else:
            # A shared host path would mix concurrent jobs' checkpoints: keep them in the tree.
            checkpoint = f"{visible}/checkpoints"
        return cls(real=real, visible=visible, checkpoint_visible=checkpoint)

    def path(self, relative: str) -> Path:
        """A real path inside the tree."""
        return self.real / relative

    def shown(self, relative: str) -> str:
        """The visible form of a path inside the tree."""
        return f"{self.visible}/{relative}" if relative else self.visible

    @property
    def checkpoint_dir(self) -> Path:
        """Real location of the checkpoint dir (inside the tree, see :meth:`for_host`)."""
        if self.checkpoint_visible.startswith(self.visible + "/"):
            return self.real / self.checkpoint_visible[len(self.visible) + 1 :]
        return self.real / "checkpoints"

    def create(self, channels: list[ChannelPlan]) -> None:
        """Make every directory of the tree, one per channel included."""
        for relative in _DIRS:
            self.path(relative).mkdir(parents=True, exist_ok=True)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        for channel in channels:
            self.path(f"input/data/{channel.name}").mkdir(parents=True, exist_ok=True)


def resource_config(plan: HostPlan) -> dict[str, Any]:
    """resourceconfig.json: hosts sorted, one homogeneous instance group."""
    hosts = sorted(plan.hosts)
    return {
        "current_host": plan.host,
        "current_instance_type": plan.instance_type,
        "current_group_name": GROUP_NAME,
        "hosts": hosts,
        "instance_groups": [
            {"instance_group_name": GROUP_NAME, "instance_type": plan.instance_type, "hosts": hosts}
        ],
        "network_interface_name": NETWORK_INTERFACE,
    }


def input_data_config(plan: HostPlan) -> dict[str, dict[str, str]]:
    """inputdataconfig.json, with the container's key names (not the API's)."""
    out: dict[str, dict[str, str]] = {}
    for channel in plan.channels:
        entry = {
            "TrainingInputMode": channel.input_mode,
            "S3DistributionType": channel.distribution,
            "RecordWrapperType": channel.record_wrapper or "None",
        }
        if channel.content_type:
            entry["ContentType"] = channel.content_type
        if channel.compression and channel.compression != "None":
            entry["CompressionType"] = channel.compression
        out[channel.name] = entry
    return out


def training_job_config(plan: HostPlan, hyperparameters: dict[str, str]) -> dict[str, Any]:
    """trainingjobconfig.json: the request as far as the plan knows it."""
    config: dict[str, Any] = {
        "TrainingJobName": plan.job_name,
        "TrainingJobArn": plan.job_arn,
        "HyperParameters": hyperparameters,
        "InputDataConfig": [_api_channel(c) for c in plan.channels],
        "ResourceConfig": {"InstanceType": plan.instance_type, "InstanceCount": len(plan.hosts)},
        "Environment": dict(plan.environment),
    }
    if plan.checkpoint_uri:
        config["CheckpointConfig"] = {
            "S3Uri": plan.checkpoint_uri,
            "LocalPath": plan.checkpoint_local_path,
        }
    return config


def _api_channel(channel: ChannelPlan) -> dict[str, Any]:
    source = {
        "S3DataType": channel.data_type,
        "S3Uri": channel.source_uri,
        "S3DataDistributionType": channel.distribution,
    }
    out: dict[str, Any] = {
        "ChannelName": channel.name,
        "DataSource": {"S3DataSource": source},
        "InputMode": channel.input_mode,
        "RecordWrapperType": channel.record_wrapper or "None",
    }
    if channel.content_type:
        out["ContentType"] = channel.content_type
    if channel.compression:
        out["CompressionType"] = channel.compression
    return out


def write_configs(layout: Layout, plan: HostPlan, hyperparameters: dict[str, str]) -> None:
    """Write every file of ``input/config``; ``hyperparameters`` are the (rewritten) strings."""
    files: dict[str, Any] = {
        "hyperparameters.json": hyperparameters,
        "inputdataconfig.json": input_data_config(plan),
        "resourceconfig.json": resource_config(plan),
        "trainingjobconfig.json": training_job_config(plan, hyperparameters),
    }
    if plan.checkpoint_uri:
        files["checkpointconfig.json"] = {
            "LocalPath": layout.checkpoint_visible,
            "S3Uri": plan.checkpoint_uri,
        }
    config_dir = layout.path("input/config")
    for name, content in files.items():
        (config_dir / name).write_text(json.dumps(content))
