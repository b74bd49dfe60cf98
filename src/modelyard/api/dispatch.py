"""One dispatcher per awsJson service: operation name → handler, checked against botocore.

The request body is validated against the operation's input shape (patterns and maximum
lengths too, which botocore leaves to the server), the handler runs, and its result is shaped
by the output shape. Errors of any kind become the service's JSON error document.

The protocol details come from the model too: the content type carries the service's
``jsonVersion`` (1.1 for SageMaker and Logs, 1.0 for CloudWatch), and a service marked
``awsQueryCompatible`` (CloudWatch, which began as a query service) also gets the
``x-amzn-query-error: <Code>;<Sender|Receiver>`` header, from which botocore takes the error code
it matches against the client's exception classes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from modelyard.api.errors import json_error_response_body, new_request_id, wire_error
from modelyard.api.models import service_model
from modelyard.api.shaping import encode_json, shape_output
from modelyard.api.validation import validate_input
from modelyard.core.errors import ModelyardError, UnknownOperation, ValidationError

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any]]
Response = tuple[int, dict[str, str], bytes]

# Query-protocol spellings of modelyard codes that no error shape of the model declares: Coral
# reports a failed input constraint to query clients as ``ValidationError``.
_QUERY_CODES = {"ValidationException": "ValidationError"}


class JsonDispatcher:
    """Serves the operations of one awsJson service (``sagemaker``, ``logs``, ``cloudwatch``)."""

    def __init__(self, service: str, operations: Mapping[str, Handler], strict: bool = False) -> None:
        self.service = service
        self.model = service_model(service)
        self.operations = dict(operations)
        self.strict = strict
        self.content_type = f"application/x-amz-json-{self.model.metadata.get('jsonVersion', '1.1')}"
        self.query_compatible = "awsQueryCompatible" in self.model.metadata
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
            params = validate_input(op_model, decode_json_object(body))
            result = handler(params)
            payload = encode_json(shape_output(op_model, result, strict=self.strict))
        except ModelyardError as e:
            return self.error(e, rid)
        except Exception as e:  # a bug: answer 500 and keep serving
            log.exception("%s.%s failed", self.service, operation)
            return self.error(e, rid)
        headers = {"Content-Type": self.content_type, "x-amzn-RequestId": rid}
        return 200, headers, payload

    def error(self, err: BaseException, request_id: str | None = None) -> Response:
        """``err`` as this service's JSON error document (also for failures before dispatch)."""
        status, headers, body = json_error_response_body(err, self.service, request_id)
        headers["Content-Type"] = self.content_type
        if self.query_compatible:
            code = wire_error(err, self.service)[0]
            fault = "Receiver" if status >= 500 else "Sender"
            headers["x-amzn-query-error"] = f"{self._query_code(code)};{fault}"
        return status, headers, body

    def _query_code(self, code: str) -> str:
        # ``__type`` names the error shape; query clients know it by the shape's own code
        # (``InvalidParameterValueException`` is ``InvalidParameterValue``).
        if code in self.model.shape_names:
            shape = self.model.shape_for(code)
            if shape.metadata.get("exception"):
                return str(shape.error_code)
        return _QUERY_CODES.get(code, code)


def decode_json_object(body: bytes) -> dict[str, Any]:
    """A JSON request body as a dict ({} when empty); ValidationError otherwise."""
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except ValueError as e:
        raise ValidationError("The request body is not valid JSON.") from e
    if not isinstance(value, dict):
        raise ValidationError("The request body must be a JSON object.")
    return value
