"""How the transform host's Invoker uses connections: kept alive for small requests, one per
large request (so that an idle model-server worker picks each one up)."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable, Iterator

import pytest

from modelyard.runtime.transform import invoke
from modelyard.runtime.transform.invoke import FRESH_CONNECTION_BYTES, InvocationFailed, Invoker


class Recorder(http.server.BaseHTTPRequestHandler):
    """Answers POST /invocations with the body's length; records the client port of each."""

    protocol_version = "HTTP/1.1"
    ports: list[int] = []
    status = 200

    def do_POST(self) -> None:  # noqa: N802 (the http.server naming)
        length = int(self.headers["Content-Length"])
        self.rfile.read(length)
        self.ports.append(self.client_address[1])
        answer = str(length).encode()
        self.send_response(self.status)
        self.send_header("Content-Type", "text/csv")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.ThreadingHTTPServer]:
    Recorder.ports = []
    Recorder.status = 200
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def invokers(server: http.server.ThreadingHTTPServer) -> Iterator[Callable[..., Invoker]]:
    made: list[Invoker] = []

    def make(retries: int = 0) -> Invoker:
        made.append(Invoker(server.server_address[1], "text/csv", "text/csv", 10.0, retries,
                            lambda _: None))
        return made[-1]

    yield make
    for invoker in made:
        invoker.close()


def test_small_requests_share_a_connection(invokers: Callable[..., Invoker]) -> None:
    invoker = invokers()
    assert [invoker.invoke(b"1,2,3") for _ in range(5)] == [(b"5", "text/csv")] * 5
    assert len(Recorder.ports) == 5 and len(set(Recorder.ports)) == 1


def test_each_large_request_has_a_connection_of_its_own(invokers: Callable[..., Invoker]) -> None:
    invoker = invokers()
    body = memoryview(bytearray(b"1\n" * (FRESH_CONNECTION_BYTES // 2)))
    answers = [invoker.invoke(body) for _ in range(3)]
    assert answers == [(str(FRESH_CONNECTION_BYTES).encode(), "text/csv")] * 3
    assert len(set(Recorder.ports)) == 3


def test_kept_alive_connections_are_renewed(invokers: Callable[..., Invoker],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(invoke, "KEEP_ALIVE_SECONDS", 0.0)
    invoker = invokers()
    for _ in range(3):
        invoker.invoke(b"1")
    assert len(set(Recorder.ports)) == 3


def test_server_errors_are_retried_then_reported(invokers: Callable[..., Invoker]) -> None:
    Recorder.status = 503
    with pytest.raises(InvocationFailed, match="answered 503"):
        invokers(retries=2).invoke(b"1")
    assert len(Recorder.ports) == 3
