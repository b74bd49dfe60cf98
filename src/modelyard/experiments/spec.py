"""What experiments, trials and trial components are: kinds, ARNs, relations and request rules.

An experiment groups trials; a trial groups trial components; a trial component is one stage of
work (a training job, a processing step, a ``Run`` of the SDK) with parameters, artifacts,
metrics, a status and times. Membership is stored as links between records
(:class:`~modelyard.store.base.Link`), so "the trials of an experiment" and "the trials of a
component" are indexed lookups, and deleting a record drops its links.

A training job's own component is named ``<job>-aws-training-job`` and its ``Source`` is the
job's ARN, as SageMaker names them (see :mod:`modelyard.experiments.tracking`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from modelyard.core.errors import ValidationError

EXPERIMENT = "Experiment"
TRIAL = "ExperimentTrial"
TRIAL_COMPONENT = "ExperimentTrialComponent"

#: links from an experiment's ARN to each of its trials' ARNs
EXPERIMENT_TRIALS = "experiment-trial"
#: links from a trial's ARN to each of its components' ARNs
TRIAL_COMPONENTS = "trial-component"

TRAINING_JOB_SUFFIX = "-aws-training-job"
TRAINING_JOB_SOURCE_TYPE = "SageMakerTrainingJob"

#: what ``PrimaryStatus`` a component may have (the model's enum)
PRIMARY_STATUSES = ("InProgress", "Completed", "Failed", "Stopping", "Stopped")


def training_job_component(job_name: str) -> str:
    """The name of a training job's trial component: ``<job>-aws-training-job``."""
    return f"{job_name}{TRAINING_JOB_SUFFIX}"


def check_parameters(parameters: Mapping[str, Mapping[str, Any]] | None) -> None:
    """Each parameter has exactly one of ``StringValue`` and ``NumberValue`` (a finite one)."""
    for name, value in (parameters or {}).items():
        given = [k for k in ("StringValue", "NumberValue") if k in value]
        if len(given) != 1:
            raise ValidationError(
                f"Parameter {name} must have exactly one of StringValue and NumberValue."
            )
        number = value.get("NumberValue")
        if number is not None and not math.isfinite(number):
            raise ValidationError(f"Parameter {name} has a NumberValue that is not finite.")


def check_times(start: float | None, end: float | None) -> None:
    """A component cannot end before it starts."""
    if start is not None and end is not None and end < start:
        raise ValidationError("EndTime must not be earlier than StartTime.")


def parameter_value(text: str) -> dict[str, Any]:
    """A hyperparameter string as a component parameter: numbers as ``NumberValue``.

    >>> parameter_value("0.3"), parameter_value('"adam"')
    ({'NumberValue': 0.3}, {'StringValue': '"adam"'})
    """
    try:
        number = float(text)
    except ValueError:
        return {"StringValue": text}
    if not math.isfinite(number):
        return {"StringValue": text}
    return {"NumberValue": number}


def merged(base: Mapping[str, Any] | None, added: Mapping[str, Any] | None,
           removed: list[str] | None) -> dict[str, Any]:
    """A map member after an Update: ``added`` overwrites, then ``removed`` keys go."""
    out = {**(base or {}), **(added or {})}
    for key in removed or []:
        out.pop(key, None)
    return out
