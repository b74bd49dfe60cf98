"""The host plan: everything one job host needs, written by the controller as ``plan.json``.

The controller writes one plan per host into ``<host_dir>/plan.json`` and starts
``python -m modelyard.runtime <host_dir>``. The runtime reads nothing else from the server: it
fetches inputs through :mod:`modelyard.artifacts` (configured by the forwarded ``MODELYARD_*``
variables), runs the work, uploads outputs and reports progress in two append-only files of the
host dir, which the controller tails:

- ``events.jsonl``: one JSON object a line, ``{"t": <epoch s>, "event": ..., ...}``:
  ``{"event": "status", "status": "Downloading", "message": "..."}`` on each secondary-status
  change; ``{"event": "exit", "code": <int>, "failure": "<reason or null>"}`` exactly once, last.
- ``logs.jsonl``: ``{"t": <epoch ms>, "m": "<one log line without newline>"}`` for every line the
  work printed (stdout and stderr), in order.

Exit codes of the runtime process: 0 success, 1 the algorithm or user script failed
(``failure`` says why), 2 the platform failed (bad plan, unreachable store), 143 stopped by
SIGTERM (the model and output data are still uploaded, best effort, by the host whose
``upload_outputs`` is set; checkpoints are synced by every host).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Self

PLAN_FILE = "plan.json"
EVENTS_FILE = "events.jsonl"
LOGS_FILE = "logs.jsonl"

EXIT_OK = 0
EXIT_ALGORITHM_ERROR = 1
EXIT_PLATFORM_ERROR = 2
EXIT_STOPPED = 143


class PlanFile:
    """How every job plan travels: one ``plan.json`` in the host dir, replaced atomically.

    Subclasses are frozen dataclasses with a ``host`` field (the kernel names streams and dirs
    after it); one whose fields hold nested records overrides :meth:`from_json`.
    """

    host: str

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=1, sort_keys=True)  # type: ignore[call-overload]

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls(**json.loads(text))

    def write(self, host_dir: Path) -> Path:
        host_dir.mkdir(parents=True, exist_ok=True)
        path = host_dir / PLAN_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)
        return path

    @classmethod
    def read(cls, host_dir: Path) -> Self:
        return cls.from_json((host_dir / PLAN_FILE).read_text())


@dataclasses.dataclass(frozen=True)
class ChannelPlan:
    """One input channel, in the API's terms plus its resolved source URI."""

    name: str
    source_uri: str
    data_type: str = "S3Prefix"  # S3Prefix | ManifestFile
    input_mode: str = "File"  # File | FastFile
    distribution: str = "FullyReplicated"  # FullyReplicated | ShardedByS3Key
    content_type: str | None = None
    compression: str | None = None  # None | Gzip
    record_wrapper: str = "None"


@dataclasses.dataclass(frozen=True)
class HostPlan(PlanFile):
    """One host of one training job."""

    job_name: str
    job_arn: str
    host: str  # algo-1 ... algo-N
    hosts: list[str]
    instance_type: str
    framework: str  # xgboost | sklearn | torch
    hyperparameters: dict[str, str]
    channels: list[ChannelPlan]
    environment: dict[str, str]
    model_uri: str  # where model.tar.gz goes (or the model/ prefix when uncompressed)
    output_uri: str  # where output.tar.gz goes
    compress_model: bool = True
    upload_outputs: bool = True  # only the first host uploads model and output data
    checkpoint_uri: str | None = None
    checkpoint_local_path: str = "/opt/ml/checkpoints"
    region: str = "us-east-1"
    isolation: str = "rewrite"  # namespace: /opt/ml is a private bind mount; rewrite: paths
    master_port: int = 0  # torch distributed rendezvous port on 127.0.0.1 (0: not used)
    attempt: int = 1  # spot restarts count up from 1

    @classmethod
    def from_json(cls, text: str) -> HostPlan:
        raw: dict[str, Any] = json.loads(text)
        raw["channels"] = [ChannelPlan(**c) for c in raw.get("channels", [])]
        return cls(**raw)
