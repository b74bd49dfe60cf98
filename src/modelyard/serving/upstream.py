"""A minimal HTTP/1.1 client for the router's calls to model-server instances.

Only what the instances speak: one request at a time per connection, responses framed by
``Content-Length`` or chunked (a streaming handler, see
:mod:`modelyard.runtime.serving.streams`), connections kept alive and reused. A connection found closed while idle is
replaced before use; one that fails after the request was sent raises :class:`UpstreamClosed`
and is never retried, because the model may already have run.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from modelyard.runtime.serving.streams import failure_of

_MAX_HEADER = 64 * 1024
_READ_ERRORS = (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError)

#: receives the status and lower-cased headers of a streamed answer, before any chunk
OnHead = Callable[[int, dict[bytes, bytes]], Awaitable[None]]
#: receives each chunk of a streamed answer as it arrives
OnChunk = Callable[[bytes], Awaitable[None]]


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
        """Send one request; the status, lower-cased headers and body of the answer.

        A chunked answer is joined; one whose stream failed midway is the 500 it would have
        been, with the model's error as its body.
        """
        self.in_flight += 1
        try:
            reader, writer = await self._connection()
            try:
                writer.write(_request(path, headers, body))
                status, reply_headers, reply = await _read_response(reader)
            except _READ_ERRORS as e:
                writer.close()
                raise UpstreamClosed(str(e)) from e
            self._release(reader, writer, reply_headers)
            return status, reply_headers, reply
        finally:
            self.in_flight -= 1

    async def stream(self, path: bytes, headers: list[tuple[bytes, bytes]], body: bytes,
                     on_head: OnHead, on_chunk: OnChunk) -> str | None:
        """Send one request and hand the answer on as it arrives: ``on_head`` once, then
        ``on_chunk`` per chunk (the whole body once when it is not chunked). Returns the model's
        error when its stream failed midway, else None.

        UpstreamClosed when the instance fails before the end; whatever the callbacks raise
        (the caller's client left) propagates, and the connection is not reused.
        """
        self.in_flight += 1
        try:
            reader, writer = await self._connection()
            try:
                writer.write(_request(path, headers, body))
                status, reply_headers = await _read_head(reader)
            except _READ_ERRORS as e:
                writer.close()
                raise UpstreamClosed(str(e)) from e
            try:
                await on_head(status, reply_headers)
                trailers = await _relay_body(reader, reply_headers, on_chunk)
            except _READ_ERRORS as e:
                writer.close()
                raise UpstreamClosed(str(e)) from e
            except BaseException:
                writer.close()
                raise
            self._release(reader, writer, reply_headers)
            return failure_of(trailers)
        finally:
            self.in_flight -= 1

    def _release(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 reply_headers: dict[bytes, bytes]) -> None:
        if reply_headers.get(b"connection", b"").lower() == b"close":
            writer.close()
        else:
            self._idle.append((reader, writer))

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


def _request(path: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> bytes:
    head = [b"POST ", path, b" HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-length: ",
            str(len(body)).encode(), b"\r\n"]
    for name, value in headers:
        head += [name, b": ", value, b"\r\n"]
    head.append(b"\r\n")
    return b"".join(head) + body


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes], bytes]:
    status, headers = await _read_head(reader)
    if not _chunked(headers):
        length = int(headers.get(b"content-length", b"0"))
        return status, headers, await reader.readexactly(length) if length else b""
    parts: list[bytes] = []

    async def keep(chunk: bytes) -> None:
        parts.append(chunk)

    failure = failure_of(await _relay_chunks(reader, keep))
    if failure is not None:
        return 500, headers, failure.encode("utf-8")
    return status, headers, b"".join(parts)


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    return status, _parse_fields(lines[1:])


def _parse_fields(lines: list[bytes]) -> dict[bytes, bytes]:
    fields: dict[bytes, bytes] = {}
    for line in lines:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    return fields


def _chunked(headers: dict[bytes, bytes]) -> bool:
    return b"chunked" in headers.get(b"transfer-encoding", b"").lower()


async def _relay_body(reader: asyncio.StreamReader, headers: dict[bytes, bytes],
                      on_chunk: OnChunk) -> dict[bytes, bytes]:
    """Pass the body on (chunk by chunk when chunked); the trailers."""
    if _chunked(headers):
        return await _relay_chunks(reader, on_chunk)
    length = int(headers.get(b"content-length", b"0"))
    if length:
        await on_chunk(await reader.readexactly(length))
    return {}


async def _relay_chunks(reader: asyncio.StreamReader, on_chunk: OnChunk) -> dict[bytes, bytes]:
    """Read a chunked body, handing each chunk on; the trailers that end it."""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        size = int(size_line.split(b";", 1)[0].strip(), 16)
        if size == 0:
            break
        data = await reader.readexactly(size + 2)  # the chunk and its CRLF
        await on_chunk(data[:-2])
    trailer_lines = []
    while (line := await reader.readuntil(b"\r\n")) != b"\r\n":
        trailer_lines.append(line[:-2])
    return _parse_fields(trailer_lines)
