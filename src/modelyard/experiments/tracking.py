"""Automatic tracking: every training job is a trial component, as in SageMaker.

The training controller calls :meth:`TrainingJobTracker.observe` after every change of a job
record (and the API after CreateTrainingJob). The job record stays the one source of truth:

- the component ``<job>-aws-training-job`` is created once, with ``Source`` = the job's ARN;
  everything else about it (status, times, hyperparameters as ``Parameters``, input channels and
  the image as ``InputArtifacts``, the model as ``OutputArtifacts``) is derived from the job
  record whenever the component is read (:func:`job_fields`), so it can never disagree with
  DescribeTrainingJob;
- when the job ends, those derived fields are also written onto the component once, so that
  they outlive a DeleteTrainingJob;
- a job whose ``ExperimentConfig`` names an experiment is put in its trial (``TrialName``, or a
  new trial named like the component), creating the experiment and the trial when missing.

The component of a job being watched is remembered in memory, so observing a busy job costs
no store reads; after a restart the first change of each unfinished job looks it up again (and
creates it if the server stopped before it could). The steps are idempotent.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from modelyard.core.errors import ModelyardError, ValidationError
from modelyard.experiments import spec
from modelyard.experiments.service import Catalogs, ExperimentService
from modelyard.jobs import status as js
from modelyard.store.base import Record
from modelyard.training import spec as training_spec

log = logging.getLogger(__name__)

_MEDIA_TYPE = re.compile(r"[-\w]+/[-\w+]+")
_MAPS = ("Parameters", "InputArtifacts", "OutputArtifacts")
_TERMINAL_KEYS = ("Status", "StartTime", "EndTime", *_MAPS)


def job_fields(job: Record) -> dict[str, Any]:
    """What a training job's record says about its trial component (see the module doc)."""
    spec_doc, state = job.spec, job.state
    run = state.get("_run", {})
    resources = spec_doc.get("ResourceConfig", {})
    image = spec_doc.get("AlgorithmSpecification", {}).get("TrainingImage")
    hyperparameters = spec_doc.get("HyperParameters", {})
    parameters = {k: spec.parameter_value(v) for k, v in hyperparameters.items()}
    for key, value in (("SageMaker.InstanceType", resources.get("InstanceType")),
                       ("SageMaker.ImageUri", image)):
        if value:
            parameters[key] = {"StringValue": value}
    for key, number in (("SageMaker.InstanceCount", resources.get("InstanceCount")),
                        ("SageMaker.VolumeSizeInGB", resources.get("VolumeSizeInGB"))):
        if number is not None:
            parameters[key] = {"NumberValue": float(number)}
    inputs = {c["ChannelName"]: _artifact(c["DataSource"].get("S3DataSource", {}).get("S3Uri"),
                                          c.get("ContentType"))
              for c in spec_doc.get("InputDataConfig", [])}
    if image:
        inputs["SageMaker.ImageUri"] = {"Value": image}
    outputs = {}
    if state.get("Status") == "Completed":
        uri = training_spec.model_artifacts_uri(dict(spec_doc), job.name)
        outputs["SageMaker.ModelArtifact"] = {"Value": uri}
    return {
        "Source": {"SourceArn": job.arn, "SourceType": spec.TRAINING_JOB_SOURCE_TYPE},
        "Status": _status(dict(state)),
        "StartTime": run.get("started"),
        "EndTime": run.get("ended") or (state.get("LastModifiedTime") if js.is_terminal(dict(state))
                                        else None),
        "Parameters": parameters,
        "InputArtifacts": {k: v for k, v in inputs.items() if v.get("Value")},
        "OutputArtifacts": outputs,
    }


def _status(state: dict[str, Any]) -> dict[str, Any]:
    message = state.get("FailureReason")
    transitions = state.get("SecondaryStatusTransitions") or []
    if not message and transitions:
        message = transitions[-1].get("StatusMessage")
    out = {"PrimaryStatus": state.get("Status", "InProgress")}
    if message:
        out["Message"] = str(message)[:1024]
    return out


def _artifact(uri: str | None, media_type: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"Value": uri}
    if media_type and len(media_type) <= 64 and _MEDIA_TYPE.fullmatch(media_type):
        out["MediaType"] = media_type
    return out


class TrainingJobTracker:
    """Keeps each training job's trial component and experiment membership (module doc).

    ``listeners`` are called after the component exists, with the job record and the
    component record (lineage recording hangs off here).
    """

    def __init__(self, catalogs: Catalogs, experiments: ExperimentService) -> None:
        self.catalogs = catalogs
        self.experiments = experiments
        self.listeners: list[Callable[[Record, Record], None]] = []
        # job name -> its component, for jobs seen and not finished yet
        self._components: dict[str, Record] = {}

    def observe(self, job: Record) -> None:
        """React to the current record of a training job; never raises."""
        try:
            self._observe(job)
        except Exception:  # tracking must never break the job it tracks
            log.exception("tracking training job %s failed", job.name)

    def _observe(self, job: Record) -> None:
        component = self._components.get(job.name)
        if component is None:
            component = self._component(job)
            self._join_experiment(job, component)
            self._components[job.name] = component
        for listener in self.listeners:
            try:
                listener(job, component)
            except Exception:
                log.exception("a listener of training job %s failed", job.name)
        if js.is_terminal(dict(job.state)):
            self._keep_final_fields(job, component)
            self._components.pop(job.name, None)  # nothing more will happen to this job

    def _component(self, job: Record) -> Record:
        name = spec.training_job_component(job.name)
        found = self.catalogs.components.find(name)
        if found is not None:
            return found
        config = job.spec.get("ExperimentConfig") or {}
        source = {"SourceArn": job.arn, "SourceType": spec.TRAINING_JOB_SOURCE_TYPE}
        try:
            return self.catalogs.components.create(
                name, {"TrialComponentName": name, "Source": source},
                {"DisplayName": config.get("TrialComponentDisplayName") or name},
                now=job.created,
            )
        except ValidationError:  # created meanwhile by another caller
            return self.catalogs.components.get(name)

    def _join_experiment(self, job: Record, component: Record) -> None:
        config = job.spec.get("ExperimentConfig") or {}
        experiment = config.get("ExperimentName")
        if not experiment:
            return
        try:
            self.experiments.ensure_membership(
                experiment, config.get("TrialName") or component.name, component
            )
        except ModelyardError as e:
            log.warning("training job %s cannot join experiment %s: %s", job.name, experiment, e)

    def _keep_final_fields(self, job: Record, component: Record) -> None:
        derived = job_fields(job)
        final = {k: derived[k] for k in _TERMINAL_KEYS if derived.get(k) is not None}

        def keep(state: dict[str, Any]) -> dict[str, Any]:
            new = {**state, **final}
            for key in _MAPS:  # what was logged to the component itself stays
                new[key] = {**(state.get(key) or {}), **final.get(key, {})}
            return new

        self.catalogs.components.change(
            component, keep,
            status=lambda state: str(state.get("Status", {}).get("PrimaryStatus", "")),
        )
