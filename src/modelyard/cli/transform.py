"""``modelyard transform-jobs list|describe|stop|logs``.

``describe`` adds a ``Progress`` row (records and objects written so far, summed over hosts)
read from the hosts' progress lines in the job's log: DescribeTransformJob has no member for it.
"""

from __future__ import annotations

import click

from modelyard.cli.options import common, list_filters, newest, session_for
from modelyard.cli.output import print_log_events, show_fields, show_table

_DESCRIBE_FIELDS = (
    "TransformJobName", "TransformJobStatus", "FailureReason", "Progress", "ModelName",
    "CreationTime", "TransformStartTime", "TransformEndTime", "BatchStrategy", "MaxPayloadInMB",
    "MaxConcurrentTransforms", "TransformInput", "TransformOutput", "TransformResources",
    "DataProcessing",
)
_LIST_COLUMNS = ["TransformJobName", "TransformJobStatus", "CreationTime", "TransformEndTime"]


@click.group("transform-jobs")
def transform_jobs() -> None:
    """List, inspect, stop and follow batch transform jobs."""


@transform_jobs.command("list")
@common
@list_filters
def list_jobs(home, endpoint_url, output, status, name_contains, limit):  # noqa: ANN001, ANN201
    """Transform jobs, newest first."""
    sm = session_for(home, endpoint_url).sagemaker
    jobs = newest(sm, "list_transform_jobs", "TransformJobSummaries", status, name_contains, limit)
    show_table(output, jobs, _LIST_COLUMNS)


@transform_jobs.command("describe")
@common
@click.argument("name")
def describe(home, endpoint_url, output, name):  # noqa: ANN001, ANN201
    """One transform job in full, with its progress so far."""
    from modelyard.sdk.transformer import transform_progress

    session = session_for(home, endpoint_url)
    job = dict(session.sagemaker.describe_transform_job(TransformJobName=name))
    progress = transform_progress(session.logs, name)
    if progress is not None:
        job["Progress"] = progress if output == "json" else (
            f"{progress['records']} records, {progress['objects']}/{progress['total_objects']} objects"
        )
    show_fields(output, job, _DESCRIBE_FIELDS)


@transform_jobs.command("stop")
@common
@click.argument("name")
def stop(home, endpoint_url, output, name):  # noqa: ANN001, ANN201
    """Stop a running transform job (outputs not yet uploaded are dropped)."""
    session_for(home, endpoint_url).sagemaker.stop_transform_job(TransformJobName=name)
    click.echo(f"Stopping {name}")


@transform_jobs.command("logs")
@common
@click.argument("name")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends.")
def logs(home, endpoint_url, output, name, follow):  # noqa: ANN001, ANN201
    """Print a job's log lines (every host), optionally following them live."""
    from modelyard.sdk.logs import follow_job
    from modelyard.sdk.transformer import LOG_GROUP

    session = session_for(home, endpoint_url)

    def describe() -> dict:
        return dict(session.sagemaker.describe_transform_job(TransformJobName=name))

    print_log_events(follow_job(describe, "TransformJobStatus", session.logs, LOG_GROUP, name, follow=follow), output)
