"""Error documents, checked by feeding them through botocore's own response parsers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.awsrequest import HTTPHeaders
from botocore.parsers import create_parser

from modelyard.api.errors import (
    json_error_response_body,
    new_request_id,
    query_xml_error,
    rest_json_error,
    wire_error,
)
from modelyard.api.models import operation
from modelyard.core.errors import (
    AuthenticationError,
    LegacyNotFound,
    ModelyardError,
    ResourceInUse,
    ResourceNotFound,
    ValidationError,
)


def _parse(protocol: str, status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    response = {"status_code": status, "headers": HTTPHeaders.from_dict(headers), "body": body}
    return create_parser(protocol).parse(response, None)


@pytest.mark.parametrize(
    ("err", "code", "status"),
    [
        (ValidationError("1 validation error detected: ..."), "ValidationException", 400),
        (LegacyNotFound("endpoint", "arn:aws:sagemaker:us-east-1:1:endpoint/e"),
         "ValidationException", 400),
        (ResourceNotFound("Pipeline", "p"), "ResourceNotFound", 400),
        (ResourceInUse("Training job abalone already exists."), "ResourceInUse", 400),
        (AuthenticationError("InvalidSignatureException", "bad"), "InvalidSignatureException", 403),
    ],
)
def test_aws_json_error_parsed_by_botocore(err: ModelyardError, code: str, status: int) -> None:
    got_status, headers, body = json_error_response_body(err, "sagemaker", request_id="rid-1")
    assert got_status == status
    assert headers == {"Content-Type": "application/x-amz-json-1.1", "x-amzn-RequestId": "rid-1"}
    assert json.loads(body) == {"__type": code, "message": err.message}
    parsed = _parse("json", status, headers, body)
    assert parsed["Error"] == {"Code": code, "Message": err.message}
    assert parsed["ResponseMetadata"]["RequestId"] == "rid-1"


def test_legacy_not_found_message_is_what_the_sdk_matches() -> None:
    err = LegacyNotFound("model", "arn:aws:sagemaker:us-east-1:123456789012:model/m")
    _, headers, body = json_error_response_body(err)
    parsed = _parse("json", 400, headers, body)
    assert "Could not find" in parsed["Error"]["Message"]


def test_unexpected_exception_becomes_internal_failure_without_details() -> None:
    status, headers, body = json_error_response_body(RuntimeError("db password is hunter2"))
    assert status == 500
    parsed = _parse("json", status, headers, body)
    assert parsed["Error"]["Code"] == "InternalFailure"
    assert "hunter2" not in parsed["Error"]["Message"]


def test_logs_codes_are_translated() -> None:
    status, headers, body = json_error_response_body(
        ResourceNotFound("Log group", "/aws/sagemaker/TrainingJobs"), "logs"
    )
    parsed = _parse("json", status, headers, body)
    assert (status, parsed["Error"]["Code"]) == (400, "ResourceNotFoundException")
    assert wire_error(ValidationError("x"), "logs")[:2] == ("InvalidParameterException", 400)


def test_rest_json_model_error_with_extra_members() -> None:
    err = ModelyardError('Received client error (400) from primary with message "bad input".')
    err.code, err.status = "ModelError", 424  # stands in for a runtime ModelError class
    extra = {
        "OriginalStatusCode": 400,
        "OriginalMessage": "bad input",
        "LogStreamArn": "arn:aws:logs:us-east-1:123456789012:log-group:/aws/sagemaker/Endpoints/e",
    }
    status, headers, body = rest_json_error(err, extra, "sagemaker-runtime", request_id="r2")
    assert status == 424
    assert headers["x-amzn-ErrorType"] == "ModelError"
    parsed = _parse("rest-json", status, headers, body)
    assert parsed["Error"]["Code"] == "ModelError"
    assert parsed["Error"]["Message"] == err.message
    assert parsed["ResponseMetadata"]["RequestId"] == "r2"
    # The client then parses the modeled members with the ModelError shape, as botocore's
    # endpoint does for a code the service model declares.
    shape = operation("sagemaker-runtime", "InvokeEndpoint").service_model.shape_for("ModelError")
    modeled = create_parser("rest-json").parse(
        {"status_code": status, "headers": HTTPHeaders.from_dict(headers), "body": body}, shape
    )
    assert modeled["OriginalStatusCode"] == 400
    assert modeled["OriginalMessage"] == "bad input"
    assert modeled["LogStreamArn"].endswith("/aws/sagemaker/Endpoints/e")


def test_rest_json_runtime_validation_uses_validation_error_code() -> None:
    err = ValidationError("Endpoint e of account 123456789012 not found.")
    status, headers, body = rest_json_error(err, service="sagemaker-runtime")
    parsed = _parse("rest-json", status, headers, body)
    assert (status, parsed["Error"]["Code"]) == (400, "ValidationError")
    assert parsed["Error"]["Message"] == err.message


def test_featurestore_not_found_is_404() -> None:
    status, headers, body = rest_json_error(
        ResourceNotFound("FeatureGroup", "fg"), service="sagemaker-featurestore-runtime"
    )
    parsed = _parse("rest-json", status, headers, body)
    assert (status, parsed["Error"]["Code"]) == (404, "ResourceNotFound")


def test_query_xml_error_parsed_by_botocore() -> None:
    err = AuthenticationError("InvalidClientTokenId", "The security token is invalid.")
    status, headers, body = query_xml_error(err, request_id="r3")
    assert status == 403
    assert headers["Content-Type"] == "text/xml"
    assert b"<Type>Sender</Type>" in body
    parsed = _parse("query", status, headers, body)
    assert parsed["Error"]["Code"] == "InvalidClientTokenId"
    assert parsed["Error"]["Message"] == "The security token is invalid."
    assert parsed["Error"]["Type"] == "Sender"
    assert parsed["ResponseMetadata"]["RequestId"] == "r3"


def test_query_xml_error_escapes_markup_and_marks_server_faults() -> None:
    status, headers, body = query_xml_error(ModelyardError("a <b> & 'c'"))
    parsed = _parse("query", status, headers, body)
    assert status == 500
    assert parsed["Error"]["Type"] == "Receiver"
    assert parsed["Error"]["Code"] == "InternalFailure"
    assert parsed["Error"]["Message"] == "a <b> & 'c'"


def test_request_ids_are_unique() -> None:
    assert len({new_request_id() for _ in range(100)}) == 100
