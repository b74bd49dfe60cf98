"""A minimal HTTP/1.1 client for the router's calls to model-server instances.

Only what the instances speak: one request at a time per connection, responses framed by
``Content-Length``, connections kept alive and reused. A connection found closed while idle is
replaced before use; one that fails after the request was sent raises :class:`UpstreamClosed`
and is never retried, because the model may already have run.
"""

from __future__ import annotations

import asyncio

_MAX_HEADER = 64 * 1024


class UpstreamClosed(ConnectionError):
    """The instance closed the connection (or died) before answering."""


class Upstream:
    """Kept-alive connections to one instance on 127.0.0.1:port."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.in_flight = 0
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def post(
        self, path: bytes, headers: list[tuple[bytes, bytes]], body: bytes
    ) -> tuple[int, dict[bytes, bytes], bytes]:
        """Send one request; the status, lower-cased headers and body of the answer."""
        self.in_flight += 1
        try:
            reader, writer = await self._connection()
            head = [b"POST ", path, b" HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: ",
                    str(len(body)).encode(), b"\r\n"]
            for name, value in headers:
                head += [name, b": ", value, b"\r\n"]
            head.append(b"\r\n")
            try:
                writer.write(b"".join(head) + body)
                status, reply_headers, reply = await _read_response(reader)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError) as e:
                writer.close()
                raise UpstreamClosed(str(e)) from e
            if reply_headers.get(b"connection", b"").lower() == b"close":
                writer.close()
            else:
                self._idle.append((reader, writer))
            return status, reply_headers, reply
        finally:
            self.in_flight -= 1

    async def _connection(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        while self._idle:
            reader, writer = self._idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer
            writer.close()
        try:
            return await asyncio.open_connection("127.0.0.1", self.port, limit=_MAX_HEADER)
        except OSError as e:
            raise UpstreamClosed(f"cannot connect to 127.0.0.1:{self.port}: {e}") from e

    def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    status = int(parts[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get(b"content-length", b"0"))
    body = await reader.readexactly(length) if length else b""
    return status, headers, body
