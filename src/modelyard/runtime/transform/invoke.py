"""POST /invocations to the host's model server, with ModelClientConfig's timeout and retries.

Each sending thread keeps its own keep-alive connection (``http.client`` connections are not
thread-safe), so concurrent requests never pay for a TCP handshake. Connection errors,
timeouts and 5xx answers are retried; a 4xx answer is the model refusing the data, which a
retry cannot change.
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable

from modelyard.runtime.failures import ClientError

#: how much of a failed answer's body goes into the FailureReason
_BODY_HEAD = 300


class InvocationFailed(ClientError):
    """The model server did not answer 2xx, after the retries."""


class Invoker:
    """Sends request bodies to ``127.0.0.1:<port>/invocations``; thread-safe."""

    def __init__(self, port: int, content_type: str | None, accept: str | None,
                 timeout: float, retries: int, log: Callable[[str], None]) -> None:
        self.port = port
        self.timeout = timeout
        self.retries = retries
        self.log = log
        self.headers = {k: v for k, v in (("Content-Type", content_type), ("Accept", accept)) if v}
        self._local = threading.local()

    def invoke(self, body: bytes) -> tuple[bytes, str | None]:
        """The answer's body and Content-Type; InvocationFailed when every attempt failed."""
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                self.log(f"Retrying the request (attempt {attempt + 1}): {problem}")
            try:
                status, data, content_type = self._post(body)
            except (OSError, http.client.HTTPException) as e:
                self._drop()
                problem = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
                continue
            if status < 300:
                return data, content_type
            problem = f"the model server answered {status}: {data[:_BODY_HEAD].decode('utf-8', 'replace')}"
            if status < 500:
                break
        raise InvocationFailed(problem)

    def _post(self, body: bytes) -> tuple[int, bytes, str | None]:
        connection = self._connection()
        connection.request("POST", "/invocations", body=body, headers=self.headers)
        response = connection.getresponse()
        data = response.read()
        if response.will_close:
            self._drop()
        return response.status, data, response.getheader("Content-Type")

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self._local.connection = connection
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
