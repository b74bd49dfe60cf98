"""The Optuna study rebuilt from trial entries: states, asks and pruning decisions."""

from __future__ import annotations

from typing import Any

from optuna.trial import TrialState

from modelyard.tuning import study as st
from modelyard.tuning.spec import plan_of, validate_create
from modelyard.tuning.strategies import make_pruner, make_sampler
from tests.tuning.harness import request


def _plan(**config: Any) -> Any:
    return plan_of(validate_create(request(**config)))


def _entry(number: int, lr: float, status: str | None = None, objective: float | None = None,
           **more: Any) -> dict[str, Any]:
    entry = {"number": number, "name": f"tune-{number:03d}-00000000", "params": {"lr": lr},
             "tuned": {"lr": repr(lr)}, "attrs": {}, "created": True, **more}
    if status:
        entry.update(status=status, objective=objective, end=float(number), steps=more.get("steps", 1))
    return entry


def test_entries_become_trials_in_the_state_their_jobs_reached() -> None:
    plan = _plan()
    entries = [
        _entry(1, 0.1, "Completed", 0.5),
        _entry(2, 0.2, "Stopped", 0.3, steps=4),         # stopped early: pruned at step 4
        _entry(3, 0.3, "Failed", None),
        _entry(4, 0.4),                                  # still running
        _entry(5, 0.5, "Stopped", 0.6, capped=True),     # ran its whole budget
    ]
    rebuilt = st.rebuild(plan, entries, series=lambda e: {1: 0.1, 2: 0.2} if e["number"] == 4 else None)
    trials = rebuilt.study.get_trials()
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL,
                                         TrialState.RUNNING, TrialState.COMPLETE]
    assert [t.params["lr"] for t in trials] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert trials[0].value == 0.5 and trials[4].value == 0.6
    assert trials[1].intermediate_values == {4: 0.3}
    assert trials[3].intermediate_values == {1: 0.1, 2: 0.2}


def test_asking_twice_from_the_same_record_gives_the_same_trial() -> None:
    plan = _plan(strategy="Bayesian", max_jobs=20)
    entries = [_entry(i, i / 10, "Completed", -abs(i / 10 - 0.3)) for i in range(1, 9)]
    asked = [st.ask(st.rebuild(plan, entries), plan, make_sampler(plan, 7, 9)) for _ in range(2)]
    assert asked[0] == asked[1]
    other = st.ask(st.rebuild(plan, entries), plan, make_sampler(plan, 8, 9))
    assert other != asked[0]


def test_warm_start_values_outside_the_ranges_are_left_out() -> None:
    plan = _plan(ranges={"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0", "MaxValue": "0.5"}],
                         "CategoricalParameterRanges": [{"Name": "opt", "Values": ["adam", "sgd"]}]})
    assert st.warm_params(plan, None, {"lr": "0.25", "opt": "sgd", "other": "1"}) == {"lr": 0.25, "opt": "sgd"}
    assert st.warm_params(plan, None, {"lr": "0.75", "opt": "sgd"}) == {"opt": "sgd"}
    assert st.warm_params(plan, None, {"lr": "0.75", "opt": "rmsprop"}) is None
    warm = [{**_entry(1, 0.25, "Completed", 0.9), "params": None, "metric": "score"},
            {**_entry(2, 0.75, "Completed", 0.8), "tuned": {"lr": "0.75"}}]
    rebuilt = st.rebuild(plan, [], warm)
    assert rebuilt.offset == 1 and [t.value for t in rebuilt.study.trials] == [0.9]


def test_pruning_does_not_depend_on_how_many_values_arrive_between_reads() -> None:
    plan = _plan(strategy="Hyperband", definition={"static": {"epochs": "9"}})
    curve = {step: 0.9 * (1 - 0.5 ** step) for step in range(1, 10)}
    poor = {step: 0.2 * (1 - 0.5 ** step) for step in range(1, 10)}
    # Hyperband puts trials 0 and 2 of study "tune" in its first bracket (rungs at steps 1, 3, 9)
    done = _entry(1, 0.9, "Completed", curve[9], steps=9,
                  attrs={"completed_rung_0": curve[1], "completed_rung_1": curve[3]})
    failed = _entry(2, 0.5, "Failed", None)

    def decide(batches: list[int]) -> tuple[int | None, dict[str, Any]]:
        judged: dict[int, float] = {}
        running = _entry(3, 0.2)
        for last in batches:
            known = {running["name"]: dict(judged)}
            rebuilt = st.rebuild(plan, [done, failed, running], series=lambda e, k=known: k.get(e["name"]))
            stop, attrs = st.judge(rebuilt, make_pruner(plan), 2, {s: poor[s] for s in range(1, last + 1)})
            running = {**running, "attrs": attrs}
            judged = {s: poor[s] for s in range(1, last + 1)}
            if stop is not None:
                return stop, attrs
        return None, running["attrs"]

    step_by_step = decide(list(range(1, 10)))
    all_at_once = decide([9])
    assert step_by_step == all_at_once
    assert step_by_step[0] is not None and step_by_step[0] < 9
    assert step_by_step[1]["completed_rung_0"] == poor[1]  # the value at the rung, not later
