"""The searchable documents of training jobs, experiments, trials and trial components.

Each document is the resource as its ``SearchRecord`` member shows it: the Describe answer plus
``Tags`` (and, for a trial, its components; for a trial component, its metric summaries and its
``Parents``: the trials and experiments it belongs to).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from modelyard.experiments import spec as experiments_spec
from modelyard.experiments.components import TrialComponentService
from modelyard.experiments.service import experiment_document, trial_document
from modelyard.search.service import Searchable, wants
from modelyard.store.base import MetadataStore, Record
from modelyard.training.controller import KIND as TRAINING_JOB
from modelyard.training.service import TrainingService


def described(store: MetadataStore, resource: str, member: str, kind: str,
              describe: Callable[[Record], dict[str, Any]],
              columns: Mapping[str, str] | None = None) -> Searchable:
    """A searchable kind whose document is its Describe answer plus ``Tags``.

    How a capability makes its resource searchable in one line, e.g. in the platform::

        self.search.register(described(self.store, "HyperParameterTuningJob",
                                       "HyperParameterTuningJob", tuning_spec.KIND,
                                       self.tuning.description,
                                       {"HyperParameterTuningJobName": "name"}))
    """
    def document(record: Record, include: Collection[str]) -> dict[str, Any]:
        return with_tags(store, record, include, describe(record))

    return Searchable(resource, member, kind, document, dict(columns or {}))


def with_tags(store: MetadataStore, record: Record, include: Collection[str],
              document: dict[str, Any]) -> dict[str, Any]:
    """``document`` with the record's ``Tags`` when the search reads them (or shows them)."""
    if wants(include, "Tags"):
        found = store.get_tags(record.arn)
        document["Tags"] = [{"Key": k, "Value": v} for k, v in found.items()]
    return document


def builtin_searchables(store: MetadataStore, training: TrainingService,
                        components: TrialComponentService) -> list[Searchable]:
    """Searchables for TrainingJob, Experiment, ExperimentTrial, ExperimentTrialComponent."""

    def trial(record: Record, include: Collection[str]) -> dict[str, Any]:
        document = with_tags(store, record, include, trial_document(record))
        if wants(include, "TrialComponentSummaries"):
            links = store.list_links(experiments_spec.TRIAL_COMPONENTS, sources=[record.arn])
            members = store.by_arn([x.destination for x in links])
            document["TrialComponentSummaries"] = [
                {"TrialComponentName": m.name, "TrialComponentArn": m.arn,
                 "CreationTime": m.created,
                 **({"TrialComponentSource": m.spec["Source"]} if "Source" in m.spec else {})}
                for m in members.values()
            ]
        return document

    def trial_component(record: Record, include: Collection[str]) -> dict[str, Any]:
        source = record.spec.get("Source", {}).get("SourceArn")
        job = store.by_arn([source]).get(source) if source else None
        document = with_tags(store, record, include, components.document(record, job))
        if wants(include, "Metrics"):
            document["Metrics"] = components.metric_summaries(record)
        if wants(include, "Parents"):
            document["Parents"] = parents(store, record)
        return document

    return [
        described(store, "TrainingJob", "TrainingJob", TRAINING_JOB, training.description,
                  {"TrainingJobName": "name", "TrainingJobStatus": "status",
                   "CreationTime": "created", "LastModifiedTime": "modified"}),
        described(store, "Experiment", "Experiment", experiments_spec.EXPERIMENT,
                  experiment_document, {"ExperimentName": "name", "CreationTime": "created"}),
        Searchable("ExperimentTrial", "Trial", experiments_spec.TRIAL, trial,
                   {"TrialName": "name", "CreationTime": "created"}),
        Searchable("ExperimentTrialComponent", "TrialComponent",
                   experiments_spec.TRIAL_COMPONENT, trial_component,
                   {"TrialComponentName": "name", "CreationTime": "created"}),
    ]


def parents(store: MetadataStore, component: Record) -> list[dict[str, str]]:
    """The trials a component belongs to, with their experiments (Search's ``Parents``)."""
    links = store.list_links(experiments_spec.TRIAL_COMPONENTS, destinations=[component.arn])
    trials = store.by_arn([x.source for x in links])
    return [
        {"TrialName": t.name, "ExperimentName": str(t.spec.get("ExperimentName", ""))}
        for t in trials.values()
    ]
