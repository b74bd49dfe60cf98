"""Render :class:`~modelyard.core.errors.ModelyardError` in each wire protocol's error format.

Where botocore finds the error code differs by protocol, and a client that cannot find it turns
every failure into a generic ``ClientError`` with the HTTP status as code:

=============  ============================================  ==============================
protocol       code read from                                renderer
=============  ============================================  ==============================
awsJson 1.1    body ``__type`` only                          :func:`json_error_response_body`
rest-json      header ``x-amzn-ErrorType``, then the body    :func:`rest_json_error`
query (STS)    ``<ErrorResponse><Error><Code>``              :func:`query_xml_error`
=============  ============================================  ==============================

Each renderer returns ``(status, headers, body)``. The same condition has different codes in
different services (a missing thing is ``ResourceNotFound`` in SageMaker but
``ResourceNotFoundException`` in CloudWatch Logs); pass ``service`` to translate. Exceptions that
are not :class:`ModelyardError` become ``InternalFailure`` with a generic message, so internals
never leak to clients.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from xml.etree import ElementTree

from modelyard.api.shaping import encode_json
from modelyard.core.errors import ModelyardError

__all__ = [
    "JSON_CONTENT_TYPE",
    "REST_JSON_CONTENT_TYPE",
    "STS_NAMESPACE",
    "XML_CONTENT_TYPE",
    "json_error_response_body",
    "new_request_id",
    "query_xml_error",
    "rest_json_error",
    "wire_error",
]

JSON_CONTENT_TYPE = "application/x-amz-json-1.1"
REST_JSON_CONTENT_TYPE = "application/json"
XML_CONTENT_TYPE = "text/xml"
STS_NAMESPACE = "https://sts.amazonaws.com/doc/2011-06-15/"

_INTERNAL_MESSAGE = "We encountered an internal error. Please try again."

# Per-service renames of modelyard's wire codes: (code, status) the service's own model declares.
_SERVICE_CODES: dict[str, dict[str, tuple[str, int]]] = {
    "sagemaker-runtime": {
        "ValidationException": ("ValidationError", 400),
    },
    "sagemaker-featurestore-runtime": {
        "ValidationException": ("ValidationError", 400),
        "ResourceNotFound": ("ResourceNotFound", 404),
        "ConflictException": ("ConflictException", 409),
    },
    "logs": {
        "ValidationException": ("InvalidParameterException", 400),
        "ResourceNotFound": ("ResourceNotFoundException", 400),
        "ResourceInUse": ("ResourceAlreadyExistsException", 400),
        "ResourceLimitExceeded": ("LimitExceededException", 400),
        "ConflictException": ("OperationAbortedException", 400),
        "InternalFailure": ("ServiceUnavailableException", 500),
    },
}


def new_request_id() -> str:
    """A fresh request id (a UUID, as AWS uses), for ``x-amzn-RequestId``."""
    return str(uuid.uuid4())


def wire_error(err: BaseException, service: str | None = None) -> tuple[str, int, str]:
    """``(code, status, message)`` for ``err`` as ``service`` (a botocore name) reports it."""
    if not isinstance(err, ModelyardError):
        return "InternalFailure", 500, _INTERNAL_MESSAGE
    code, status = err.code, err.status
    renamed = _SERVICE_CODES.get(service or "", {}).get(code)
    if renamed is not None:
        code, status = renamed
    return code, status, err.message


def json_error_response_body(
    err: BaseException, service: str | None = None, request_id: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """An awsJson 1.1 error: ``{"__type": code, "message": text}`` (SageMaker, Logs)."""
    code, status, message = wire_error(err, service)
    rid = request_id or new_request_id()
    headers = {"Content-Type": JSON_CONTENT_TYPE, "x-amzn-RequestId": rid}
    return status, headers, encode_json({"__type": code, "message": message})


def rest_json_error(
    err: BaseException,
    extra: Mapping[str, Any] | None = None,
    service: str | None = None,
    request_id: str | None = None,
) -> tuple[int, dict[str, str], bytes]:
    """A rest-json error: header ``x-amzn-ErrorType``, body ``{"message": text, **extra}``.

    ``extra`` carries the members of a modeled error beyond its message, e.g. for the runtime's
    ``ModelError``: ``{"OriginalStatusCode": 400, "OriginalMessage": "...", "LogStreamArn": ...}``.
    """
    code, status, message = wire_error(err, service)
    rid = request_id or new_request_id()
    headers = {
        "Content-Type": REST_JSON_CONTENT_TYPE,
        "x-amzn-RequestId": rid,
        "x-amzn-ErrorType": code,
    }
    body: dict[str, Any] = {"message": message}
    body.update({k: v for k, v in (extra or {}).items() if v is not None})
    return status, headers, encode_json(body)


def query_xml_error(
    err: BaseException, request_id: str | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A query-protocol (STS) error document::

    <ErrorResponse><Error><Type>Sender</Type><Code>..</Code><Message>..</Message></Error>
    <RequestId>..</RequestId></ErrorResponse>
    """
    code, status, message = wire_error(err, "sts")
    rid = request_id or new_request_id()
    root = ElementTree.Element("ErrorResponse", xmlns=STS_NAMESPACE)
    error = ElementTree.SubElement(root, "Error")
    # "Receiver" tells the caller the fault is on the server's side and a retry may succeed.
    ElementTree.SubElement(error, "Type").text = "Receiver" if status >= 500 else "Sender"
    ElementTree.SubElement(error, "Code").text = code
    ElementTree.SubElement(error, "Message").text = message
    ElementTree.SubElement(root, "RequestId").text = rid
    headers = {"Content-Type": XML_CONTENT_TYPE, "x-amzn-RequestId": rid}
    return status, headers, ElementTree.tostring(root, encoding="utf-8", xml_declaration=True)
