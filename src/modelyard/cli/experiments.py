"""``modelyard experiments list|describe`` and ``modelyard trial-components list|describe``."""

from __future__ import annotations

import click

from modelyard.cli.options import collect, common, session_for
from modelyard.cli.output import print_fields, print_json, print_table, show_fields, show_table

_EXPERIMENT_FIELDS = ("ExperimentName", "DisplayName", "Description", "CreationTime",
                      "LastModifiedTime", "Trials")
_COMPONENT_FIELDS = ("TrialComponentName", "DisplayName", "Status", "Source", "StartTime",
                     "EndTime", "Parameters", "InputArtifacts", "OutputArtifacts", "Metrics")


@click.group("experiments")
def experiments() -> None:
    """List and inspect experiments and their trials."""


@experiments.command("list")
@common
@click.option("--max", "limit", type=int, default=100, help="At most this many experiments.")
def list_experiments(home, endpoint_url, output, limit):  # noqa: ANN001, ANN201
    """Experiments, newest first."""
    sm = session_for(home, endpoint_url).sagemaker
    pages = sm.get_paginator("list_experiments").paginate(SortBy="CreationTime",
                                                          SortOrder="Descending")
    rows = collect(pages, "ExperimentSummaries", limit)
    show_table(output, rows, ["ExperimentName", "DisplayName", "CreationTime", "LastModifiedTime"])


@experiments.command("describe")
@common
@click.argument("name")
def describe_experiment(home, endpoint_url, output, name):  # noqa: ANN001, ANN201
    """One experiment, with the names of its trials."""
    sm = session_for(home, endpoint_url).sagemaker
    experiment = sm.describe_experiment(ExperimentName=name)
    pages = sm.get_paginator("list_trials").paginate(ExperimentName=name)
    experiment["Trials"] = [t["TrialName"] for t in collect(pages, "TrialSummaries", 1000)]
    show_fields(output, experiment, _EXPERIMENT_FIELDS)


@click.group("trial-components")
def trial_components() -> None:
    """List and inspect trial components: runs and jobs with parameters and metrics."""


@trial_components.command("list")
@common
@click.option("--experiment", help="Only components of this experiment.")
@click.option("--trial", help="Only components of this trial.")
@click.option("--max", "limit", type=int, default=100, help="At most this many components.")
def list_components(home, endpoint_url, output, experiment, trial, limit):  # noqa: ANN001, ANN201
    """Trial components, newest first."""
    sm = session_for(home, endpoint_url).sagemaker
    kwargs = {"SortBy": "CreationTime", "SortOrder": "Descending"}
    if experiment:
        kwargs["ExperimentName"] = experiment
    if trial:
        kwargs["TrialName"] = trial
    pages = sm.get_paginator("list_trial_components").paginate(**kwargs)
    rows = collect(pages, "TrialComponentSummaries", limit)
    for row in rows:
        row["PrimaryStatus"] = row.get("Status", {}).get("PrimaryStatus")
    show_table(output, rows, ["TrialComponentName", "PrimaryStatus", "StartTime", "EndTime"])


@trial_components.command("describe")
@common
@click.argument("name")
def describe_component(home, endpoint_url, output, name):  # noqa: ANN001, ANN201
    """One trial component in full, with a summary of each metric."""
    component = session_for(home, endpoint_url).sagemaker.describe_trial_component(
        TrialComponentName=name
    )
    if output == "json":
        print_json(component)
        return
    print_fields(component, _COMPONENT_FIELDS[:-1])
    metrics = component.get("Metrics") or []
    if metrics:
        print_table(metrics, ["MetricName", "Count", "Min", "Max", "Avg", "Last"])
