"""STS GetCallerIdentity in the query protocol, read back by botocore's parser."""

from __future__ import annotations

from botocore.awsrequest import HTTPHeaders
from botocore.parsers import create_parser

from modelyard.api.models import operation
from modelyard.api.sigv4 import Principal
from modelyard.api.sts import caller_arn, handle_sts

PRINCIPAL = Principal("MYAKTESTTESTTESTTEST", "us-east-1", "sts")
ACCOUNT = "123456789012"


def _parse(status: int, headers: dict[str, str], body: bytes, op_name: str) -> dict:
    shape = operation("sts", op_name).output_shape
    response = {"status_code": status, "headers": HTTPHeaders.from_dict(headers), "body": body}
    return create_parser("query").parse(response, shape)


def test_get_caller_identity() -> None:
    status, headers, body = handle_sts(
        {"Action": "GetCallerIdentity", "Version": "2011-06-15"}, PRINCIPAL, ACCOUNT
    )
    assert status == 200
    assert headers["Content-Type"] == "text/xml"
    assert b'xmlns="https://sts.amazonaws.com/doc/2011-06-15/"' in body
    parsed = _parse(status, headers, body, "GetCallerIdentity")
    assert parsed["Account"] == ACCOUNT
    assert parsed["UserId"] == PRINCIPAL.access_key_id
    assert parsed["Arn"] == caller_arn(ACCOUNT) == "arn:aws:iam::123456789012:user/modelyard"
    assert parsed["ResponseMetadata"]["RequestId"] == headers["x-amzn-RequestId"]


def test_other_actions_are_invalid_action() -> None:
    status, headers, body = handle_sts(
        {"Action": "AssumeRole", "Version": "2011-06-15"}, PRINCIPAL, ACCOUNT
    )
    assert status == 400
    parsed = _parse(status, headers, body, "AssumeRole")
    assert parsed["Error"]["Code"] == "InvalidAction"
    assert parsed["Error"]["Message"] == (
        "Could not find operation AssumeRole for version 2011-06-15"
    )
    assert parsed["Error"]["Type"] == "Sender"
