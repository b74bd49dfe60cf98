"""``modelyard training-jobs list|describe|stop|logs|metrics|interrupt``."""

from __future__ import annotations

import click

from modelyard.cli.options import common, list_filters, newest, session_for
from modelyard.cli.output import print_log_events, show_fields, show_table

_DESCRIBE_FIELDS = (
    "TrainingJobName", "TrainingJobStatus", "SecondaryStatus", "FailureReason", "CreationTime",
    "TrainingStartTime", "TrainingEndTime", "TrainingTimeInSeconds", "BillableTimeInSeconds",
    "ModelArtifacts", "FinalMetricDataList", "HyperParameters", "ResourceConfig",
)


@click.group("training-jobs")
def training_jobs() -> None:
    """List, inspect, stop and follow training jobs."""


@training_jobs.command("list")
@common
@list_filters
def list_jobs(home, endpoint_url, output, status, name_contains, limit):  # noqa: ANN001, ANN201
    """Training jobs, newest first."""
    sm = session_for(home, endpoint_url).sagemaker
    jobs = newest(sm, "list_training_jobs", "TrainingJobSummaries", status, name_contains, limit)
    show_table(output, jobs, ["TrainingJobName", "TrainingJobStatus", "SecondaryStatus", "CreationTime", "TrainingEndTime"])


@training_jobs.command("describe")
@common
@click.argument("name")
def describe(home, endpoint_url, output, name):  # noqa: ANN001, ANN201
    """One training job in full."""
    job = session_for(home, endpoint_url).sagemaker.describe_training_job(TrainingJobName=name)
    show_fields(output, job, _DESCRIBE_FIELDS)


@training_jobs.command("stop")
@common
@click.argument("name")
def stop(home, endpoint_url, output, name):  # noqa: ANN001, ANN201
    """Stop a running training job (its model is still uploaded)."""
    session_for(home, endpoint_url).sagemaker.stop_training_job(TrainingJobName=name)
    click.echo(f"Stopping {name}")


@training_jobs.command("logs")
@common
@click.argument("name")
@click.option("-f", "--follow", is_flag=True, help="Keep printing until the job ends.")
def logs(home, endpoint_url, output, name, follow):  # noqa: ANN001, ANN201
    """Print a job's log lines (every host), optionally following them live."""
    from modelyard.sdk.logs import follow_training_job

    session = session_for(home, endpoint_url)
    print_log_events(follow_training_job(session.sagemaker, session.logs, name, follow=follow), output)

@training_jobs.command("metrics")
@common
@click.argument("name")
@click.option("--period", type=int, default=1, show_default=True, help="Seconds per datapoint.")
def metrics(home, endpoint_url, output, name, period):  # noqa: ANN001, ANN201
    """A job's MetricDefinitions values over time, read through the CloudWatch metrics API."""
    from modelyard.sdk.analytics import metric_rows

    session = session_for(home, endpoint_url)
    rows = metric_rows(session.sagemaker, session.client("cloudwatch"), name, period)
    show_table(output, rows, ["timestamp", "metric_name", "value"])


@training_jobs.command("interrupt")
@common
@click.argument("name")
def interrupt(home, endpoint_url, output, name):  # noqa: ANN001, ANN201
    """Interrupt a managed-spot job as a capacity reclaim would (it resumes from checkpoints)."""
    session_for(home, endpoint_url).interrupt_training_job(name)
    click.echo(f"Interrupted {name}; it restarts from its last checkpoint")
