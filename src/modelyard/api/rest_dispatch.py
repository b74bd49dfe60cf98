"""One dispatcher per rest-json service whose operations take a JSON body at a fixed path.

``sagemaker-metrics`` is such a service: ``PUT /BatchPutMetrics`` and ``POST /BatchGetMetrics``,
each with a JSON body, are routed by method and path (the ``requestUri`` of the service model),
validated against the input shape and answered in the output shape. Errors are rest-json
errors: header ``x-amzn-ErrorType`` plus ``{"message": ...}``, which botocore reads first.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from modelyard.api.dispatch import decode_json_object
from modelyard.api.errors import new_request_id, rest_json_error
from modelyard.api.models import service_model
from modelyard.api.shaping import rest_json_response
from modelyard.api.validation import validate_input
from modelyard.core.errors import ModelyardError, UnknownOperation

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], dict[str, Any]]
Response = tuple[int, dict[str, str], bytes]


class RestJsonDispatcher:
    """Serves the fixed-path, JSON-body operations of one rest-json service."""

    def __init__(
        self, service: str, operations: Mapping[str, Handler], strict: bool = False
    ) -> None:
        self.service = service
        self.model = service_model(service)
        self.operations = dict(operations)
        self.strict = strict
        self.routes: dict[tuple[str, str], str] = {}
        for name in self.operations:
            if name not in self.model.operation_names:
                raise ValueError(f"{service} has no operation {name}")
            http = self.model.operation_model(name).http
            if "{" in http["requestUri"]:
                raise ValueError(f"{service}.{name} has path parameters; not served here")
            self.routes[(http["method"], http["requestUri"])] = name

    def paths(self) -> dict[str, list[str]]:
        """Each served path with its methods, for the web framework's routing table."""
        out: dict[str, list[str]] = {}
        for method, path in self.routes:
            out.setdefault(path, []).append(method)
        return out

    def dispatch(
        self, method: str, path: str, body: bytes, request_id: str | None = None
    ) -> Response:
        """Run the operation at ``method path`` on a raw body; the raw response."""
        rid = request_id or new_request_id()
        try:
            operation = self.routes.get((method, path))
            if operation is None:
                raise UnknownOperation(f"{self.service} {method} {path}")
            op_model = self.model.operation_model(operation)
            params = validate_input(op_model, decode_json_object(body))
            status, headers, payload = rest_json_response(
                op_model, self.operations[operation](params), self.strict
            )
        except ModelyardError as e:
            return self.error(e, rid)
        except Exception as e:  # a bug: answer 500 and keep serving
            log.exception("%s %s %s failed", self.service, method, path)
            return self.error(e, rid)
        headers.update({"Content-Type": "application/json", "x-amzn-RequestId": rid})
        return status, headers, payload

    def error(self, err: BaseException, request_id: str | None = None) -> Response:
        """``err`` as this service's rest-json error."""
        return rest_json_error(err, service=self.service, request_id=request_id)

