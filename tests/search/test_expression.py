"""Search expressions against documents: property paths, operators, nesting and sort keys."""

from __future__ import annotations

from typing import Any

import pytest

from modelyard.core.errors import ValidationError
from modelyard.search import expression as ex

JOB: dict[str, Any] = {
    "TrainingJobName": "xgb-eta-0-2",
    "TrainingJobStatus": "Completed",
    "CreationTime": 1_700_000_000.0,
    "HyperParameters": {"eta": "0.2", "objective": "binary:logistic", "a.b": "x"},
    "FinalMetricDataList": [
        {"MetricName": "validation:auc", "Value": 0.91, "Timestamp": 1_700_000_100.0},
        {"MetricName": "train:auc", "Value": 0.97, "Timestamp": 1_700_000_100.0},
    ],
    "InputDataConfig": [
        {"ChannelName": "train",
         "DataSource": {"S3DataSource": {"S3Uri": "s3://bucket/cats/train/"}}},
        {"ChannelName": "validation",
         "DataSource": {"S3DataSource": {"S3Uri": "s3://bucket/dogs/validation/"}}},
    ],
    "EnableManagedSpotTraining": False,
    "Tags": [{"Key": "project", "Value": "churn"}],
}
COMPONENT: dict[str, Any] = {
    "TrialComponentName": "exp-run-1",
    "Parameters": {"lr": {"NumberValue": 0.01}, "optimizer": {"StringValue": "adam"}},
    "Metrics": [{"MetricName": "loss", "Max": 0.9, "Min": 0.1, "Last": 0.2, "Count": 5}],
    "InputArtifacts": {"data": {"Value": "s3://bucket/data.csv", "MediaType": "text/csv"}},
    "Parents": [{"TrialName": "t-1", "ExperimentName": "exp"},
                {"TrialName": "t-2", "ExperimentName": "other"}],
}


def job_matches(*filters: dict[str, str], operator: str = "And") -> bool:
    expression = {"Filters": list(filters), "Operator": operator}
    ex.check(expression)
    return ex.matches(expression, ex.searchable_view(JOB), "TrainingJob")


def component_matches(expression: dict[str, Any]) -> bool:
    ex.check(expression)
    return ex.matches(expression, ex.searchable_view(COMPONENT), "TrialComponent")


def f(name: str, operator: str, value: str | None = None) -> dict[str, str]:
    out = {"Name": name, "Operator": operator}
    if value is not None:
        out["Value"] = value
    return out


@pytest.mark.parametrize(("item", "expected"), [
    (f("TrainingJobName", "Equals", "xgb-eta-0-2"), True),
    (f("TrainingJobName", "Equals", "xgb"), False),
    (f("TrainingJob.TrainingJobName", "Equals", "xgb-eta-0-2"), True),  # record prefix
    (f("TrainingJobName", "NotEquals", "xgb"), True),
    (f("TrainingJobName", "Contains", "eta-0"), True),
    (f("TrainingJobName", "Contains", "ETA"), False),
    (f("TrainingJobStatus", "In", "Failed, Completed"), True),
    (f("TrainingJobStatus", "In", "Failed,Stopped"), False),
    (f("HyperParameters.eta", "GreaterThan", "0.1"), True),  # numeric text compares as number
    (f("HyperParameters.eta", "GreaterThan", "0.2"), False),
    (f("HyperParameters.eta", "GreaterThanOrEqualTo", "0.2"), True),
    (f("HyperParameters.eta", "LessThan", "0.25"), True),
    (f("HyperParameters.eta", "LessThanOrEqualTo", "0.19"), False),
    (f("HyperParameters.eta", "Equals", "0.2"), True),
    (f("HyperParameters.eta", "Equals", "0.20"), False),  # text equals text exactly
    (f("HyperParameters.a.b", "Equals", "x"), True),  # a key with a dot
    (f("HyperParameters.objective", "Equals", "binary:logistic"), True),
    (f("Metrics.validation:auc", "GreaterThan", "0.9"), True),
    (f("Metrics.validation:auc", "GreaterThan", "0.95"), False),
    (f("Metrics.missing", "Exists"), False),
    (f("Metrics.missing", "NotExists"), True),
    (f("Metrics.train:auc", "Exists"), True),
    (f("Tags.project", "Equals", "churn"), True),
    (f("Tags.team", "NotExists"), True),
    (f("InputDataConfig.ChannelName", "Equals", "validation"), True),  # any element
    (f("InputDataConfig.ChannelName", "NotEquals", "validation"), False),  # no element
    (f("CreationTime", "GreaterThan", "2023-11-14T00:00:00"), True),  # ISO 8601
    (f("CreationTime", "LessThan", "2023-11-14T00:00:00"), False),
    (f("CreationTime", "GreaterThanOrEqualTo", "1700000000"), True),  # epoch seconds
    (f("EnableManagedSpotTraining", "Equals", "false"), True),
])
def test_filters_on_a_training_job(item: dict[str, str], expected: bool) -> None:
    assert job_matches(item) is expected


def test_filters_join_with_and_by_default_and_or_when_asked() -> None:
    hit, miss = f("TrainingJobStatus", "Equals", "Completed"), f("TrainingJobName", "Equals", "x")
    assert job_matches(hit, miss) is False
    assert job_matches(hit, miss, operator="Or") is True
    assert job_matches(miss, miss, operator="Or") is False


def test_nested_filters_need_one_element_to_pass_all_of_them() -> None:
    def nested(channel: str, uri: str) -> dict[str, Any]:
        return {"NestedFilters": [{"NestedPropertyName": "InputDataConfig", "Filters": [
            f("InputDataConfig.ChannelName", "Equals", channel),
            f("InputDataConfig.DataSource.S3DataSource.S3Uri", "Contains", uri),
        ]}]}

    view = ex.searchable_view(JOB)
    assert ex.matches(nested("train", "cats"), view, "TrainingJob")
    # both conditions hold, but on different channels: no single element passes
    assert not ex.matches(nested("train", "dogs"), view, "TrainingJob")


def test_sub_expressions_nest() -> None:
    expression = {
        "Filters": [f("TrainingJobStatus", "Equals", "Completed")],
        "SubExpressions": [
            {"Filters": [f("HyperParameters.eta", "Equals", "0.5"),
                         f("Tags.project", "Equals", "churn")], "Operator": "Or"},
        ],
    }
    ex.check(expression)
    assert ex.matches(expression, ex.searchable_view(JOB), "TrainingJob")
    expression["SubExpressions"][0]["Operator"] = "And"
    assert not ex.matches(expression, ex.searchable_view(JOB), "TrainingJob")


def test_trial_component_parameters_metrics_artifacts_and_parents() -> None:
    assert component_matches({"Filters": [f("Parameters.lr", "LessThan", "0.1")]})
    assert component_matches({"Filters": [f("Parameters.optimizer", "Equals", "adam")]})
    assert component_matches({"Filters": [f("Metrics.loss.Max", "Equals", "0.9")]})
    assert component_matches({"Filters": [f("Metrics.loss", "LessThan", "0.3")]})  # its Last
    assert component_matches({"Filters": [f("InputArtifacts", "Contains", "data.csv")]})
    assert component_matches({"Filters": [f("Parents.ExperimentName", "Equals", "other")]})
    assert not component_matches({"Filters": [f("Parents.ExperimentName", "Equals", "none")]})
    assert component_matches({"Filters": [f("TrialComponent.TrialComponentName", "Equals",
                                            "exp-run-1")]})


@pytest.mark.parametrize("expression", [
    {},
    {"Filters": [{"Name": "TrainingJobName", "Operator": "Equals"}]},  # no Value
    {"NestedFilters": [{"NestedPropertyName": "InputDataConfig",
                        "Filters": [f("ChannelName", "Equals", "train")]}]},  # not prefixed
    {"Filters": [f("TrainingJobName", "Exists")] * 51},
    {"SubExpressions": [{}]},
])
def test_invalid_expressions_are_refused(expression: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ex.check(expression)


def test_sort_values_order_numbers_as_numbers_and_miss_when_absent() -> None:
    view = ex.searchable_view(JOB)
    assert ex.sort_value(view, "Metrics.validation:auc", "TrainingJob") == (0, 0.91)
    assert ex.sort_value(view, "HyperParameters.eta", "TrainingJob") == (0, 0.2)
    assert ex.sort_value(view, "TrainingJobName", "TrainingJob") == (1, "xgb-eta-0-2")
    assert ex.sort_value(view, "Metrics.nothing", "TrainingJob") is None


def test_referenced_names_the_top_level_members_read() -> None:
    expression = {
        "Filters": [f("Tags.a", "Exists")],
        "NestedFilters": [{"NestedPropertyName": "InputDataConfig",
                           "Filters": [f("InputDataConfig.ChannelName", "Exists")]}],
        "SubExpressions": [{"Filters": [f("Metrics.loss", "Exists")]}],
    }
    assert ex.referenced(expression, "HyperParameters.eta") == {
        "Tags", "InputDataConfig", "Metrics", "HyperParameters",
    }
