"""A tuning job's trials as its record keeps them, and what is derived from them.

The record's ``state["_trials"]`` lists one entry per trial, in the order they were planned. An
entry is written *before* its training job is created, so a restart finds every trial it had
decided on and creates the missing job under the same name with the same values::

    {"number": 3, "name": "my-tuning-003-1f0c9a2e", "definition": None,
     "params": {"eta": 0.1},           # Optuna's values (what the study is rebuilt from)
     "tuned": {"eta": "0.1"},          # TunedHyperParameters, as the job received them
     "attrs": {},                      # Optuna system attributes (grid ids, Hyperband rungs)
     "created": True,                  # the training job exists
     "pruned": False, "capped": False, # stopped early by the pruner / at Hyperband's MaxResource
     # once the training job is terminal:
     "status": "Completed", "objective": 0.93, "steps": 12, "failure": None,
     "creation": 1700000000.1, "start": 1700000000.3, "end": 1700000004.2}

Counters, the best trial and the completion criteria are pure functions of these entries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from modelyard.tuning.spec import Completion, Objective

Entry = Mapping[str, Any]

#: trials that failed before any succeeded, after which a tuning job gives up
FAIL_FAST_TRIALS = 3
#: succeeded trials before convergence is judged at all
CONVERGENCE_MIN_TRIALS = 10
#: relative gain of the later half over the earlier half's best below which the search converged
CONVERGENCE_TOLERANCE = 0.01


def is_final(entry: Entry) -> bool:
    """Whether the trial's training job has reached a terminal status."""
    return "status" in entry


def outcome(entry: Entry) -> str | None:
    """How the trial counts for the search: ``complete``, ``pruned``, ``fail`` or None (running)."""
    if not is_final(entry):
        return None
    if entry.get("objective") is None or entry["status"] == "Failed":
        return "fail"
    if entry["status"] == "Stopped" and not entry.get("capped"):
        return "pruned"
    return "complete"


def objective_status(entry: Entry) -> str:
    """SageMaker's ObjectiveStatus: Pending while running, then Succeeded or Failed."""
    if not is_final(entry):
        return "Pending"
    return "Failed" if outcome(entry) == "fail" else "Succeeded"


def counters(entries: Iterable[Entry]) -> tuple[dict[str, int], dict[str, int]]:
    """``(TrainingJobStatusCounters, ObjectiveStatusCounters)`` of the created trials."""
    jobs = {"Completed": 0, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    objectives = {"Succeeded": 0, "Pending": 0, "Failed": 0}
    for entry in entries:
        if not entry.get("created"):
            continue
        status = entry.get("status", "InProgress")
        jobs["NonRetryableError" if status == "Failed" else status] += 1
        objectives[objective_status(entry)] += 1
    return jobs, objectives


def best(entries: Iterable[Entry], objective: Objective) -> Entry | None:
    """The succeeded trial with the best objective (the earliest among equals)."""
    found: Entry | None = None
    for entry in entries:
        if objective_status(entry) != "Succeeded":
            continue
        if found is None or objective.better(entry["objective"], found["objective"]):
            found = entry
    return found


@dataclasses.dataclass(frozen=True)
class Progress:
    """Where the search stands against its completion criteria."""

    not_improving: int
    reached: str | None
    converged: bool


def progress(entries: Sequence[Entry], objective: Objective, criteria: Completion) -> Progress:
    """Evaluate ``TuningJobCompletionCriteria`` over the finished trials, in the order they ended.

    ``reached`` says which criterion ends the search (None while none does).
    """
    values = [e["objective"] for e in _by_end(entries) if objective_status(e) == "Succeeded"]
    since, best_value = 0, None
    for value in values:
        if best_value is None or objective.better(value, best_value):
            best_value, since = value, 0
        else:
            since += 1
    converged = criteria.convergence and _converged(values, objective)
    reached = None
    if criteria.target is not None and best_value is not None and not objective.better(
        criteria.target, best_value
    ):
        reached = f"the objective reached TargetObjectiveMetricValue {criteria.target}"
    elif criteria.not_improving is not None and since >= criteria.not_improving:
        reached = f"the best objective did not improve over {since} training jobs"
    elif converged:
        reached = "the search converged"
    return Progress(not_improving=since, reached=reached, converged=converged)


def failed_fast(entries: Sequence[Entry], max_jobs: int) -> Entry | None:
    """The first failure, when the first trials to finish all failed (the job cannot succeed)."""
    finished = _by_end(entries)
    needed = min(FAIL_FAST_TRIALS, max_jobs)
    first = finished[:needed]
    if len(first) == needed and all(outcome(e) == "fail" for e in first):
        return first[0]
    return None


def _converged(values: list[float], objective: Objective) -> bool:
    """Cheap convergence: the later half of the trials did not beat the earlier half by 1 %."""
    if len(values) < CONVERGENCE_MIN_TRIALS:
        return False
    half = len(values) // 2
    early = _best_value(values[:half], objective)
    overall = _best_value(values, objective)
    return abs(overall - early) <= CONVERGENCE_TOLERANCE * max(abs(early), 1e-12)


def _best_value(values: list[float], objective: Objective) -> float:
    return max(values) if objective.maximize else min(values)


def _by_end(entries: Iterable[Entry]) -> list[Entry]:
    return sorted((e for e in entries if is_final(e)), key=lambda e: (e.get("end") or 0.0, e["number"]))


def summary(
    entry: Entry, objective: Objective, tuning_name: str, arn: str, live: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """``HyperParameterTrainingJobSummary`` of one trial.

    ``live`` carries the current status and times of a trial that is still running
    (``status``, ``creation``, ``start``, ``end``, ``failure``), read from its training job.
    """
    facts = {**entry, **(live or {})}
    out: dict[str, Any] = {
        "TrainingJobName": entry["name"],
        "TrainingJobArn": arn,
        "TuningJobName": tuning_name,
        "CreationTime": facts.get("creation"),
        "TrainingStartTime": facts.get("start"),
        "TrainingEndTime": facts.get("end"),
        "TrainingJobStatus": facts.get("status", "InProgress"),
        "TunedHyperParameters": dict(entry.get("tuned", {})),
        "FailureReason": facts.get("failure"),
        "ObjectiveStatus": objective_status(entry),
    }
    if entry.get("definition"):
        out["TrainingJobDefinitionName"] = entry["definition"]
    if objective_status(entry) == "Succeeded":
        out["FinalHyperParameterTuningJobObjectiveMetric"] = {
            "Type": objective.type, "MetricName": objective.metric, "Value": entry["objective"],
        }
    return out
