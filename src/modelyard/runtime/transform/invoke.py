"""POST /invocations to the host's model server, with ModelClientConfig's timeout and retries.

Each sending thread keeps its own connection (``http.client`` connections are not
thread-safe). The model server's workers share one listening socket and each serves the
connections it accepted, one request at a time, so a kept-alive connection stays with one
worker: two of them on the same worker leave the other idle for the whole job (seen in the
transform benchmark: one worker with 5 s of CPU, the other with only its start). So a
connection is kept alive only for small requests, and only for about a second; a large
request (a MultiRecord payload) asks the server to close after answering, and the next one
connects afresh, and is taken by a worker waiting in ``accept``, that is an idle one (a
worker with a request in hand takes none: :mod:`modelyard.runtime.serving.acceptor`). The handshake costs well under a millisecond against tens of milliseconds of
work per payload.

Connection errors, timeouts and 5xx answers are retried; a 4xx answer is the model refusing
the data, which a retry cannot change.
"""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Callable

from modelyard.runtime.failures import ClientError

#: how much of a failed answer's body goes into the FailureReason
_BODY_HEAD = 300
#: a body this large is sent on a connection of its own (see the module docstring)
FRESH_CONNECTION_BYTES = 1024 * 1024
#: seconds a kept-alive connection carries requests before it is replaced
KEEP_ALIVE_SECONDS = 1.0


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
        self._closing_headers = {**self.headers, "Connection": "close"}
        self._local = threading.local()
        self._open: set[http.client.HTTPConnection] = set()  # every thread's, for close()
        self._lock = threading.Lock()

    def invoke(self, body: bytes | memoryview) -> tuple[bytes, str | None]:
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

    def _post(self, body: bytes | memoryview) -> tuple[int, bytes, str | None]:
        connection = self._connection()
        last = len(body) >= FRESH_CONNECTION_BYTES or time.monotonic() > self._local.renew_at
        headers = self._closing_headers if last else self.headers
        connection.request("POST", "/invocations", body=body, headers=headers)
        response = connection.getresponse()
        data = response.read()
        if response.will_close or last:
            self._drop()
        return response.status, data, response.getheader("Content-Type")

    def _connection(self) -> http.client.HTTPConnection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
            self._local.connection = connection
            self._local.renew_at = time.monotonic() + KEEP_ALIVE_SECONDS
            with self._lock:
                self._open.add(connection)
        return connection

    def _drop(self) -> None:
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None
            with self._lock:
                self._open.discard(connection)

    def close(self) -> None:
        """Close the kept-alive connections of every thread; call it when none is sending."""
        with self._lock:
            for connection in self._open:
                connection.close()
            self._open.clear()
