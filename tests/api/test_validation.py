"""Request validation: AWS-worded problems, all collected, values converted."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any

import pytest

from modelyard.api.models import operation
from modelyard.api.validation import find_problems, parse_timestamp, validate_input
from modelyard.core.errors import ValidationError

from .wire import Capture
from .wire import client as wire_client

NAME_PATTERN = operation("sagemaker", "DescribeTrainingJob").input_shape.members[
    "TrainingJobName"
].metadata["pattern"]


def _create_training_job(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "TrainingJobName": "abalone-1",
        "RoleArn": "arn:aws:iam::123456789012:role/SageMakerRole",
        "AlgorithmSpecification": {"TrainingImage": "xgboost:1.7", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": "s3://bucket/out"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5},
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "HyperParameters": {"eta": "0.2", "num_round": "10"},
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://bucket/train"}
                },
            }
        ],
        "Tags": [{"Key": "team", "Value": "ml"}],
    }
    params.update(overrides)
    return params


def _message(op_name: str, params: dict[str, Any], service: str = "sagemaker") -> str:
    with pytest.raises(ValidationError) as info:
        validate_input(operation(service, op_name), params)
    assert info.value.code == "ValidationException"
    assert info.value.status == 400
    return info.value.message


def test_valid_request_is_returned_converted() -> None:
    params = _create_training_job()
    out = validate_input(operation("sagemaker", "CreateTrainingJob"), params)
    assert out == params


def test_pattern_failure_uses_aws_wording() -> None:
    message = _message("DescribeTrainingJob", {"TrainingJobName": "bad_name"})
    assert message == (
        "1 validation error detected: Value 'bad_name' at 'trainingJobName' failed to satisfy "
        f"constraint: Member must satisfy regular expression pattern: {NAME_PATTERN}"
    )


def test_all_errors_are_collected_and_counted() -> None:
    message = _message("DescribeTrainingJob", {"TrainingJobName": "x_" * 40})
    assert message.startswith("2 validation errors detected: ")
    problems = message.removeprefix("2 validation errors detected: ").split("; ")
    assert problems == [
        f"Value '{'x_' * 40}' at 'trainingJobName' failed to satisfy constraint: "
        "Member must have length less than or equal to 63",
        f"Value '{'x_' * 40}' at 'trainingJobName' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {NAME_PATTERN}",
    ]


def test_missing_required_members_are_null() -> None:
    params = _create_training_job()
    del params["RoleArn"]
    params["OutputDataConfig"] = None  # JSON null counts as absent
    _, problems = find_problems(operation("sagemaker", "CreateTrainingJob"), params)
    assert problems == [
        "Value null at 'roleArn' failed to satisfy constraint: Member must not be null",
        "Value null at 'outputDataConfig' failed to satisfy constraint: Member must not be null",
    ]


def test_nested_paths_are_lower_camel_and_lists_are_one_based() -> None:
    params = _create_training_job(
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "Pipe2"},
        Tags=[{"Key": "a", "Value": "b"}, {"Key": "k"}],
    )
    _, problems = find_problems(operation("sagemaker", "CreateTrainingJob"), params)
    assert problems == [
        "Value 'Pipe2' at 'algorithmSpecification.trainingInputMode' failed to satisfy "
        "constraint: Member must satisfy enum value set: [Pipe, File, FastFile]",
        "Value null at 'tags.2.member.value' failed to satisfy constraint: "
        "Member must not be null",
    ]


def test_map_values_and_keys() -> None:
    long_value = "v" * 2501
    params = _create_training_job(HyperParameters={"eta": long_value, "k" * 257: "1"})
    _, problems = find_problems(operation("sagemaker", "CreateTrainingJob"), params)
    assert len(problems) == 2
    assert problems[0].endswith(
        "at 'hyperParameters.eta' failed to satisfy constraint: "
        "Member must have length less than or equal to 2500"
    )
    # Long values are shortened in the message rather than echoed whole.
    assert problems[0].startswith("Value '" + "v" * 256 + "...' at")
    assert problems[1].endswith(
        "at 'hyperParameters' failed to satisfy constraint: Map keys must satisfy constraint: "
        "Member must have length less than or equal to 256"
    )


def test_map_entry_count_is_bounded() -> None:
    params = _create_training_job(HyperParameters={f"k{i}": "v" for i in range(101)})
    _, problems = find_problems(operation("sagemaker", "CreateTrainingJob"), params)
    assert len(problems) == 1
    assert problems[0].endswith(
        "at 'hyperParameters' failed to satisfy constraint: "
        "Member must have length less than or equal to 100"
    )


def test_unknown_members_are_rejected_at_every_level() -> None:
    params = _create_training_job(Bogus=1)
    params["AlgorithmSpecification"]["TrainingImag"] = "typo"
    _, problems = find_problems(operation("sagemaker", "CreateTrainingJob"), params)
    assert problems == [
        "Unknown parameter 'Bogus'",
        "Unknown parameter 'TrainingImag' at 'algorithmSpecification'",
    ]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("ten", "Member must be an integer"),
        (True, "Member must be an integer"),
        (2.5, "Member must be an integer"),
        (0, "Member must have value greater than or equal to 1"),
        (101, "Member must have value less than or equal to 100"),
    ],
)
def test_integer_type_and_range(value: Any, expected: str) -> None:
    _, problems = find_problems(operation("sagemaker", "ListTrainingJobs"), {"MaxResults": value})
    shown = {True: "true"}.get(value, value) if isinstance(value, bool) else value
    assert problems == [
        f"Value '{shown}' at 'maxResults' failed to satisfy constraint: {expected}"
    ]


def test_whole_float_is_accepted_as_integer() -> None:
    out = validate_input(operation("sagemaker", "ListTrainingJobs"), {"MaxResults": 5.0})
    assert out == {"MaxResults": 5}
    assert isinstance(out["MaxResults"], int)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"NameContains": 5}, "Value '5' at 'nameContains' failed to satisfy constraint: "
         "Member must be a string"),
        ({"SortOrder": ["Ascending"]}, "Value '[Ascending]' at 'sortOrder' failed to satisfy "
         "constraint: Member must be a string"),
        ({"CreationTimeAfter": "yesterday"}, "Value 'yesterday' at 'creationTimeAfter' failed "
         "to satisfy constraint: Member must be a timestamp (epoch seconds or ISO 8601)"),
    ],
)
def test_wrong_json_types(params: dict[str, Any], expected: str) -> None:
    _, problems = find_problems(operation("sagemaker", "ListTrainingJobs"), params)
    assert problems == [expected]


def test_structure_list_boolean_types() -> None:
    params = _create_training_job(
        ResourceConfig=["ml.m5.large"], InputDataConfig={"ChannelName": "train"},
        EnableNetworkIsolation="yes",
    )
    _, problems = find_problems(operation("sagemaker", "CreateTrainingJob"), params)
    assert [p.rsplit(": ", 1)[1] for p in problems] == [
        "Member must be a list",
        "Member must be a structure",
        "Member must be a boolean",
    ]


def test_timestamps_become_epoch_seconds() -> None:
    op = operation("sagemaker", "ListTrainingJobs")
    out = validate_input(
        op,
        {
            "CreationTimeAfter": "2024-01-01T00:00:00Z",
            "CreationTimeBefore": 1704067200.5,
            "LastModifiedTimeAfter": "2024-01-01T01:00:00+01:00",
            "LastModifiedTimeBefore": 1704067200,
        },
    )
    assert out == {
        "CreationTimeAfter": 1704067200.0,
        "CreationTimeBefore": 1704067200.5,
        "LastModifiedTimeAfter": 1704067200.0,
        "LastModifiedTimeBefore": 1704067200.0,
    }
    assert all(isinstance(v, float) for v in out.values())


def test_parse_timestamp_forms() -> None:
    assert parse_timestamp("2024-01-01T00:00:00") == 1704067200.0  # zone-less is UTC
    assert parse_timestamp("Mon, 01 Jan 2024 00:00:00 GMT") == 1704067200.0
    assert parse_timestamp("1704067200.25") == 1704067200.25
    assert parse_timestamp(True) is None
    assert parse_timestamp(float("nan")) is None
    assert parse_timestamp("not a time") is None


def test_runtime_body_accepts_raw_bytes_and_base64() -> None:
    op = operation("sagemaker-runtime", "InvokeEndpoint")
    raw = validate_input(op, {"EndpointName": "ep-1", "Body": b"1,2,3"})
    assert raw["Body"] == b"1,2,3"
    encoded = validate_input(
        op, {"EndpointName": "ep-1", "Body": base64.b64encode(b"\x00\xff").decode()}
    )
    assert encoded["Body"] == b"\x00\xff"
    # Body is a sensitive member: its value is never echoed back.
    _, problems = find_problems(op, {"EndpointName": "ep-1", "Body": "not base64!"})
    assert problems == [
        "Value '*** Sensitive Data Redacted ***' at 'body' failed to satisfy constraint: "
        "Member must be base64-encoded binary data"
    ]
    _, problems = find_problems(op, {"EndpointName": "ep-1", "Body": b"x" * (6291456 + 1)})
    assert problems == [
        "Value '*** Sensitive Data Redacted ***' at 'body' failed to satisfy constraint: "
        "Member must have length less than or equal to 6291456"
    ]


def test_header_members_arrive_as_text_and_are_coerced() -> None:
    op = operation("sagemaker-runtime", "InvokeEndpointAsync")
    out = validate_input(
        op,
        {
            "EndpointName": "ep-1",
            "InputLocation": "s3://bucket/in.csv",
            "RequestTTLSeconds": "600",
            "InvocationTimeoutSeconds": "90",
        },
    )
    assert out["RequestTTLSeconds"] == 600
    assert out["InvocationTimeoutSeconds"] == 90
    _, problems = find_problems(
        op, {"EndpointName": "ep-1", "InputLocation": "s3://b/k", "RequestTTLSeconds": "59"}
    )
    assert problems == [
        "Value '59' at 'requestTTLSeconds' failed to satisfy constraint: "
        "Member must have value greater than or equal to 60"
    ]


def test_tagged_union_needs_exactly_one_member() -> None:
    op = operation("sagemaker", "CreateAutoMLJobV2")
    union = op.input_shape.members["AutoMLProblemTypeConfig"]
    assert union.is_tagged_union
    _, problems = find_problems(op, {"AutoMLProblemTypeConfig": {}})
    assert any(
        p.startswith("Value '{}' at 'autoMLProblemTypeConfig' failed to satisfy constraint: "
                     "Member must have exactly one of [")
        for p in problems
    )


def test_java_only_pattern_is_skipped_not_fatal() -> None:
    # Tag values use \p{L}-style classes Python's re cannot compile; they go unchecked.
    params = _create_training_job(Tags=[{"Key": "ключ", "Value": "значение"}])
    out = validate_input(operation("sagemaker", "CreateTrainingJob"), params)
    assert out["Tags"] == [{"Key": "ключ", "Value": "значение"}]


def test_operation_without_input_members() -> None:
    op = operation("sts", "GetCallerIdentity")
    assert validate_input(op, {}) == {}
    _, problems = find_problems(op, {"Foo": "x"})
    assert problems == ["Unknown parameter 'Foo'"]


def test_bodies_sent_by_botocore_validate() -> None:
    capture = Capture(reply=b"{}")
    sagemaker = wire_client("sagemaker", capture)
    sagemaker.create_training_job(**_create_training_job())
    sagemaker.list_training_jobs(
        CreationTimeAfter=datetime(2024, 1, 1, tzinfo=UTC), MaxResults=5
    )
    create, listing = (json.loads(sent.body) for sent in capture.sent)
    assert validate_input(operation("sagemaker", "CreateTrainingJob"), create) == (
        _create_training_job()
    )
    assert validate_input(operation("sagemaker", "ListTrainingJobs"), listing) == {
        "CreationTimeAfter": 1704067200.0,
        "MaxResults": 5,
    }


def test_non_finite_doubles_arrive_as_strings() -> None:
    op = operation("sagemaker-metrics", "BatchPutMetrics")
    data = [{"MetricName": "m", "Timestamp": 1.0, "Value": text}
            for text in ("NaN", "Infinity", "-Infinity")]
    converted = validate_input(op, {"TrialComponentName": "tc", "MetricData": data})
    values = [d["Value"] for d in converted["MetricData"]]
    assert values[0] != values[0] and values[1:] == [float("inf"), float("-inf")]
    with pytest.raises(ValidationError, match="Member must be a number"):
        validate_input(op, {"TrialComponentName": "tc",
                            "MetricData": [{"MetricName": "m", "Timestamp": 1.0, "Value": "nan"}]})
