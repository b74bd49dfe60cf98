"""One dispatcher per awsJson service: operation name → handler, checked against botocore.

The request body is validated against the operation's input shape (patterns and maximum
lengths too, which botocore leaves to the server), the handler runs, and its result is shaped
by the output shape. Errors of any kind become the service's JSON error document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from modelyard.api.errors import JSON_CONTENT_TYPE, json_error_response_body, new_request_id
from modelyard.api.models import service_model
from modelyard.api.shaping import encode_json, shape_output
from modelyard.api.validation import validate_input
from modelyard.core.errors import ModelyardError, UnknownOperation, ValidationError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any]]
Response = tuple[int, dict[str, str], bytes]


class JsonDispatcher:
    """Serves the operations of one awsJson service (``sagemaker``, ``logs``)."""

    def __init__(self, service: str, operations: Mapping[str, Handler], strict: bool = False) -> None:
        self.service = service
        self.model = service_model(service)
        self.operations = dict(operations)
        self.strict = strict
        unknown = set(self.operations) - set(self.model.operation_names)
        if unknown:
            raise ValueError(f"{service} has no operations {sorted(unknown)}")

    def dispatch(self, operation: str, body: bytes, request_id: str | None = None) -> Response:
        """Run one operation on a raw request body and return the raw response."""
        rid = request_id or new_request_id()
        try:
            handler = self.operations.get(operation)
            if handler is None:
                raise UnknownOperation(f"{self.service}.{operation}")
            op_model = self.model.operation_model(operation)
            params = validate_input(op_model, _decode(body))
            result = handler(params)
            payload = encode_json(shape_output(op_model, result, strict=self.strict))
        except ModelyardError as e:
            return json_error_response_body(e, self.service, rid)
        except Exception as e:  # a bug: answer 500 and keep serving
            log.exception("%s.%s failed", self.service, operation)
            return json_error_response_body(e, self.service, rid)
        headers = {"Content-Type": JSON_CONTENT_TYPE, "x-amzn-RequestId": rid}
        return 200, headers, payload


def _decode(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError as e:
        raise ValidationError("The request body is not valid JSON.") from e
    if not isinstance(value, dict):
        raise ValidationError("The request body must be a JSON object.")
    return value
