"""How a worker takes connections from the socket its siblings share (``.acceptor``).

A real event loop, real loopback sockets and the real HTTP connection class; a handler that
answers ``ok``. ``HOLD_SECONDS`` is raised where a test must not depend on the machine's speed.
"""

from __future__ import annotations

import asyncio
import socket

from modelyard.runtime.serving import acceptor
from modelyard.runtime.serving.app import Response
from modelyard.runtime.serving.httpserver import HttpServer

REQUEST = b"GET /ping HTTP/1.1\r\nHost: x\r\n\r\n"


def _ok(method: bytes, url: bytes, headers: dict[bytes, bytes], body: bytes) -> Response:
    return 200, b"text/plain", b"ok", [], None


async def _settle(server: HttpServer, count: int, timeout: float = 2.0) -> int:
    """Turn the loop until ``count`` connections are accepted, or ``timeout``; how many are."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while len(server.connections) < count and loop.time() < deadline:
        await asyncio.sleep(0.005)
    return len(server.connections)


async def _answer(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    return head + await reader.readexactly(2)


def _serve(exclusive: bool) -> tuple[HttpServer, socket.socket, int]:
    """A started server on a fresh loopback socket, the socket and its port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    server = HttpServer(_ok, 1 << 20, 1)
    server.start(sock, exclusive=exclusive)
    return server, sock, sock.getsockname()[1]


def test_an_exclusive_worker_takes_one_connection_until_its_request_is_answered(monkeypatch):
    monkeypatch.setattr(acceptor, "HOLD_SECONDS", 30.0)

    async def scenario() -> tuple[int, int, bytes, int]:
        server, sock, port = _serve(exclusive=True)
        first = await asyncio.open_connection("127.0.0.1", port)
        second = await asyncio.open_connection("127.0.0.1", port)
        taken_while_waiting = await _settle(server, 2, timeout=0.3)  # the first holds it
        first[1].write(REQUEST)
        answer = await _answer(first[0])
        after_answer = await _settle(server, 2)
        # the second connection holds in turn; once answered, a third is taken
        second[1].write(REQUEST)
        await _answer(second[0])
        third = await asyncio.open_connection("127.0.0.1", port)
        after_third = await _settle(server, 3)
        for _, writer in (first, second, third):
            writer.close()
        await server.drain(1)
        sock.close()
        return taken_while_waiting, after_answer, answer, after_third

    waiting, after, answer, third = asyncio.run(scenario())
    assert waiting == 1
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"ok")
    assert after == 2
    assert third == 3


def test_a_request_arriving_slowly_holds_the_worker_only_for_a_while(monkeypatch):
    monkeypatch.setattr(acceptor, "HOLD_SECONDS", 1.0)  # long enough that the first check below comes well before it ends

    async def scenario() -> tuple[int, int]:
        server, sock, port = _serve(exclusive=True)
        _, slow = await asyncio.open_connection("127.0.0.1", port)
        slow.write(b"POST /invocations HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12")
        await _settle(server, 1)
        _, waiting = await asyncio.open_connection("127.0.0.1", port)
        held = len(server.connections)  # at once: the slow request still holds the worker
        later = await _settle(server, 2, timeout=10)  # after HOLD_SECONDS the worker takes it anyway
        for writer in (slow, waiting):
            writer.close()
        await server.drain(0.1)
        sock.close()
        return held, later

    held, later = asyncio.run(scenario())
    assert held == 1
    assert later == 2


def test_a_shared_worker_takes_every_connection_at_once(monkeypatch):
    monkeypatch.setattr(acceptor, "HOLD_SECONDS", 30.0)

    async def scenario() -> int:
        server, sock, port = _serve(exclusive=False)
        clients = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
        taken = await _settle(server, 3)
        for _, writer in clients:
            writer.close()
        await server.drain(1)
        sock.close()
        return taken

    assert asyncio.run(scenario()) == 3


def test_a_draining_worker_takes_no_more_connections():
    async def scenario() -> tuple[int, int]:
        server, sock, port = _serve(exclusive=False)
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        before = await _settle(server, 1)
        await server.drain(0.1)  # closes the idle connection too
        _, late = await asyncio.open_connection("127.0.0.1", port)  # waits in the backlog
        after = await _settle(server, 1, timeout=0.2)
        for client in (writer, late):
            client.close()
        sock.close()
        return before, after

    before, after = asyncio.run(scenario())
    assert before == 1
    assert after == 0
