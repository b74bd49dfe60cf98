"""Response shaping: wire types, no nulls, unknown members dropped or (strict) refused."""

from __future__ import annotations

import base64
import enum
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from botocore.awsrequest import HTTPHeaders
from botocore.model import ShapeResolver
from botocore.parsers import create_parser
from botocore.response import StreamingBody

from modelyard.api.models import operation
from modelyard.api.shaping import (
    _Shaper,
    encode_json,
    rest_json_response,
    shape_output,
    to_epoch,
)
from modelyard.core.errors import ModelyardError


class Status(enum.Enum):
    IN_PROGRESS = "InProgress"


def _parse_json(op_name: str, body: bytes, service: str = "sagemaker") -> dict:
    """What boto3 hands the caller for this body."""
    op = operation(service, op_name)
    response = {"status_code": 200, "headers": {}, "body": body}
    return create_parser(op.service_model.protocol).parse(response, op.output_shape)


def test_describe_training_job_round_trips_through_botocore() -> None:
    created = datetime(2024, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)
    result = {
        "TrainingJobName": "abalone-1",
        "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/abalone-1",
        "TrainingJobStatus": Status.IN_PROGRESS,
        "SecondaryStatus": "Starting",
        "CreationTime": created,
        "TrainingStartTime": created.timestamp() + 1.0004,
        "TrainingEndTime": None,
        "HyperParameters": {"eta": "0.2", "unset": None},
        "AlgorithmSpecification": {"TrainingImage": "img", "TrainingInputMode": "File"},
        "ResourceConfig": {
            "InstanceType": "ml.m5.large", "InstanceCount": 1.0, "VolumeSizeInGB": 5
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
        "ModelArtifacts": {"S3ModelArtifacts": "s3://b/out/abalone-1/output/model.tar.gz"},
        "InternalDesiredState": "Running",  # a store field the API does not have
    }
    shaped = shape_output(operation("sagemaker", "DescribeTrainingJob"), result)
    assert "TrainingEndTime" not in shaped
    assert "InternalDesiredState" not in shaped
    assert shaped["HyperParameters"] == {"eta": "0.2"}
    assert shaped["TrainingJobStatus"] == "InProgress"
    assert shaped["CreationTime"] == 1704110400.123
    assert shaped["TrainingStartTime"] == 1704110401.124
    assert shaped["ResourceConfig"]["InstanceCount"] == 1
    body = encode_json(shaped)
    assert b"null" not in body
    parsed = _parse_json("DescribeTrainingJob", body)
    assert parsed["CreationTime"] == datetime(2024, 1, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert parsed["TrainingJobStatus"] == "InProgress"
    assert parsed["ResourceConfig"] == {
        "InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 5
    }


def test_naive_datetime_is_utc_and_lists_are_shaped() -> None:
    naive = datetime(2024, 1, 1)
    shaped = shape_output(
        operation("sagemaker", "ListTrainingJobs"),
        {
            "TrainingJobSummaries": [
                {
                    "TrainingJobName": "a",
                    "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/a",
                    "CreationTime": naive,
                    "TrainingJobStatus": "Completed",
                    "LastModifiedTime": naive + timedelta(seconds=1),
                    "Extra": 1,
                },
            ],
            "NextToken": None,
        },
    )
    assert shaped == {
        "TrainingJobSummaries": [
            {
                "TrainingJobName": "a",
                "TrainingJobArn": "arn:aws:sagemaker:us-east-1:123456789012:training-job/a",
                "CreationTime": 1704067200.0,
                "TrainingJobStatus": "Completed",
                "LastModifiedTime": 1704067201.0,
            }
        ]
    }


def test_strict_mode_refuses_unknown_members_and_bad_types() -> None:
    op = operation("sagemaker", "DescribeTrainingJob")
    with pytest.raises(ModelyardError, match="TrainingJobNme"):
        shape_output(op, {"TrainingJobNme": "x"}, strict=True)
    with pytest.raises(ModelyardError, match="expected an integer"):
        shape_output(op, {"ResourceConfig": {"InstanceCount": "1"}}, strict=True)
    with pytest.raises(ModelyardError, match="expected a timestamp"):
        shape_output(op, {"CreationTime": "soon"}, strict=True)


def test_void_operation_shapes_to_empty_object() -> None:
    op = operation("sagemaker", "DeleteModel")
    assert shape_output(op, None) == {}
    assert encode_json(shape_output(op, {})) == b"{}"


def test_invoke_endpoint_returns_raw_body_and_headers() -> None:
    op = operation("sagemaker-runtime", "InvokeEndpoint")
    status, headers, body = rest_json_response(
        op,
        {
            "Body": b"\x00prediction",
            "ContentType": "text/csv",
            "InvokedProductionVariant": "AllTraffic",
            "CustomAttributes": None,
        },
    )
    assert status == 200
    assert body == b"\x00prediction"
    assert headers == {
        "Content-Type": "text/csv",
        "x-Amzn-Invoked-Production-Variant": "AllTraffic",
    }
    # botocore hands a streaming output's body to the parser as a StreamingBody, as here.
    assert op.has_streaming_output
    stream = StreamingBody(io.BytesIO(body), len(body))
    parsed = create_parser("rest-json").parse(
        {"status_code": status, "headers": HTTPHeaders.from_dict(headers), "body": stream},
        op.output_shape,
    )
    assert parsed["Body"].read() == b"\x00prediction"
    assert parsed["ContentType"] == "text/csv"
    assert parsed["InvokedProductionVariant"] == "AllTraffic"


def test_invoke_endpoint_async_is_202_with_json_body() -> None:
    op = operation("sagemaker-runtime", "InvokeEndpointAsync")
    status, headers, body = rest_json_response(
        op, {"InferenceId": "abc", "OutputLocation": "s3://b/out/abc.out"}
    )
    assert status == 202
    assert json.loads(body) == {"InferenceId": "abc"}
    assert headers == {"X-Amzn-SageMaker-OutputLocation": "s3://b/out/abc.out"}


def test_featurestore_get_record_json_payload() -> None:
    op = operation("sagemaker-featurestore-runtime", "GetRecord")
    record = [{"FeatureName": "id", "ValueAsString": "1"}]
    status, headers, body = rest_json_response(op, {"Record": record})
    assert (status, headers) == (200, {})
    parsed = create_parser("rest-json").parse(
        {"status_code": 200, "headers": {}, "body": body}, op.output_shape
    )
    assert parsed["Record"] == record


def test_to_epoch_forms() -> None:
    assert to_epoch(datetime(2024, 1, 1, tzinfo=UTC)) == 1704067200.0
    assert to_epoch(1704067200.12345) == 1704067200.123
    assert to_epoch("2024-01-01T00:00:00Z") == 1704067200.0
    with pytest.raises(ModelyardError):
        to_epoch("later")


def test_blob_output_is_base64() -> None:
    # No served output has a blob inside a JSON body, so a two-shape model stands in for one.
    resolver = ShapeResolver(
        {
            "Out": {"type": "structure", "members": {"Data": {"shape": "Bytes"}}},
            "Bytes": {"type": "blob"},
        }
    )
    out_shape = resolver.get_shape_by_name("Out")
    shaped = _Shaper(strict=True).structure(out_shape, {"Data": b"\x01\x02"}, "Out")
    assert shaped == {"Data": base64.b64encode(b"\x01\x02").decode()}
    parsed = create_parser("json").parse(
        {"status_code": 200, "headers": {}, "body": encode_json(shaped)},
        out_shape,
    )
    assert parsed["Data"] == b"\x01\x02"
