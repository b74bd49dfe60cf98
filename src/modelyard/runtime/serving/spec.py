"""What a worker process needs to know, decided once by the instance process.

The instance process resolves paths, the user module and limits at startup and hands them to
each worker as one JSON argument, so workers never read the plan or touch the artifact store.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

DEFAULT_MAX_PAYLOAD_MB = 6


@dataclasses.dataclass(frozen=True)
class WorkerSpec:
    """The resolved startup decisions shared by every worker of one instance."""

    framework: str  # xgboost | sklearn | torch: picks the default handlers
    model_dir: str  # as the handlers see it (/opt/ml/model, or its real path)
    code_dirs: list[str]  # prepended to sys.path, first wins
    program: str | None  # the user module's file name (inference.py), None: defaults only
    workers: int
    max_payload_mb: int = DEFAULT_MAX_PAYLOAD_MB
    default_accept: str | None = None  # SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT

    @property
    def max_payload_bytes(self) -> int:
        """The request body limit in bytes."""
        return self.max_payload_mb * 1024 * 1024

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkerSpec:
        raw: dict[str, Any] = json.loads(text)
        return cls(**raw)
