"""The one job status machine shared by training, processing and transform jobs.

A job's public status is a pair: the primary status SageMaker clients wait on
(``InProgress | Completed | Failed | Stopping | Stopped``) and a secondary status with a history
of transitions (``SecondaryStatusTransitions``). Every change goes through :func:`advance`, which
closes the open transition, opens the next one and derives the primary status, so the two can
never disagree.

State is a plain JSON dict (it lives in the store); functions here return new dicts.
"""

from __future__ import annotations

from typing import Any

TERMINAL = frozenset({"Completed", "Failed", "Stopped"})
ACTIVE = frozenset({"InProgress", "Stopping"})

# secondary status -> primary status; anything not listed is InProgress
_PRIMARY = {
    "Completed": "Completed",
    "Failed": "Failed",
    "Stopping": "Stopping",
    "Stopped": "Stopped",
    "MaxRuntimeExceeded": "Stopped",
    "MaxWaitTimeExceeded": "Stopped",
}

MESSAGES = {
    "Starting": "Starting the training job",
    "Waiting": "Waiting for capacity: the machine is running other jobs",
    "Downloading": "Downloading input data",
    "Training": "Training image download completed. Training in progress.",
    "Uploading": "Uploading generated training model",
    "Completed": "Training job completed",
    "Failed": "Training job failed",
    "Stopping": "Stopping the training job",
    "Stopped": "Training job stopped",
    "MaxRuntimeExceeded": "Training job stopped: MaxRuntimeInSeconds exceeded",
    "MaxWaitTimeExceeded": "Training job stopped: MaxWaitTimeInSeconds exceeded",
    "Interrupted": "Spot instance interrupted; the job restarts from its last checkpoint",
    "Restarting": "Restarting the training job",
}


def primary_of(secondary: str) -> str:
    return _PRIMARY.get(secondary, "InProgress")


def initial(now: float, secondary: str = "Starting") -> dict[str, Any]:
    """The state of a job just created."""
    return {
        "Status": primary_of(secondary),
        "SecondaryStatus": secondary,
        "SecondaryStatusTransitions": [
            {"Status": secondary, "StartTime": now, "StatusMessage": MESSAGES.get(secondary, secondary)}
        ],
        "LastModifiedTime": now,
    }


def advance(
    state: dict[str, Any], secondary: str, now: float, message: str | None = None
) -> dict[str, Any]:
    """Move to ``secondary``. Re-entering the current status only updates its message.

    A terminal job never moves again: late events from a dying host are ignored.
    """
    if state["Status"] in TERMINAL:
        return state
    transitions = [dict(t) for t in state.get("SecondaryStatusTransitions", [])]
    text = message or MESSAGES.get(secondary, secondary)
    if transitions and transitions[-1]["Status"] == secondary:
        transitions[-1]["StatusMessage"] = text
    else:
        if transitions:
            transitions[-1]["EndTime"] = now
        entry: dict[str, Any] = {"Status": secondary, "StartTime": now, "StatusMessage": text}
        if primary_of(secondary) in TERMINAL:
            entry["EndTime"] = now
        transitions.append(entry)
    new = dict(state)
    new.update(
        Status=primary_of(secondary),
        SecondaryStatus=secondary,
        SecondaryStatusTransitions=transitions,
        LastModifiedTime=now,
    )
    return new


def is_terminal(state: dict[str, Any]) -> bool:
    return state.get("Status") in TERMINAL
