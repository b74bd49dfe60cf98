"""The trial-component operations of the SageMaker API.

CreateTrialComponent, DescribeTrialComponent, ListTrialComponents, UpdateTrialComponent and
DeleteTrialComponent. A component that a training job produced (``Source`` is the job) is a view
of the job: status, times, parameters and artifacts are read from the job record each time
(:func:`modelyard.experiments.tracking.job_fields`), over whatever was stored or updated on the
component itself, and its metrics are the job's metric series plus any logged to the component.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from modelyard.api.entities import (
    describe,
    filtered_page,
    list_query,
    order_records,
    records_page,
)
from modelyard.core.arns import name_from_arn
from modelyard.core.errors import ValidationError
from modelyard.experiments import spec
from modelyard.experiments.metrics import summaries
from modelyard.experiments.service import Catalogs
from modelyard.experiments.tracking import job_fields
from modelyard.store.base import MetadataStore, Record

Handler = Callable[[dict[str, Any]], dict[str, Any]]

_MAPS = ("Parameters", "InputArtifacts", "OutputArtifacts")
_SUMMARY = ("TrialComponentName", "TrialComponentArn", "DisplayName", "TrialComponentSource",
            "Status", "StartTime", "EndTime", "CreationTime", "LastModifiedTime")


class TrialComponentService:
    """Trial components: stages of work with parameters, artifacts and metrics."""

    def __init__(self, store: MetadataStore, catalogs: Catalogs) -> None:
        self.store = store
        self.catalogs = catalogs
        self.components = catalogs.components

    def operations(self) -> dict[str, Handler]:
        return {
            "CreateTrialComponent": self.create,
            "DescribeTrialComponent": self.describe,
            "ListTrialComponents": self.list_components,
            "UpdateTrialComponent": self.update,
            "DeleteTrialComponent": self.delete,
        }

    # --- operations ----------------------------------------------------------------------
    def create(self, params: dict[str, Any]) -> dict[str, Any]:
        spec.check_parameters(params.get("Parameters"))
        spec.check_times(params.get("StartTime"), params.get("EndTime"))
        name = params["TrialComponentName"]
        state = {k: params[k] for k in ("DisplayName", "Status", "StartTime", "EndTime", *_MAPS)
                 if k in params}
        state.setdefault("DisplayName", name)
        record = self.components.create(
            name, {k: v for k, v in params.items() if k != "Tags"}, state,
            status=_primary(state), tags=params.get("Tags"),
        )
        return {"TrialComponentArn": record.arn}

    def describe(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.components.get(params["TrialComponentName"])
        document = self.document(record, self._jobs([record]).get(record.name))
        document["Metrics"] = self.metric_summaries(record)
        return document

    def list_components(self, params: dict[str, Any]) -> dict[str, Any]:
        given = [k for k in ("ExperimentName", "TrialName", "SourceArn") if params.get(k)]
        if len(given) > 1:
            raise ValidationError(
                f"ListTrialComponents takes at most one of ExperimentName, TrialName and "
                f"SourceArn; got {' and '.join(given)}."
            )
        query = list_query(spec.TRIAL_COMPONENT, params)
        arns = self._member_arns(params)
        if arns is None:
            records, token = filtered_page(self.store, query, params)
        else:
            chosen = order_records(list(self.store.by_arn(arns).values()), query)
            records, token = records_page(chosen, params)
        jobs = self._jobs(records)
        rows = []
        for record in records:
            document = self.document(record, jobs.get(record.name))
            if "Source" in document:
                document["TrialComponentSource"] = document["Source"]
            rows.append({k: document.get(k) for k in _SUMMARY})
        return {"TrialComponentSummaries": rows, "NextToken": token}

    def update(self, params: dict[str, Any]) -> dict[str, Any]:
        spec.check_parameters(params.get("Parameters"))
        record = self.components.get(params["TrialComponentName"])

        def change(state: dict[str, Any]) -> dict[str, Any]:
            new = dict(state)
            for key in ("DisplayName", "Status", "StartTime", "EndTime"):
                if key in params:
                    new[key] = params[key]
            for key in _MAPS:
                new[key] = spec.merged(state.get(key), params.get(key),
                                       params.get(f"{key}ToRemove"))
            spec.check_times(new.get("StartTime"), new.get("EndTime"))
            return new

        record = self.components.change(record, change, status=_primary)
        return {"TrialComponentArn": record.arn}

    def delete(self, params: dict[str, Any]) -> dict[str, Any]:
        record = self.components.get(params["TrialComponentName"])
        trials = self.store.list_links(spec.TRIAL_COMPONENTS, destinations=[record.arn], limit=1)
        if trials:
            raise ValidationError(
                f"Trial component {record.name} is associated with trial "
                f"{name_from_arn(trials[0].source)}; disassociate it from every trial first."
            )
        self.components.delete(record)
        return {"TrialComponentArn": record.arn}

    # --- views ---------------------------------------------------------------------------
    def document(self, record: Record, job: Record | None) -> dict[str, Any]:
        """The component as DescribeTrialComponent shows it, without Metrics."""
        out = describe(record)
        out.update(
            TrialComponentName=record.name, TrialComponentArn=record.arn,
            CreationTime=record.created,
            LastModifiedTime=record.state.get("LastModifiedTime", record.modified),
        )
        if job is not None:
            derived = job_fields(job)
            for key in _MAPS:
                out[key] = {**out.get(key, {}), **derived.pop(key)}
            out.update(derived)
        for key in _MAPS:
            if not out.get(key):
                out.pop(key, None)
        return out

    def metric_summaries(self, record: Record) -> list[dict[str, Any]]:
        """One summary per metric and source ARN: the component's own and its job's."""
        return summaries({arn: self.store.get_metric_points(arn) for arn in self.series(record)})

    def series(self, record: Record) -> list[str]:
        """The ARNs whose metric points belong to ``record``."""
        source = record.spec.get("Source", {}).get("SourceArn")
        return [record.arn] + ([source] if source else [])

    def series_of(self, resource_arn: str) -> list[str] | None:
        """The metric ARNs of a component or training job ARN; None if it does not exist."""
        if ":training-job/" in resource_arn:
            job_name = name_from_arn(resource_arn)
            component = self.components.find(spec.training_job_component(job_name))
            if component is not None:
                return self.series(component)
            found = self.store.by_arn([resource_arn.lower()])
            return [resource_arn.lower()] if found else None
        component = self.components.find(resource_arn)
        return None if component is None else self.series(component)

    def component_arn(self, name: str) -> str:
        """The ARN of the component named ``name`` in any case (ResourceNotFound if none)."""
        return self.components.get(name).arn

    def _member_arns(self, params: Mapping[str, Any]) -> list[str] | None:
        """The component ARNs a filter selects, or None when the request has no filter."""
        if params.get("TrialName"):
            trials = [self.catalogs.trials.get(params["TrialName"]).arn]
        elif params.get("ExperimentName"):
            experiment = self.catalogs.experiments.get(params["ExperimentName"])
            links = self.store.list_links(spec.EXPERIMENT_TRIALS, sources=[experiment.arn])
            trials = [x.destination for x in links]
        elif params.get("SourceArn"):
            return self._by_source(params["SourceArn"])
        else:
            return None
        members: list[str] = []
        for start in range(0, len(trials), 200):
            links = self.store.list_links(spec.TRIAL_COMPONENTS, sources=trials[start:start + 200])
            members.extend(x.destination for x in links)
        return list(dict.fromkeys(members))

    def _by_source(self, source_arn: str) -> list[str]:
        # Only the platform sets Source (CreateTrialComponent has no such member), and it names
        # a job's component after the job, so the lookup is by name.
        if ":training-job/" not in source_arn:
            return []
        component = self.components.find(spec.training_job_component(name_from_arn(source_arn)))
        if component is None:
            return []
        stored = component.spec.get("Source", {}).get("SourceArn", "")
        return [component.arn] if stored.lower() == source_arn.lower() else []

    def _jobs(self, records: list[Record]) -> dict[str, Record]:
        """The training jobs behind job-sourced components, by component name."""
        sources = {
            r.name: r.spec["Source"]["SourceArn"] for r in records
            if r.spec.get("Source", {}).get("SourceType") == spec.TRAINING_JOB_SOURCE_TYPE
        }
        found = self.store.by_arn(list(sources.values()))
        return {name: found[arn] for name, arn in sources.items() if arn in found}


def _primary(state: Mapping[str, Any]) -> str:
    """The status column of a component: its PrimaryStatus, or empty."""
    return str((state.get("Status") or {}).get("PrimaryStatus", ""))
