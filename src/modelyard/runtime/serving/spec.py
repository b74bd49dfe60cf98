"""What a worker process needs to know, decided once by the instance process.

The instance process resolves paths, the user module and limits at startup and hands them to
each worker as one JSON argument, so workers never read the plan or touch the artifact store.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

DEFAULT_MAX_PAYLOAD_MB = 6
#: SAGEMAKER_TS_BATCH_SIZE and SAGEMAKER_TS_MAX_BATCH_DELAY (ms) when unset, as in
#: SageMaker's PyTorch/TorchServe containers: one request at a time
DEFAULT_BATCH_SIZE = 1
DEFAULT_MAX_BATCH_DELAY_MS = 100.0


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
    multi_model: dict[str, Any] | None = None  # multimodel.MultiModelSettings, as a dict
    batch_size: int = DEFAULT_BATCH_SIZE  # requests per predict_fn call at most (see batching)
    max_batch_delay_ms: float = DEFAULT_MAX_BATCH_DELAY_MS  # longest a request waits for others

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
