"""The experiment and trial operations of the SageMaker API, and trial membership.

CreateExperiment, DescribeExperiment, ListExperiments, UpdateExperiment, DeleteExperiment;
CreateTrial, DescribeTrial, ListTrials, UpdateTrial, DeleteTrial; AssociateTrialComponent and
DisassociateTrialComponent. As in SageMaker, an experiment cannot be deleted while it has
trials, nor a trial while it has components (``ValidationException``).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

from modelyard.api.entities import (
    Entities,
    describe,
    filtered_page,
    list_query,
    order_records,
    records_page,
)
from modelyard.core.errors import ValidationError
from modelyard.core.settings import Settings
from modelyard.experiments import spec
from modelyard.store.base import Link, MetadataStore, Record

Handler = Callable[[dict[str, Any]], dict[str, Any]]


@dataclasses.dataclass(frozen=True)
class Catalogs:
    """The three kinds of records experiment tracking keeps."""

    experiments: Entities
    trials: Entities
    components: Entities

    @classmethod
    def open(cls, settings: Settings, store: MetadataStore) -> Catalogs:
        return cls(
            Entities(settings, store, spec.EXPERIMENT, "experiment", "Experiment"),
            Entities(settings, store, spec.TRIAL, "experiment-trial", "Trial"),
            Entities(settings, store, spec.TRIAL_COMPONENT, "experiment-trial-component",
                     "Trial component"),
        )


class ExperimentService:
    """Experiments, trials and which components belong to which trials."""

    def __init__(self, settings: Settings, store: MetadataStore, catalogs: Catalogs) -> None:
        self.store = store
        self.catalogs = catalogs
        self.experiments = catalogs.experiments
        self.trials = catalogs.trials

    def operations(self) -> dict[str, Handler]:
        return {
            "CreateExperiment": self.create_experiment,
            "DescribeExperiment": self.describe_experiment,
            "ListExperiments": self.list_experiments,
            "UpdateExperiment": self.update_experiment,
            "DeleteExperiment": self.delete_experiment,
            "CreateTrial": self.create_trial,
            "DescribeTrial": self.describe_trial,
            "ListTrials": self.list_trials,
            "UpdateTrial": self.update_trial,
            "DeleteTrial": self.delete_trial,
            "AssociateTrialComponent": self.associate,
            "DisassociateTrialComponent": self.disassociate,
        }

    # --- experiments ---------------------------------------------------------------------
    def create_experiment(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.experiments.create(
            params["ExperimentName"], _without_tags(params),
            {"DisplayName": params.get("DisplayName") or params["ExperimentName"],
             "Description": params.get("Description")},
            tags=params.get("Tags"),
        )
        return {"ExperimentArn": record.arn}

    def describe_experiment(self, params: dict[str, Any]) -> dict[str, Any]:
        return experiment_document(self.experiments.get(params["ExperimentName"]))

    def list_experiments(self, params: dict[str, Any]) -> dict[str, Any]:
        records, token = filtered_page(self.store, list_query(spec.EXPERIMENT, params), params)
        summaries = [
            {k: experiment_document(r).get(k) for k in
             ("ExperimentArn", "ExperimentName", "DisplayName", "CreationTime", "LastModifiedTime")}
            for r in records
        ]
        return {"ExperimentSummaries": summaries, "NextToken": token}

    def update_experiment(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.experiments.get(params["ExperimentName"])
        changes: dict[str, Any] = {
            k: params[k] for k in ("DisplayName", "Description") if k in params
        }
        record = self.experiments.change(record, lambda state: {**state, **changes})
        return {"ExperimentArn": record.arn}

    def delete_experiment(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.experiments.get(params["ExperimentName"])
        if self.store.list_links(spec.EXPERIMENT_TRIALS, sources=[record.arn], limit=1):
            raise ValidationError(
                f"Experiment {record.name} still has trials; delete its trials first "
                "(ListTrials with ExperimentName lists them)."
            )
        self.experiments.delete(record)
        return {"ExperimentArn": record.arn}

    # --- trials --------------------------------------------------------------------------
    def create_trial(self, params: dict[str, Any]) -> dict[str, Any]:
        experiment = self.experiments.get(params["ExperimentName"])
        record = self.trials.create(
            params["TrialName"], {**_without_tags(params), "ExperimentName": experiment.name},
            {"DisplayName": params.get("DisplayName") or params["TrialName"]},
            tags=params.get("Tags"),
        )
        link = Link(spec.EXPERIMENT_TRIALS, experiment.arn, record.arn, record.created)
        self.store.add_link(link)
        return {"TrialArn": record.arn}

    def describe_trial(self, params: dict[str, Any]) -> dict[str, Any]:
        return trial_document(self.trials.get(params["TrialName"]))

    def list_trials(self, params: dict[str, Any]) -> dict[str, Any]:
        query = list_query(spec.TRIAL, params)
        arns: list[str] | None = None
        if params.get("ExperimentName"):
            experiment = self.experiments.get(params["ExperimentName"])
            arns = [x.destination for x in
                    self.store.list_links(spec.EXPERIMENT_TRIALS, sources=[experiment.arn])]
        if params.get("TrialComponentName"):
            component = self.catalogs.components.get(params["TrialComponentName"])
            holding = [x.source for x in
                       self.store.list_links(spec.TRIAL_COMPONENTS, destinations=[component.arn])]
            arns = holding if arns is None else [a for a in arns if a in set(holding)]
        if arns is None:
            records, token = filtered_page(self.store, query, params)
        else:
            chosen = order_records(list(self.store.by_arn(arns).values()), query)
            records, token = records_page(chosen, params)
        summaries = [
            {k: trial_document(r).get(k) for k in
             ("TrialArn", "TrialName", "DisplayName", "CreationTime", "LastModifiedTime")}
            for r in records
        ]
        return {"TrialSummaries": summaries, "NextToken": token}

    def update_trial(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.trials.get(params["TrialName"])
        changes: dict[str, Any] = {k: params[k] for k in ("DisplayName",) if k in params}
        record = self.trials.change(record, lambda state: {**state, **changes})
        return {"TrialArn": record.arn}

    def delete_trial(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.trials.get(params["TrialName"])
        if self.store.list_links(spec.TRIAL_COMPONENTS, sources=[record.arn], limit=1):
            raise ValidationError(
                f"Trial {record.name} still has trial components; disassociate or delete them "
                "first (ListTrialComponents with TrialName lists them)."
            )
        self.trials.delete(record)
        return {"TrialArn": record.arn}

    # --- membership ----------------------------------------------------------------------
    def associate(self, params: dict[str, Any]) -> dict[str, Any]:
        component = self.catalogs.components.get(params["TrialComponentName"])
        trial = self.trials.get(params["TrialName"])
        self.store.add_link(Link(spec.TRIAL_COMPONENTS, trial.arn, component.arn, time.time()))
        return {"TrialComponentArn": component.arn, "TrialArn": trial.arn}

    def disassociate(self, params: dict[str, Any]) -> dict[str, Any]:
        component = self.catalogs.components.get(params["TrialComponentName"])
        trial = self.trials.get(params["TrialName"])
        self.store.remove_link(spec.TRIAL_COMPONENTS, trial.arn, component.arn)
        return {"TrialComponentArn": component.arn, "TrialArn": trial.arn}

    def ensure_membership(self, experiment_name: str, trial_name: str, component: Record) -> None:
        """Put ``component`` in ``trial_name`` of ``experiment_name``, creating either if
        missing (as SageMaker does for a job whose ExperimentConfig names them)."""
        experiment = self.experiments.find(experiment_name)
        if experiment is None:
            experiment = self._create_quietly(
                self.experiments, experiment_name,
                {"ExperimentName": experiment_name}, {"DisplayName": experiment_name})
        trial = self.trials.find(trial_name)
        if trial is None:
            trial = self._create_quietly(
                self.trials, trial_name,
                {"TrialName": trial_name, "ExperimentName": experiment.name},
                {"DisplayName": trial_name})
            link = Link(spec.EXPERIMENT_TRIALS, experiment.arn, trial.arn, trial.created)
            self.store.add_link(link)
        if trial.spec.get("ExperimentName", "").lower() != experiment.name.lower():
            raise ValidationError(
                f"Trial {trial.name} belongs to experiment {trial.spec.get('ExperimentName')}, "
                f"not {experiment.name}."
            )
        self.store.add_link(Link(spec.TRIAL_COMPONENTS, trial.arn, component.arn, time.time()))

    @staticmethod
    def _create_quietly(entities: Entities, name: str, spec_doc: dict[str, Any],
                        state: dict[str, Any]) -> Record:
        """Create, or take the one a concurrent caller created first."""
        try:
            return entities.create(name, spec_doc, state)
        except ValidationError:
            return entities.get(name)


def experiment_document(record: Record) -> dict[str, Any]:
    """DescribeExperiment's answer (also the Search record's ``Experiment``)."""
    return {
        **describe(record),
        "ExperimentName": record.name,
        "ExperimentArn": record.arn,
        "CreationTime": record.created,
        "LastModifiedTime": record.state.get("LastModifiedTime", record.modified),
    }


def trial_document(record: Record) -> dict[str, Any]:
    """DescribeTrial's answer (also the base of the Search record's ``Trial``)."""
    return {
        **describe(record),
        "TrialName": record.name,
        "TrialArn": record.arn,
        "CreationTime": record.created,
        "LastModifiedTime": record.state.get("LastModifiedTime", record.modified),
    }


def _without_tags(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k != "Tags"}
