"""Whole tuning jobs through the controller, with trials ended by the harness."""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from modelyard.api.models import operation
from modelyard.api.shaping import shape_output
from modelyard.core.errors import ResourceInUse, ResourceNotFound, ValidationError
from modelyard.store.base import Record
from modelyard.tuning import study as st
from modelyard.tuning.spec import plan_of
from tests.tuning.harness import Harness, request, tuned_sequence


def peak(params: Mapping[str, str]) -> list[float]:
    """A smooth objective with its maximum at lr = 0.3."""
    return [-((float(params["lr"]) - 0.3) ** 2)]


def test_random_search_runs_every_trial_and_finds_the_best(harness: Harness) -> None:
    arn = harness.create(request(RandomSeed=1))
    described = harness.run(peak)
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["TrainingJobStatusCounters"] == {
        "Completed": 6, "InProgress": 0, "RetryableError": 0, "NonRetryableError": 0, "Stopped": 0}
    assert described["ObjectiveStatusCounters"] == {"Succeeded": 6, "Pending": 0, "Failed": 0}
    trials = harness.trials()
    values = {t["TrainingJobName"]: t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in trials}
    best = described["BestTrainingJob"]
    assert best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == max(values.values())
    assert values[best["TrainingJobName"]] == max(values.values())
    assert peak(best["TunedHyperParameters"])[0] == max(values.values())
    for number, trial in enumerate(sorted(trials, key=lambda t: t["TrainingJobName"]), start=1):
        assert re.fullmatch(rf"tune-{number:03d}-[0-9a-f]{{8}}", trial["TrainingJobName"])
        job = harness.training.description(harness.training.get(trial["TrainingJobName"]))
        assert job["TuningJobArn"] == arn
        assert job["HyperParameters"]["_tuning_objective_metric"] == "score"
        assert job["HyperParameters"]["lr"] == trial["TunedHyperParameters"]["lr"]
    # every answer fits botocore's output shapes exactly
    shape_output(operation("sagemaker", "DescribeHyperParameterTuningJob"), described, strict=True)
    shape_output(operation("sagemaker", "ListTrainingJobsForHyperParameterTuningJob"),
                 {"TrainingJobSummaries": trials}, strict=True)


@pytest.mark.parametrize("strategy", ["Random", "Bayesian"])
def test_the_same_seed_gives_the_same_hyperparameters(tmp_path: Path, strategy: str) -> None:
    sequences = []
    for run, seed in enumerate((5, 5, 6)):
        harness = Harness(tmp_path / f"home-{run}")
        try:
            harness.create(request(strategy=strategy, max_jobs=8, RandomSeed=seed))
            harness.run(peak)
            sequences.append(tuned_sequence(harness))
        finally:
            harness.close()
    assert len(sequences[0]) == 8
    assert sequences[0] == sequences[1]
    assert sequences[0] != sequences[2]


def test_a_restart_before_every_decision_changes_nothing(tmp_path: Path) -> None:
    """The study is rebuilt from the record: a fresh controller plans what the old one would."""
    straight, restarted = Harness(tmp_path / "a"), Harness(tmp_path / "b")
    try:
        for harness in (straight, restarted):
            harness.create(request(strategy="Bayesian", max_jobs=10, parallel=2, RandomSeed=3))
        straight.run(peak)
        for _ in range(100):
            restarted.restart()
            restarted.controller.reconcile_all()
            if restarted.describe()["HyperParameterTuningJobStatus"] == "Completed":
                break
            for job in restarted.running():
                restarted.report(job, peak(job.spec["HyperParameters"]))
                restarted.finish(job)
        assert tuned_sequence(restarted) == tuned_sequence(straight)
    finally:
        straight.close()
        restarted.close()


def test_parallel_trials_never_exceed_the_limit(harness: Harness) -> None:
    harness.create(request(max_jobs=7, parallel=3))
    seen = []
    for _ in range(50):
        harness.controller.reconcile_all()
        running = harness.running()
        seen.append(len(running))
        if not running:
            break
        harness.report(running[0], peak(running[0].spec["HyperParameters"]))
        harness.finish(running[0])  # one ends per pass, so slots free up one at a time
    assert max(seen) == 3
    assert harness.describe()["HyperParameterTuningJobStatus"] == "Completed"
    assert len(harness.trials()) == 7


def test_grid_visits_every_combination_once(harness: Harness) -> None:
    ranges = {
        "IntegerParameterRanges": [{"Name": "depth", "MinValue": "1", "MaxValue": "3"}],
        "CategoricalParameterRanges": [{"Name": "opt", "Values": ["adam", "sgd"]}],
    }
    harness.create(request(strategy="Grid", ranges=ranges, max_jobs=None, parallel=2))
    described = harness.run(lambda hp: [float(hp["depth"]) + (hp["opt"] == "sgd")])
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    visited = [(t["depth"], t["opt"]) for t in tuned_sequence(harness)]
    assert sorted(visited) == sorted(itertools.product(["1", "2", "3"], ["adam", "sgd"]))
    assert described["BestTrainingJob"]["TunedHyperParameters"] == {"depth": "3", "opt": "sgd"}


def test_a_crash_between_planning_and_creating_a_trial_loses_and_duplicates_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness.create(request(max_jobs=4, parallel=2, RandomSeed=9))
    submit = harness.training.submit_request

    def crash(*args: Any, **kwargs: Any) -> Record:
        raise SystemExit("the server died")

    monkeypatch.setattr(harness.training, "submit_request", crash)
    with pytest.raises(SystemExit):
        harness.controller.reconcile(harness.store.get("HyperParameterTuningJob", "tune"))
    planned = harness.store.get("HyperParameterTuningJob", "tune").state["_trials"]
    assert [(e["number"], e["created"]) for e in planned] == [(1, False), (2, False)]
    assert harness.running() == []
    monkeypatch.setattr(harness.training, "submit_request", submit)
    harness.restart()
    harness.controller.reconcile_all()
    created = {job.name: job.spec["HyperParameters"]["lr"] for job in harness.running()}
    assert created == {e["name"]: e["tuned"]["lr"] for e in planned}
    harness.run(peak)
    names = [t["TrainingJobName"] for t in harness.trials()]
    assert len(names) == len(set(names)) == 4


def test_a_trial_created_just_before_a_crash_is_not_created_twice(harness: Harness) -> None:
    harness.create(request(max_jobs=3, RandomSeed=2))
    harness.controller.reconcile_all()
    # as if the server died after creating the job but before recording that it did
    record = harness.store.get("HyperParameterTuningJob", "tune")
    state = dict(record.state)
    state["_trials"] = [{**e, "created": False} for e in state["_trials"]]
    harness.store.update("HyperParameterTuningJob", "tune", record.version, state=state)
    harness.restart()
    described = harness.run(peak)
    assert described["TrainingJobStatusCounters"]["Completed"] == 3
    assert len(harness.trials()) == 3


def test_stopping_stops_the_running_trials(harness: Harness) -> None:
    harness.create(request(max_jobs=6, parallel=2))
    harness.controller.reconcile_all()
    assert len(harness.running()) == 2
    harness.service.stop({"HyperParameterTuningJobName": "tune"})
    assert harness.describe()["HyperParameterTuningJobStatus"] == "Stopping"
    harness.controller.reconcile_all()
    assert {j.status for j in harness.running()} == {"Stopping"}
    described = harness.run(peak)
    assert described["HyperParameterTuningJobStatus"] == "Stopped"
    assert described["TrainingJobStatusCounters"]["Stopped"] == 2
    assert len(harness.trials()) == 2  # nothing new started after the stop
    with pytest.raises(ValidationError, match="in status Stopped"):
        harness.service.stop({"HyperParameterTuningJobName": "tune"})


def test_target_objective_ends_the_search_early(harness: Harness) -> None:
    harness.create(request(max_jobs=20, TuningJobCompletionCriteria={"TargetObjectiveMetricValue": 0.5}))
    values = iter([0.1, 0.2, 0.6, 0.9, 0.9])
    described = harness.run(lambda hp: [next(values)])
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert len(harness.trials()) == 3
    assert described["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == 0.6


def test_best_objective_not_improving_ends_the_search(harness: Harness) -> None:
    criteria = {"BestObjectiveNotImproving": {"MaxNumberOfTrainingJobsNotImproving": 3}}
    harness.create(request(max_jobs=20, TuningJobCompletionCriteria=criteria))
    values = iter([0.1, 0.5, 0.4, 0.3, 0.45, 0.9])
    described = harness.run(lambda hp: [next(values)])
    assert len(harness.trials()) == 5
    assert described["TuningJobCompletionDetails"]["NumberOfTrainingJobsObjectiveNotImproving"] == 3


def test_trials_that_all_fail_fail_the_tuning_job(harness: Harness) -> None:
    harness.create(request(max_jobs=10))
    described = harness.run(lambda hp: [])  # no trial ever reports the objective
    assert described["HyperParameterTuningJobStatus"] == "Failed"
    assert len(harness.trials()) == 3
    assert "reported no value of the objective metric" in described["FailureReason"]
    assert described["ObjectiveStatusCounters"]["Failed"] == 3


def _epochs(harness: Harness, values: Any, epochs: int, limit: int = 400) -> dict[str, Any]:
    """Drive a job whose trials report one epoch per pass; stopped ones end Stopped."""
    reported: dict[str, int] = {}
    for _ in range(limit):
        harness.controller.reconcile_all()
        described = harness.describe()
        if described["HyperParameterTuningJobStatus"] == "Completed":
            return described
        for job in harness.running():
            if job.status == "Stopping":
                harness.finish(job, "Stopped")
                continue
            done = reported.get(job.name, 0)
            series = values(job.spec["HyperParameters"])
            harness.report(job, series[done:done + 1], first=done)
            reported[job.name] = done + 1
            if done + 1 == epochs:
                harness.finish(job)
    raise AssertionError("the tuning job did not end")


def _learning_curve(hp: Mapping[str, str]) -> list[float]:
    quality = float(hp["lr"])
    return [quality * (1 - 0.5 ** epoch) for epoch in range(1, 10)]


def test_hyperband_stops_poor_trials_at_their_rung(harness: Harness) -> None:
    harness.create(request(strategy="Hyperband", max_jobs=12, RandomSeed=4,
                           definition={"static": {"epochs": "9"}}))
    described = _epochs(harness, _learning_curve, epochs=9)
    trials = harness.trials()
    stopped = [t for t in trials if t["TrainingJobStatus"] == "Stopped"]
    completed = [t for t in trials if t["TrainingJobStatus"] == "Completed"]
    assert stopped and completed
    best = described["BestTrainingJob"]
    assert best["TrainingJobStatus"] == "Completed"
    for trial in stopped:
        # stopped with the value it had reached, which is worse than the best trial's curve
        value = trial["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
        steps = _learning_curve(trial["TunedHyperParameters"])
        assert value in steps[:-1]
        assert trial["ObjectiveStatus"] == "Succeeded"
        assert float(trial["TunedHyperParameters"]["lr"]) < float(best["TunedHyperParameters"]["lr"])
    record = harness.store.get("HyperParameterTuningJob", "tune")
    assert all(e["pruned"] for e in record.state["_trials"] if e["status"] == "Stopped")
    # the rungs each trial passed are kept, so a rebuilt study prunes as this one did
    assert any(k.startswith("completed_rung_") for e in record.state["_trials"] for k in e["attrs"])


def test_median_early_stopping_stops_trials_below_the_median(harness: Harness) -> None:
    harness.create(request(max_jobs=8, RandomSeed=11, TrainingJobEarlyStoppingType="Auto"))
    described = _epochs(harness, _learning_curve, epochs=9)
    trials = harness.trials()
    stopped = [t for t in trials if t["TrainingJobStatus"] == "Stopped"]
    assert stopped
    first_three = sorted(trials, key=lambda t: t["TrainingJobName"])[:3]
    assert all(t["TrainingJobStatus"] == "Completed" for t in first_three)  # the median needs them
    assert described["BestTrainingJob"]["TrainingJobStatus"] == "Completed"


def test_warm_start_seeds_the_study_with_the_parents_trials(harness: Harness) -> None:
    harness.create(request(name="parent", max_jobs=5, RandomSeed=1))
    parent = harness.run(peak, name="parent")
    warm = {"WarmStartType": "IdenticalDataAndAlgorithm",
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "parent"}]}
    harness.create(request(name="child", strategy="Bayesian", max_jobs=2, RandomSeed=1,
                           WarmStartConfig=warm))
    record = harness.store.get("HyperParameterTuningJob", "child")
    rebuilt = st.rebuild(plan_of(record.spec), [], record.state["_warm"])
    parent_values = sorted(t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
                           for t in harness.trials("parent"))
    assert sorted(t.value for t in rebuilt.study.trials) == parent_values
    child = harness.run(lambda hp: [-10.0], name="child")  # the child's own trials are poor
    assert child["HyperParameterTuningJobStatus"] == "Completed"
    assert child["BestTrainingJob"]["TuningJobName"] == "child"
    overall = child["OverallBestTrainingJob"]
    assert overall["TrainingJobName"] == parent["BestTrainingJob"]["TrainingJobName"]
    assert overall["TuningJobName"] == "parent"
    shape_output(operation("sagemaker", "DescribeHyperParameterTuningJob"), child, strict=True)
    # Search shows Describe's answer plus Tags: it must fit the search entity's shape too
    shape_output(operation("sagemaker", "Search"),
                 {"Results": [{"HyperParameterTuningJob": {**child, "Tags": []}}]}, strict=True)


def test_transfer_learning_keeps_only_values_inside_the_new_ranges(harness: Harness) -> None:
    harness.create(request(name="parent", max_jobs=6, RandomSeed=1))
    harness.run(peak, name="parent")
    narrow = {"ContinuousParameterRanges": [{"Name": "lr", "MinValue": "0", "MaxValue": "0.5"}]}
    warm = {"WarmStartType": "TransferLearning",
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "parent"}]}
    harness.create(request(name="child", ranges=narrow, WarmStartConfig=warm))
    record = harness.store.get("HyperParameterTuningJob", "child")
    rebuilt = st.rebuild(plan_of(record.spec), [], record.state["_warm"])
    inside = [t for t in harness.trials("parent") if float(t["TunedHyperParameters"]["lr"]) <= 0.5]
    assert 0 < len(inside) < 6
    assert sorted(t.params["lr"] for t in rebuilt.study.trials) == sorted(
        float(t["TunedHyperParameters"]["lr"]) for t in inside)


def test_warm_start_parents_must_exist_have_ended_and_match(harness: Harness) -> None:
    warm = {"WarmStartType": "IdenticalDataAndAlgorithm",
            "ParentHyperParameterTuningJobs": [{"HyperParameterTuningJobName": "parent"}]}
    with pytest.raises(ValidationError, match="parent tuning job parent does not exist"):
        harness.create(request(name="child", WarmStartConfig=warm))
    harness.create(request(name="parent"))
    with pytest.raises(ValidationError, match="parents must have ended"):
        harness.create(request(name="child", WarmStartConfig=warm))
    harness.run(peak, name="parent")
    other_image = request(name="child", WarmStartConfig=warm)
    other_image["TrainingJobDefinition"]["AlgorithmSpecification"]["TrainingImage"] = (
        "683313688378.dkr.ecr.us-east-1.amazonaws.com/pytorch-training:2.6.0-cpu-py312")
    with pytest.raises(ValidationError, match="different AlgorithmSpecification"):
        harness.create(other_image)


def test_several_definitions_each_run_their_own_hyperparameters(harness: Harness) -> None:
    req = request(max_jobs=10, RandomSeed=8)
    ranges = req["HyperParameterTuningJobConfig"].pop("ParameterRanges")
    base = req.pop("TrainingJobDefinition")
    req["TrainingJobDefinitions"] = [
        {**base, "DefinitionName": "small", "HyperParameterRanges": ranges},
        {**base, "DefinitionName": "large", "StaticHyperParameters": {
            **base["StaticHyperParameters"], "size": "large"}, "HyperParameterRanges": {
            "IntegerParameterRanges": [{"Name": "layers", "MinValue": "1", "MaxValue": "4"}]}},
    ]
    harness.create(req)
    harness.run(lambda hp: [float(hp.get("layers", 0)) + float(hp.get("lr", 0))])
    trials = harness.trials()
    by_definition = {t["TrainingJobDefinitionName"] for t in trials}
    assert by_definition == {"small", "large"}
    for trial in trials:
        job = harness.training.get(trial["TrainingJobName"])
        tuned = set(trial["TunedHyperParameters"])
        if trial["TrainingJobDefinitionName"] == "large":
            assert tuned == {"layers"} and job.spec["HyperParameters"]["size"] == "large"
        else:
            assert tuned == {"lr"} and "size" not in job.spec["HyperParameters"]


def test_listing_trials_filters_sorts_and_pages(harness: Harness) -> None:
    harness.create(request(max_jobs=5, RandomSeed=3))
    values = iter([0.3, 0.1, 0.5, 0.2])
    harness.run(lambda hp: [v] if (v := next(values, None)) is not None else [])
    by_value = harness.service.list_training_jobs({
        "HyperParameterTuningJobName": "tune", "SortBy": "FinalObjectiveMetricValue",
        "SortOrder": "Descending"})["TrainingJobSummaries"]
    assert [t["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for t in by_value] == [0.5, 0.3, 0.2, 0.1]
    names = [t["TrainingJobName"] for t in harness.trials()]
    assert names == sorted(names) and len(names) == 5  # by Name, ascending, by default
    first = harness.service.list_training_jobs({"HyperParameterTuningJobName": "tune", "MaxResults": 2})
    second = harness.service.list_training_jobs({
        "HyperParameterTuningJobName": "tune", "MaxResults": 2, "NextToken": first["NextToken"]})
    assert [t["TrainingJobName"] for t in first["TrainingJobSummaries"] + second["TrainingJobSummaries"]] == names[:4]
    completed = harness.service.list_training_jobs({
        "HyperParameterTuningJobName": "tune", "StatusEquals": "Completed"})["TrainingJobSummaries"]
    assert len(completed) == 5


def test_tuning_jobs_are_listed_described_and_deleted(harness: Harness) -> None:
    harness.create(request(name="b-job"))
    harness.create(request(name="a-job"))
    with pytest.raises(ResourceInUse, match="already exists"):
        harness.create(request(name="a-job"))
    listed = harness.service.list({})["HyperParameterTuningJobSummaries"]
    assert [j["HyperParameterTuningJobName"] for j in listed] == ["a-job", "b-job"]
    shape_output(operation("sagemaker", "ListHyperParameterTuningJobs"),
                 {"HyperParameterTuningJobSummaries": listed}, strict=True)
    with pytest.raises(ResourceInUse, match="stop it before deleting it"):
        harness.service.delete({"HyperParameterTuningJobName": "a-job"})
    harness.run(peak, name="a-job")
    trials = harness.trials("a-job")
    harness.service.delete({"HyperParameterTuningJobName": "a-job"})
    with pytest.raises(ResourceNotFound):
        harness.describe("a-job")
    assert harness.training.get(trials[0]["TrainingJobName"]).status == "Completed"  # trials stay
