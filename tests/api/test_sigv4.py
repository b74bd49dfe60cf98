"""SigV4 verification against requests signed by botocore itself."""

from __future__ import annotations

import hashlib
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, AWSResponse
from botocore.credentials import Credentials

from modelyard.api.sigv4 import Principal
from modelyard.api.sts import handle_sts
from modelyard.core.errors import AuthenticationError

from .wire import ACCESS_KEY, ENDPOINT, REGION, SECRET_KEY, Capture, RawBody, Sent
from .wire import client as _client


def _sign(
    method: str, url: str, body: bytes = b"", headers: dict[str, str] | None = None,
    service: str = "sagemaker",
) -> Sent:
    request = AWSRequest(method=method, url=url, data=body, headers=headers or {})
    SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), service, REGION).add_auth(request)
    parts = urlsplit(url)
    sent_headers = {k.lower(): v for k, v in request.headers.items()}
    sent_headers["host"] = parts.netloc
    return Sent(method, parts.path, parts.query, sent_headers, body)


# -- real client requests ----------------------------------------------------------------------


def test_sagemaker_control_plane_request_verifies() -> None:
    capture = Capture()
    _client("sagemaker", capture).describe_training_job(TrainingJobName="abalone-1")
    (sent,) = capture.sent
    assert sent.headers["x-amz-target"] == "SageMaker.DescribeTrainingJob"
    assert sent.verify() == Principal(ACCESS_KEY, REGION, "sagemaker")


def test_logs_request_verifies_with_logs_scope() -> None:
    capture = Capture(reply=b'{"logStreams":[]}')
    _client("logs", capture).describe_log_streams(
        logGroupName="/aws/sagemaker/TrainingJobs", logStreamNamePrefix="abalone-1/"
    )
    assert capture.sent[0].verify() == Principal(ACCESS_KEY, REGION, "logs")


def test_sts_form_request_verifies_and_client_reads_answer() -> None:
    capture = Capture()
    client = _client("sts", capture)

    def answer(request: Any, **kwargs: Any) -> AWSResponse:
        capture(request)
        sent = capture.sent[-1]
        principal = sent.verify()
        form = dict(pair.split("=", 1) for pair in sent.body.decode().split("&"))
        _, headers, body = handle_sts(form, principal, "123456789012")
        return AWSResponse(request.url, 200, headers, RawBody(body))

    client.meta.events.unregister("before-send", capture)
    client.meta.events.register("before-send", answer)
    identity = client.get_caller_identity()
    assert identity["Account"] == "123456789012"
    assert identity["UserId"] == ACCESS_KEY
    assert capture.sent[0].verify().service == "sts"


def test_runtime_request_with_path_and_custom_headers_verifies() -> None:
    capture = Capture(reply=b"0.5")
    _client("sagemaker-runtime", capture).invoke_endpoint(
        EndpointName="my-endpoint",
        Body=b"1,2,3",
        ContentType="text/csv",
        CustomAttributes="trace=1",
    )
    (sent,) = capture.sent
    assert sent.path == "/endpoints/my-endpoint/invocations"
    assert "x-amzn-sagemaker-custom-attributes" in sent.headers["authorization"]
    assert sent.verify().service == "sagemaker"


def test_query_string_with_repeated_keys_and_escapes_verifies() -> None:
    capture = Capture(reply=b"{}")
    _client("sagemaker-featurestore-runtime", capture).get_record(
        FeatureGroupName="fg-1",
        RecordIdentifierValueAsString="a b/c+d",
        FeatureNames=["z", "a"],
    )
    (sent,) = capture.sent
    assert sent.method == "GET"
    assert "FeatureName=z" in sent.query and "FeatureName=a" in sent.query
    assert sent.verify().access_key_id == ACCESS_KEY


def test_query_in_a_different_but_equivalent_encoding_still_verifies() -> None:
    sent = _sign("GET", f"{ENDPOINT}/things?b=2&a=x%2Fy&empty=")
    sent.query = "a=x/y&empty&b=2"  # a proxy re-encoded and reordered the query
    assert sent.verify().access_key_id == ACCESS_KEY


# -- tampering ---------------------------------------------------------------------------------


def _signed_control_request() -> Sent:
    capture = Capture()
    _client("sagemaker", capture).describe_training_job(TrainingJobName="abalone-1")
    return capture.sent[0]


def _code_and_message(sent: Sent, **overrides: Any) -> tuple[str, str]:
    with pytest.raises(AuthenticationError) as info:
        sent.verify(**overrides)
    assert info.value.status == 403
    return info.value.code, info.value.message


def test_tampered_body_is_rejected() -> None:
    sent = _signed_control_request()
    body = sent.body.replace(b"abalone-1", b"abalone-2")
    code, message = _code_and_message(sent, body=body)
    assert code == "InvalidSignatureException"
    assert message.startswith("The request signature we calculated does not match")


def test_tampered_signed_header_is_rejected_unsigned_header_is_not() -> None:
    sent = _signed_control_request()
    forged = dict(sent.headers, **{"x-amz-target": "SageMaker.DeleteModel"})
    assert _code_and_message(sent, headers=forged)[0] == "InvalidSignatureException"
    relabelled = dict(sent.headers, **{"user-agent": "something-else"})
    assert sent.verify(headers=relabelled).access_key_id == ACCESS_KEY


def test_tampered_path_method_and_query_are_rejected() -> None:
    sent = _sign("GET", f"{ENDPOINT}/things?a=1")
    assert _code_and_message(sent, path="/other")[0] == "InvalidSignatureException"
    assert _code_and_message(sent, method="DELETE")[0] == "InvalidSignatureException"
    assert _code_and_message(sent, query="a=2")[0] == "InvalidSignatureException"


def test_wrong_secret_is_rejected() -> None:
    capture = Capture()
    _client("sagemaker", capture, secret="x" * 40).list_models()
    code, _ = _code_and_message(capture.sent[0])
    assert code == "InvalidSignatureException"


def test_missing_authorization() -> None:
    sent = _signed_control_request()
    headers = {k: v for k, v in sent.headers.items() if k != "authorization"}
    assert _code_and_message(sent, headers=headers) == (
        "MissingAuthenticationTokenException",
        "Missing Authentication Token",
    )


def test_unknown_access_key() -> None:
    sent = _signed_control_request()
    assert _code_and_message(sent, lookup_secret=lambda key: None) == (
        "UnrecognizedClientException",
        "The security token included in the request is invalid.",
    )


def test_malformed_authorization_header() -> None:
    sent = _signed_control_request()
    broken = dict(sent.headers, authorization="AWS4-HMAC-SHA256 Credential=x/y")
    code, message = _code_and_message(sent, headers=broken)
    assert code == "IncompleteSignatureException"
    assert "SignedHeaders" in message


def test_clock_skew_beyond_fifteen_minutes() -> None:
    sent = _signed_control_request()
    signed_at = time.time()
    assert sent.verify(now=signed_at + 14 * 60).service == "sagemaker"
    code, message = _code_and_message(sent, now=signed_at + 16 * 60)
    assert code == "InvalidSignatureException"
    signed = sent.headers["x-amz-date"]
    assert message.startswith(f"Signature expired: {signed} is now earlier than ")
    assert message.endswith(" - 15 min.)")
    code, message = _code_and_message(sent, now=signed_at - 16 * 60)
    assert message.startswith("Signature not yet current: ")


# -- payload hash header -----------------------------------------------------------------------


def test_content_sha256_header_matching_body() -> None:
    body = b'{"a":1}'
    digest = hashlib.sha256(body).hexdigest()
    sent = _sign("POST", f"{ENDPOINT}/", body, {"X-Amz-Content-SHA256": digest})
    assert "x-amz-content-sha256" in sent.headers["authorization"]
    assert sent.verify().access_key_id == ACCESS_KEY
    code, message = _code_and_message(sent, body=b'{"a":2}')
    assert code == "InvalidSignatureException"
    assert "x-amz-content-sha256" in message


def test_unsigned_payload() -> None:
    sent = _sign("PUT", f"{ENDPOINT}/obj", b"data", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"})
    assert sent.verify().access_key_id == ACCESS_KEY
    # The client chose not to sign the body, so a different body still verifies.
    assert sent.verify(body=b"other").access_key_id == ACCESS_KEY


# -- the direct computation for plain requests ---------------------------------------------


@pytest.mark.parametrize("method, url, headers, body", [
    ("POST", f"{ENDPOINT}/endpoints/my-endpoint/invocations", {"Content-Type": "text/csv"}, b"1,2,3"),
    ("POST", f"{ENDPOINT}/endpoints/a.b_c~d/invocations", {"X-Amzn-SageMaker-Custom-Attributes": "  a   b  "}, b""),
    ("PUT", f"{ENDPOINT}/obj", {"X-Amz-Content-SHA256": "UNSIGNED-PAYLOAD"}, b"data"),
    ("POST", f"{ENDPOINT}/", {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "SageMaker.ListModels"}, b"{}"),
])
def test_plain_requests_sign_exactly_as_botocore_does(method: str, url: str, headers: dict[str, str],
                                                      body: bytes) -> None:
    from modelyard.api import sigv4

    sent = _sign(method, url, body, headers)
    lowered = {k.lower(): v for k, v in sent.headers.items()}
    auth = sigv4._parse_authorization(lowered["authorization"])
    timestamp = lowered["x-amz-date"]
    args = (method, sent.path, sent.query, lowered, body, auth, timestamp, SECRET_KEY)
    quick = sigv4._plain_signature(*args)
    assert quick is not None and quick == sigv4._expected_signature(*args) == auth.signature


def test_requests_that_need_canonicalising_take_botocores_path() -> None:
    from modelyard.api import sigv4

    sent = _sign("GET", f"{ENDPOINT}/a%20b?x=1&b=2")
    lowered = {k.lower(): v for k, v in sent.headers.items()}
    auth = sigv4._parse_authorization(lowered["authorization"])
    assert sigv4._plain_signature(sent.method, sent.path, sent.query, lowered, b"", auth,
                                  lowered["x-amz-date"], SECRET_KEY) is None
    assert sent.verify().access_key_id == ACCESS_KEY
