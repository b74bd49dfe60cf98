"""Counters, the best trial and the completion criteria, from trial entries alone."""

from __future__ import annotations

from typing import Any

from modelyard.tuning import trials as tr
from modelyard.tuning.spec import Completion, Objective

MAX = Objective("Maximize", "score")
MIN = Objective("Minimize", "loss")


def entry(number: int, status: str | None = None, objective: float | None = None, **more: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"number": number, "name": f"t-{number:03d}-00000000", "created": True, **more}
    if status is not None:
        out.update(status=status, objective=objective, end=float(number))
    return out


def test_outcomes_and_objective_statuses() -> None:
    cases = [
        (entry(1), None, "Pending"),
        (entry(2, "Completed", 0.5), "complete", "Succeeded"),
        (entry(3, "Stopped", 0.4), "pruned", "Succeeded"),            # stopped early, last value
        (entry(4, "Stopped", 0.4, capped=True), "complete", "Succeeded"),
        (entry(5, "Completed", None), "fail", "Failed"),               # never reported the metric
        (entry(6, "Failed", 0.9), "fail", "Failed"),
    ]
    for item, outcome, status in cases:
        assert (tr.outcome(item), tr.objective_status(item)) == (outcome, status), item


def test_counters_count_created_trials_only() -> None:
    entries = [entry(1), entry(2, "Completed", 1.0), entry(3, "Stopped", 0.2),
               entry(4, "Failed", None), entry(5, "Completed", None), {**entry(6), "created": False}]
    jobs, objectives = tr.counters(entries)
    assert jobs == {"Completed": 2, "InProgress": 1, "RetryableError": 0, "NonRetryableError": 1, "Stopped": 1}
    assert objectives == {"Succeeded": 2, "Pending": 1, "Failed": 2}


def test_best_follows_the_objective_direction() -> None:
    entries = [entry(1, "Completed", 0.3), entry(2, "Completed", 0.7), entry(3, "Completed", 0.7),
               entry(4, "Failed", 5.0), entry(5)]
    assert tr.best(entries, MAX)["number"] == 2  # the earlier of two equal ones
    assert tr.best(entries, MIN)["number"] == 1
    assert tr.best([entry(1)], MAX) is None


def test_target_objective_value_ends_the_search() -> None:
    entries = [entry(1, "Completed", 0.5), entry(2, "Completed", 0.91)]
    assert tr.progress(entries, MAX, Completion(target=0.9)).reached
    assert not tr.progress(entries, MAX, Completion(target=0.95)).reached
    assert tr.progress([entry(1, "Completed", 0.05)], MIN, Completion(target=0.1)).reached


def test_best_objective_not_improving_counts_trials_since_the_last_improvement() -> None:
    values = [0.5, 0.6, 0.55, 0.6, 0.58]
    entries = [entry(i + 1, "Completed", v) for i, v in enumerate(values)]
    progress = tr.progress(entries, MAX, Completion(not_improving=3))
    assert progress.not_improving == 3 and progress.reached
    assert not tr.progress(entries[:4], MAX, Completion(not_improving=3)).reached
    # completion order is the order trials ended, not their numbers
    # (trial 2 ended last: 0.5, 0.55, 0.6 improve, then 0.58 and 0.6 do not)
    reordered = [{**e, "end": 100.0} if e["number"] == 2 else e for e in entries]
    assert tr.progress(reordered, MAX, Completion(not_improving=3)).not_improving == 2


def test_convergence_needs_enough_trials_and_a_flat_later_half() -> None:
    flat = [entry(i + 1, "Completed", v) for i, v in enumerate([0.1, 0.5, 0.8, 0.9, 0.9] + [0.901] * 5)]
    rising = [entry(i + 1, "Completed", v) for i, v in enumerate([0.1] * 5 + [0.2, 0.4, 0.6, 0.8, 1.0])]
    assert tr.progress(flat, MAX, Completion(convergence=True)).converged
    assert not tr.progress(rising, MAX, Completion(convergence=True)).converged
    assert not tr.progress(flat[:9], MAX, Completion(convergence=True)).converged
    assert not tr.progress(flat, MAX, Completion()).reached


def test_failing_first_trials_give_up_early() -> None:
    failing = [entry(1, "Failed", None), entry(2, "Completed", None), entry(3, "Failed", None)]
    assert tr.failed_fast(failing, max_jobs=20)["number"] == 1
    assert tr.failed_fast(failing[:2], max_jobs=20) is None
    assert tr.failed_fast(failing[:2], max_jobs=2)["number"] == 1
    mixed = [entry(1, "Completed", 0.3), *failing]
    assert tr.failed_fast(mixed, max_jobs=20) is None


def test_summary_has_the_objective_only_when_it_succeeded() -> None:
    done = tr.summary(entry(1, "Completed", 0.8, tuned={"lr": "0.1"}), MAX, "t", "arn:x")
    assert done["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": "Maximize", "MetricName": "score", "Value": 0.8}
    assert done["TunedHyperParameters"] == {"lr": "0.1"} and done["TuningJobName"] == "t"
    running = tr.summary(entry(2, tuned={}), MAX, "t", "arn:y", {"status": "InProgress", "creation": 5.0})
    assert "FinalHyperParameterTuningJobObjectiveMetric" not in running
    assert (running["ObjectiveStatus"], running["CreationTime"]) == ("Pending", 5.0)
