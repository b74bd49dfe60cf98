"""``modelyard tuning-jobs list|describe|stop``."""

from __future__ import annotations

import json

import click

from modelyard.cli.options import common, list_filters, newest, session_for
from modelyard.cli.output import console, print_fields, print_json, print_table

_DESCRIBE_FIELDS = (
    "HyperParameterTuningJobName", "HyperParameterTuningJobStatus", "FailureReason",
    "CreationTime", "HyperParameterTuningEndTime", "TrainingJobStatusCounters",
    "ObjectiveStatusCounters", "TuningJobCompletionDetails", "ConsumedResources",
)
_TRIAL_COLUMNS = ["TrainingJobName", "TrainingJobStatus", "Objective", "TunedHyperParameters"]


@click.group("tuning-jobs")
def tuning_jobs() -> None:
    """List, inspect and stop hyperparameter tuning jobs."""


@tuning_jobs.command("list")
@common
@list_filters
def list_jobs(home, endpoint_url, output, status, name_contains, limit):  # noqa: ANN001, ANN201
    """Tuning jobs, newest first."""
    sm = session_for(home, endpoint_url).sagemaker
    jobs = newest(sm, "list_hyper_parameter_tuning_jobs", "HyperParameterTuningJobSummaries", status, name_contains, limit)
    if output == "json":
        print_json(jobs)
        return
    rows = [{**j, "Trials": _trial_counts(j["TrainingJobStatusCounters"])} for j in jobs]
    print_table(rows, ["HyperParameterTuningJobName", "HyperParameterTuningJobStatus", "Strategy",
                       "Trials", "CreationTime", "HyperParameterTuningEndTime"])


@tuning_jobs.command("describe")
@common
@click.argument("name")
def describe(home, endpoint_url, output, name):  # noqa: ANN001, ANN201
    """One tuning job in full, with its best trial and every trial's objective."""
    sm = session_for(home, endpoint_url).sagemaker
    job = sm.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=name)
    if output == "json":
        print_json(job)
        return
    print_fields(job, _DESCRIBE_FIELDS)
    best = job.get("BestTrainingJob")
    if best:
        console.print(f"\n[bold]Best training job:[/bold] {best['TrainingJobName']} "
                      f"({_objective(best)}) {json.dumps(best['TunedHyperParameters'])}")
    trials = []
    pages = sm.get_paginator("list_training_jobs_for_hyper_parameter_tuning_job").paginate(
        HyperParameterTuningJobName=name
    )
    for page in pages:
        trials.extend({**t, "Objective": _objective(t)} for t in page["TrainingJobSummaries"])
    if trials:
        console.print()
        print_table(trials, _TRIAL_COLUMNS)


@tuning_jobs.command("stop")
@common
@click.argument("name")
def stop(home, endpoint_url, output, name):  # noqa: ANN001, ANN201
    """Stop a tuning job and every training job it is running."""
    session_for(home, endpoint_url).sagemaker.stop_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name
    )
    click.echo(f"Stopping {name}")


def _trial_counts(counters: dict[str, int]) -> str:
    """``3 completed, 2 running``: the non-zero TrainingJobStatusCounters in words."""
    counts = {
        "completed": counters.get("Completed", 0),
        "running": counters.get("InProgress", 0),
        "stopped": counters.get("Stopped", 0),
        "failed": counters.get("NonRetryableError", 0) + counters.get("RetryableError", 0),
    }
    return ", ".join(f"{n} {word}" for word, n in counts.items() if n) or "none yet"


def _objective(summary: dict) -> str:
    metric = summary.get("FinalHyperParameterTuningJobObjectiveMetric")
    if not metric:
        return summary.get("ObjectiveStatus", "")
    return f"{metric['MetricName']}={metric['Value']:g}"
