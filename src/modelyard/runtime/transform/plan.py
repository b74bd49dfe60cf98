"""The transform plan: everything one batch transform host needs, written by the controller.

The controller writes ``<host_dir>/plan.json`` (see :class:`~modelyard.runtime.plan.PlanFile`)
and starts ``python -m modelyard.runtime.transform <host_dir>``. The host reports through the
same ``events.jsonl``/``logs.jsonl`` protocol and exit codes as a training host
(:mod:`modelyard.runtime.plan`). Progress goes into the log as lines starting with
:data:`PROGRESS_PREFIX` (``[modelyard] progress records=N objects=M/T``), which the CLI reads:
DescribeTransformJob has no member for it.

Fields left ``None`` (batch strategy, payload limit, concurrency) are asked of the model
server's ``/execution-parameters``, as SageMaker does.
"""

from __future__ import annotations

import dataclasses

from modelyard.runtime.plan import PlanFile

PROGRESS_PREFIX = "[modelyard] progress "


@dataclasses.dataclass(frozen=True)
class TransformPlan(PlanFile):
    """One host of one transform job."""

    job_name: str
    job_arn: str
    host: str  # algo-1 ... algo-N
    host_index: int  # 0-based; the host's share of the input objects
    host_count: int
    model_name: str
    framework: str  # xgboost | sklearn | torch: the model server's default handlers
    model_data_url: str | None
    model_data_compressed: bool
    environment: dict[str, str]  # the model container's, then the job's Environment
    instance_type: str
    input_uri: str  # S3Prefix
    output_uri: str  # S3OutputPath
    content_type: str | None = None
    compression: str = "None"  # None | Gzip
    split_type: str = "None"  # None | Line
    accept: str | None = None
    assemble_with: str = "None"  # None | Line
    batch_strategy: str | None = None  # MultiRecord | SingleRecord; None: execution-parameters
    max_payload_mb: int | None = None
    max_concurrent: int | None = None
    timeout_seconds: float = 600.0
    max_retries: int = 3
    input_filter: str = "$"
    output_filter: str = "$"
    join_source: str = "None"  # None | Input
    region: str = "us-east-1"
    isolation: str = "rewrite"
