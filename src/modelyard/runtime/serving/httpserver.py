"""HTTP/1.1 over raw asyncio with ``httptools``: keep-alive, Content-Length or chunked bodies.

A streamed response (see :mod:`.streams`) is written chunk by chunk inline as well: the worker
serves one request at a time anyway, and ``transport.write`` sends at once when the socket
can take it, so each chunk leaves as soon as the handler yields it.

One :class:`Connection` per socket; requests are answered inline, in arrival order, from the
parser's ``on_message_complete`` callback (pipelined requests included). No framework, no task
or thread per request: the cost per request is the parser plus one ``transport.write``.
With batching on, connections are :class:`.batching.BatchingConnection`, which hands
invocations to the worker's batcher and answers them when their batch has run.
"""

from __future__ import annotations

import asyncio
import http
import socket
import time
from collections.abc import Callable, Iterator

import httptools

from modelyard.runtime.serving.acceptor import Acceptor
from modelyard.runtime.serving.app import Response, error
from modelyard.runtime.serving.streams import (
    STREAM_ERROR_TRAILER,
    StreamFailed,
    chunk_frame,
    last_frame,
)

Handler = Callable[[bytes, bytes, dict[bytes, bytes], bytes], Response]

_PHRASES = {s.value: s.phrase.encode() for s in http.HTTPStatus}


class HttpServer:
    """Serves ``handler`` on an already-listening socket; tracks connections for draining."""

    def __init__(
        self,
        handler: Handler,
        max_body: int,
        max_body_mb: int,
        connection: Callable[[HttpServer], Connection] | None = None,
    ) -> None:
        self.handler = handler
        self.max_body = max_body
        self.max_body_mb = max_body_mb
        # what each accepted socket gets: Connection, or one that batches (see .batching)
        self.connection = connection or Connection
        self.connections: set[Connection] = set()
        self.draining = False
        self.acceptor: Acceptor | None = None

    def start(self, sock: socket.socket, exclusive: bool) -> None:
        """Accept connections on ``sock``, shared with the instance's other workers; see
        :mod:`.acceptor` for ``exclusive``. Call it on the running event loop."""
        self.acceptor = Acceptor(sock, lambda: self.connection(self), exclusive)

    def hold(self, connection: Connection) -> None:
        """``connection`` has a request coming: let the other workers take new connections."""
        if self.acceptor is not None:
            self.acceptor.hold(connection)

    def release(self, connection: Connection) -> None:
        """``connection`` has no request in hand any more."""
        if self.acceptor is not None:
            self.acceptor.release(connection)

    async def drain(self, timeout: float) -> None:
        """Stop accepting, close idle connections, let busy ones finish (up to ``timeout``)."""
        self.draining = True
        if self.acceptor is not None:
            self.acceptor.close()
        for connection in list(self.connections):
            connection.close_if_idle()
        deadline = time.monotonic() + timeout
        while self.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for connection in list(self.connections):
            connection.abort()


class Connection(asyncio.Protocol):
    """One client connection: parser callbacks build the request, the handler answers it."""

    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.busy = False  # a request is partly received
        self.refused = False  # answered early (413): ignore the rest of the stream
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: dict[bytes, bytes] = {}
        self.chunks: list[bytes] = []
        self.size = 0

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server.connections.add(self)
        self.server.hold(self)  # its first request is on its way

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.server.release(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._refuse(error(400, "Protocol upgrades are not supported"))
        except httptools.HttpParserError as e:
            if self.refused and self.transport is not None:
                self.transport.close()
            self._refuse(error(400, f"Malformed HTTP request: {e}"))
        if self.busy:  # a request arriving in pieces (one that came whole is answered already)
            self.server.hold(self)

    # -- httptools callbacks --------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.busy = True
        self._reset()

    def on_url(self, url: bytes) -> None:
        self.url += url  # may arrive in pieces

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.lower()] = value

    def on_headers_complete(self) -> None:
        length = self.headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.server.max_body:
            # Read (and drop) the announced body before closing: a client still sending
            # would otherwise get a reset instead of the 413.
            self._refuse(self._too_large(), linger=True)
        elif self.headers.get(b"expect", b"").lower() == b"100-continue" and self.transport:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, chunk: bytes) -> None:
        if self.refused:
            return
        self.size += len(chunk)
        if self.size > self.server.max_body:  # chunked: no announced end to wait for
            self._refuse(self._too_large())
            return
        self.chunks.append(chunk)

    def on_message_complete(self) -> None:
        if self.refused or self.transport is None:
            if self.transport is not None:
                self.transport.close()  # the lingering refusal has read its body
            return
        body = self.chunks[0] if len(self.chunks) == 1 else b"".join(self.chunks)
        method = self.parser.get_method()
        response = self.server.handler(method, self.url, self.headers, body)
        keep_alive = self.parser.should_keep_alive() and not self.server.draining
        self.busy = False
        self._send(response, keep_alive)
        self.server.release(self)

    # -- writing --------------------------------------------------------------------------

    def _send(self, response: Response, keep_alive: bool, close: bool = True) -> None:
        if self.transport is None:
            return
        status, content_type, body, extra, stream = response
        head = [b"HTTP/1.1 %d %s\r\n" % (status, _PHRASES.get(status, b"Unknown"))]
        if stream is None:
            head.append(b"Content-Type: %s\r\nContent-Length: %d\r\n" % (content_type, len(body)))
        else:
            head.append(b"Content-Type: %s\r\nTransfer-Encoding: chunked\r\nTrailer: %s\r\n"
                        % (content_type, STREAM_ERROR_TRAILER))
        head.extend(b"%s: %s\r\n" % pair for pair in extra)
        if not keep_alive:
            head.append(b"Connection: close\r\n")
        head.append(b"\r\n")
        self.transport.write(b"".join(head) + body)
        if stream is not None:
            self._send_chunks(stream)
        if not keep_alive and close and self.transport is not None:
            self.transport.close()

    def _send_chunks(self, stream: Iterator[bytes]) -> None:
        failure = None
        try:
            for chunk in stream:
                if self.transport is None or self.transport.is_closing():  # the client left
                    return
                if chunk:  # an empty chunk would end the body
                    self.transport.write(chunk_frame(chunk))
        except StreamFailed as e:
            failure = e.message
        if self.transport is not None:
            self.transport.write(last_frame(failure))

    def _too_large(self) -> Response:
        return error(413, f"The request body is larger than {self.server.max_body_mb} MB")

    def _refuse(self, response: Response, linger: bool = False) -> None:
        """Answer now; close now, or once the request's body is read when ``linger``."""
        if self.refused:
            return
        self.refused = True
        self.busy = False
        self._send(response, keep_alive=False, close=not linger)
        self.server.release(self)

    def close_if_idle(self) -> None:
        """Close the connection unless a request is partly received (drain)."""
        if not self.busy and self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        """Drop the connection now (drain timed out)."""
        if self.transport is not None:
            self.transport.abort()
