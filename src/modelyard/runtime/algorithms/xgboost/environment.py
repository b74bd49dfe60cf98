"""Where the algorithm finds its inputs and puts its outputs, from the container environment.

Precedence: an ``SM_*`` variable when set, else the path the SageMaker container layout gives
under ``SAGEMAKER_BASE_DIR`` (default ``/opt/ml``), exactly as the training toolkit derives it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .errors import ClientError

DEFAULT_BASE_DIR = "/opt/ml"


@dataclasses.dataclass(frozen=True)
class AlgorithmEnvironment:
    """Resolved paths and cluster facts of one algorithm process."""

    base_dir: Path
    hyperparameters_file: Path
    input_data_config_file: Path
    checkpoint_config_file: Path
    model_dir: Path
    output_dir: Path
    output_data_dir: Path
    hosts: tuple[str, ...]
    current_host: str
    master_port: int
    environ: Mapping[str, str] = dataclasses.field(repr=False, default_factory=dict)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AlgorithmEnvironment:
        """Build the environment of this process from ``os.environ`` (or a test mapping)."""
        base = Path(environ.get("SAGEMAKER_BASE_DIR") or DEFAULT_BASE_DIR)
        config = base / "input" / "config"
        output = Path(environ.get("SM_OUTPUT_DIR") or base / "output")
        hosts = _hosts(environ.get("SM_HOSTS"), config / "resourceconfig.json")
        return cls(
            base_dir=base,
            hyperparameters_file=_path(environ, "SM_INPUT_TRAINING_CONFIG_FILE", config / "hyperparameters.json"),
            input_data_config_file=_path(environ, "SM_INPUT_DATA_CONFIG_FILE", config / "inputdataconfig.json"),
            checkpoint_config_file=_path(environ, "SM_CHECKPOINT_CONFIG_FILE", config / "checkpointconfig.json"),
            model_dir=_path(environ, "SM_MODEL_DIR", base / "model"),
            output_dir=output,
            output_data_dir=_path(environ, "SM_OUTPUT_DATA_DIR", output / "data"),
            hosts=hosts,
            current_host=environ.get("SM_CURRENT_HOST") or hosts[0],
            master_port=int(environ.get("MODELYARD_MASTER_PORT") or 0),
            environ=dict(environ),
        )

    @property
    def failure_file(self) -> Path:
        """``<output>/failure``: its first line becomes the job's FailureReason."""
        return self.output_dir / "failure"

    def channel_dir(self, channel: str) -> Path:
        """The local folder of one input channel (``SM_CHANNEL_<NAME>`` or the default)."""
        variable = f"SM_CHANNEL_{channel.upper()}"
        return _path(self.environ, variable, self.base_dir / "input" / "data" / channel)

    def checkpoint_dir(self) -> Path:
        """Where checkpoints are written and resumed from.

        ``LocalPath`` of ``checkpointconfig.json`` when the job has a CheckpointConfig, else
        ``<base>/checkpoints``; checkpointing is always on so that a stop can save the model.
        """
        config = read_json(self.checkpoint_config_file, default={})
        local_path = config.get("LocalPath") if isinstance(config, dict) else None
        return Path(local_path) if local_path else self.base_dir / "checkpoints"


def read_json(path: Path, default: Any) -> Any:
    """Parse one config file; a missing file gives ``default``, a broken one a ClientError."""
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text() or "null") or default
    except json.JSONDecodeError as e:
        raise ClientError(f"{path.name} is not valid JSON: {e}") from e


def _path(environ: Mapping[str, str], variable: str, default: Path) -> Path:
    value = environ.get(variable)
    return Path(value) if value else default


def _hosts(sm_hosts: str | None, resource_config: Path) -> tuple[str, ...]:
    # SM_HOSTS is JSON; resourceconfig.json is the fallback the toolkit itself reads. Both are
    # already sorted by the platform, and the first host is the master.
    if sm_hosts:
        hosts = json.loads(sm_hosts)
    else:
        hosts = read_json(resource_config, default={}).get("hosts") or ["algo-1"]
    return tuple(str(h) for h in hosts)
