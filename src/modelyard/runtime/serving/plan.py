"""The serve plan: what one model-server instance needs, written by the endpoint controller.

The controller writes ``<instance_dir>/plan.json`` and starts
``python -m modelyard.runtime.serving <instance_dir>``. Like a training host, the instance reads
nothing else from the server: it fetches the model through :mod:`modelyard.artifacts`
(configured by the forwarded ``MODELYARD_*`` variables), loads it, and serves the SageMaker
container HTTP contract on ``127.0.0.1:<port>``: ``GET /ping``, ``POST /invocations``,
``GET /execution-parameters``. It reports through two append-only files of the instance dir:

- ``events.jsonl``: ``{"t": <epoch s>, "event": "status", "status": "Downloading"|"Loading"|
  "InService", "message": "..."}`` as it starts; ``{"event": "exit", "code": <int>, "failure":
  "<reason or null>"}`` once, last, when it stops or fails to start.
- ``logs.jsonl``: ``{"t": <epoch ms>, "m": "<line>"}`` for every line the server or the user's
  handler code printed.

The instance process is the supervisor of ``workers`` worker processes sharing the port; a
worker that dies is replaced. SIGTERM stops the instance gracefully (in-flight requests finish).
"""

from __future__ import annotations

import dataclasses

# an instance reports through the same files as a job host
from modelyard.runtime.plan import EVENTS_FILE, LOGS_FILE, PLAN_FILE, PlanFile

__all__ = ["EVENTS_FILE", "LOGS_FILE", "PLAN_FILE", "ServePlan"]


@dataclasses.dataclass(frozen=True)
class ServePlan(PlanFile):
    """One instance of one production variant of one endpoint."""

    endpoint_name: str
    variant_name: str
    instance_id: str  # e.g. "i-3f2a9c01": unique within the variant
    model_name: str
    framework: str  # xgboost | sklearn | torch
    model_data_url: str | None  # model.tar.gz URI, or an uncompressed prefix (see below)
    port: int  # 127.0.0.1 port this instance listens on
    workers: int = 1  # SAGEMAKER_MODEL_SERVER_WORKERS, or the instance type's vCPUs
    model_data_compressed: bool = True  # False: ModelDataSource S3Prefix, uncompressed
    environment: dict[str, str] = dataclasses.field(default_factory=dict)
    region: str = "us-east-1"
    isolation: str = "rewrite"  # namespace: /opt/ml is a private bind mount (as for training)
    # Mode MultiModel: model_data_url is a prefix of model.tar.gz files, loaded on demand
    multi_model: bool = False
    model_cache: bool = True  # MultiModelConfig.ModelCacheSetting Enabled
    memory_mb: int = 0  # the instance type's memory, bounding the loaded models (0: the machine's)
