"""The rules of CreateHyperParameterTuningJob beyond its schema, and the plan built from it."""

from __future__ import annotations

import copy
import re

import pytest

from modelyard.api.models import operation
from modelyard.api.validation import validate_input
from modelyard.core.errors import ValidationError
from modelyard.tuning.spec import child_name, plan_of, validate_create
from tests.tuning.harness import request

XGBOOST = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:1.7-1"


def test_child_names_follow_sagemakers_pattern_and_are_stable() -> None:
    name = child_name("my-tuning", 1700000000.25, 7)
    assert re.fullmatch(r"my-tuning-007-[0-9a-f]{8}", name)
    assert child_name("my-tuning", 1700000000.25, 7) == name           # a restart plans the same
    assert child_name("my-tuning", 1700000001.0, 7) != name            # a re-created job does not
    longest = child_name("a" * 32, 0.0, 500)
    assert len(longest) <= 63
    assert re.fullmatch(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}", longest)


def test_name_longer_than_32_characters_fails_schema_validation() -> None:
    with pytest.raises(ValidationError, match="hyperParameterTuningJobName"):
        validate_input(operation("sagemaker", "CreateHyperParameterTuningJob"), request(name="t" * 33))


def test_objective_metric_is_added_to_static_hyperparameters() -> None:
    req = request()
    original = copy.deepcopy(req)
    spec = validate_create(req)
    assert spec["TrainingJobDefinition"]["StaticHyperParameters"]["_tuning_objective_metric"] == "score"
    assert req == original  # the request itself is left alone


def test_trial_request_carries_static_and_tuned_hyperparameters() -> None:
    spec = validate_create(request(definition={"CheckpointConfig": {"S3Uri": "s3://b/ckpt"}}))
    definition = plan_of(spec).definitions[0]
    trial = definition.request("tune-001-00000000", {"lr": 0.25})
    assert trial["HyperParameters"] == {
        "sagemaker_program": '"train.py"', "sagemaker_submit_directory": '"/code/sourcedir.tar.gz"',
        "_tuning_objective_metric": "score", "lr": "0.25",
    }
    assert trial["CheckpointConfig"]["S3Uri"] == "s3://b/ckpt/tune-001-00000000"
    assert spec["TrainingJobDefinition"]["CheckpointConfig"]["S3Uri"] == "s3://b/ckpt"


@pytest.mark.parametrize(
    ("req", "message"),
    [
        (request(strategy="Grid"), "continuous ranges have no grid"),
        (request(strategy="Grid", max_jobs=5, ranges={"CategoricalParameterRanges": [
            {"Name": "c", "Values": ["a", "b"]}]}), r"exceeds the number of grid combinations \(2\)"),
        (request(max_jobs=None), "MaxNumberOfTrainingJobs is required for the Random strategy"),
        (request(HyperParameterTuningJobObjective={"Type": "Maximize", "MetricName": "acc"}),
         "objective metric acc is not among the metrics"),
        (request(definition={"static": {"lr": "0.1"}}), "lr are both static and tuned"),
        (request(strategy="Hyperband"), "MaxResource is required"),
        (request(strategy="Hyperband", TrainingJobEarlyStoppingType="Auto",
                 definition={"static": {"epochs": "9"}}), "TrainingJobEarlyStoppingType must be Off"),
        (request(ranges={"IntegerParameterRanges": []}), "at least one hyperparameter range"),
        (request(definition={"AlgorithmSpecification": {
            "TrainingImage": "registry/unknown:1", "TrainingInputMode": "File"}}),
         "TrainingJobDefinition: .*unknown"),
    ],
)
def test_invalid_requests_are_refused(req: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        validate_create(req)


def test_grid_defaults_to_every_combination() -> None:
    req = request(strategy="Grid", max_jobs=None, ranges={
        "IntegerParameterRanges": [{"Name": "depth", "MinValue": "1", "MaxValue": "3"}],
        "CategoricalParameterRanges": [{"Name": "c", "Values": ["a", "b"]}],
    })
    assert plan_of(validate_create(req)).max_jobs == 6


def test_hyperband_reads_its_max_resource_from_the_epochs_hyperparameter() -> None:
    plan = plan_of(validate_create(request(strategy="Hyperband", definition={"static": {"epochs": "27"}})))
    assert plan.hyperband == (1, 27)
    given = request(strategy="Hyperband", StrategyConfig={
        "HyperbandStrategyConfig": {"MinResource": 3, "MaxResource": 9}})
    assert plan_of(validate_create(given)).hyperband == (3, 9)


def test_builtin_xgboost_objective_needs_no_metric_definitions() -> None:
    req = request(HyperParameterTuningJobObjective={"Type": "Maximize", "MetricName": "validation:ndcg@5"})
    definition = req["TrainingJobDefinition"]
    definition["AlgorithmSpecification"] = {"TrainingImage": XGBOOST, "TrainingInputMode": "File"}
    definition["StaticHyperParameters"] = {"num_round": "10", "objective": "rank:pairwise"}
    definition["ResourceConfig"] = {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1}
    plan = plan_of(validate_create(req))
    assert plan.objective.metric == "validation:ndcg@5"


def _two_definitions() -> dict:
    req = request()
    ranges = req["HyperParameterTuningJobConfig"].pop("ParameterRanges")
    base = req.pop("TrainingJobDefinition")
    req["TrainingJobDefinitions"] = [
        {**copy.deepcopy(base), "DefinitionName": "small", "HyperParameterRanges": ranges},
        {**copy.deepcopy(base), "DefinitionName": "large", "HyperParameterRanges": {
            "IntegerParameterRanges": [{"Name": "layers", "MinValue": "1", "MaxValue": "4"}]}},
    ]
    return req


def test_several_definitions_are_namespaced_in_the_search_space() -> None:
    plan = plan_of(validate_create(_two_definitions()))
    small, large = plan.definitions
    assert (small.name, large.name) == ("small", "large")
    params = {"__definition__": "large", "large:layers": 3}
    assert plan.definition(params) is large
    assert large.tuned(params) == {"layers": "3"}
    assert set(plan.distributions(params)) == {"__definition__", "large:layers"}


def test_several_definitions_need_names_and_their_own_ranges() -> None:
    req = _two_definitions()
    del req["TrainingJobDefinitions"][1]["DefinitionName"]
    with pytest.raises(ValidationError, match="needs its own DefinitionName"):
        validate_create(req)
    req = _two_definitions()
    req["HyperParameterTuningJobConfig"]["ParameterRanges"] = {
        "CategoricalParameterRanges": [{"Name": "c", "Values": ["a"]}]}
    with pytest.raises(ValidationError, match="in each definition"):
        validate_create(req)
