"""Following a job's logs through the CloudWatch Logs API, as the SageMaker SDK does."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

TERMINAL = ("Completed", "Failed", "Stopped")
LOG_GROUP = "/aws/sagemaker/TrainingJobs"


def host_of(stream: str) -> str:
    """``job/algo-2-1700000000`` → ``algo-2``."""
    return stream.split("/", 1)[-1].rsplit("-", 1)[0]


def line_prefix(stream: str) -> str:
    """What to print before a log line: nothing for algo-1, ``[algo-N] `` for the others."""
    host = host_of(stream)
    return "" if host == "algo-1" else f"[{host}] "


def follow_training_job(
    sagemaker: Any,
    logs: Any,
    job_name: str,
    follow: bool = True,
    poll: float = 0.2,
    on_status: Callable[[dict[str, Any]], None] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(stream name, event)`` for every log line of a training job (see :func:`follow_job`)."""
    def describe() -> dict[str, Any]:
        return dict(sagemaker.describe_training_job(TrainingJobName=job_name))

    return follow_job(describe, "TrainingJobStatus", logs, LOG_GROUP, job_name, follow, poll, on_status)


def follow_job(
    describe: Callable[[], dict[str, Any]],
    status_key: str,
    logs: Any,
    log_group: str,
    job_name: str,
    follow: bool = True,
    poll: float = 0.2,
    on_status: Callable[[dict[str, Any]], None] | None = None,
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield ``(stream name, event)`` for every log line of any job kind, in order per stream.

    With ``follow``, keeps polling until ``describe()[status_key]`` is terminal and every stream
    is drained; ``on_status`` receives each ``describe()`` answer along the way.
    """
    tokens: dict[str, str | None] = {}
    while True:
        job = describe()
        if on_status is not None:
            on_status(job)
        done = job[status_key] in TERMINAL
        streams = logs.describe_log_streams(
            logGroupName=log_group, logStreamNamePrefix=f"{job_name}/", orderBy="LogStreamName"
        )["logStreams"]
        drained = True
        for stream in streams:
            name = stream["logStreamName"]
            kwargs: dict[str, Any] = {"logGroupName": log_group, "logStreamName": name, "startFromHead": True}
            if tokens.get(name):
                kwargs["nextToken"] = tokens[name]
            page = logs.get_log_events(**kwargs)
            for event in page["events"]:
                yield name, event
            if page["events"]:
                drained = False
            tokens[name] = page["nextForwardToken"]
        if not follow or (done and drained):
            return
        if drained:
            time.sleep(poll)
