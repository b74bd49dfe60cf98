"""Streamed answers: a handler that returns an iterator is answered chunk by chunk.

When ``predict_fn`` (or ``transform_fn``, or a user ``output_fn``) returns an iterator — a
generator yielding ``bytes`` or ``str`` is the usual case — the model server sends each item as
one HTTP/1.1 chunk as soon as it is produced. This is what InvokeEndpointWithResponseStream
relays to its caller; a plain InvokeEndpoint gets the chunks joined.

A failure after the status line has gone out cannot change the status any more, so it travels
in the trailer :data:`STREAM_ERROR_TRAILER` (the message percent-encoded, since a traceback
spans lines). A chunked answer without that trailer ended well.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, unquote

#: the trailer that carries a mid-stream failure (lower case, as parsers store names)
STREAM_ERROR_TRAILER = b"x-modelyard-stream-error"
_LAST = b"0\r\n\r\n"
_MAX_MESSAGE = 8192


class StreamFailed(Exception):
    """The handler's iterator raised, or yielded something that is not bytes or str."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def is_stream(value: Any) -> bool:
    """True for what the server streams: iterators (generators), never str, bytes or arrays."""
    return isinstance(value, Iterator)


def encoded_chunks(items: Iterator[Any]) -> Iterator[bytes]:
    """The items as bytes (str as UTF-8); any failure becomes :class:`StreamFailed`."""
    try:
        for item in items:
            if isinstance(item, str):
                yield item.encode("utf-8")
            elif isinstance(item, (bytes, bytearray, memoryview)):
                yield bytes(item)
            else:
                raise TypeError(f"the handler's stream yielded a {type(item).__name__}; yield bytes or str")
    except Exception as e:
        text = traceback.format_exc()
        print(text, file=sys.stderr, end="")  # into the instance's log as well
        raise StreamFailed(text) from e


def chunk_frame(data: bytes) -> bytes:
    """One chunk of a chunked body (never called with empty data: that would end the body)."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def last_frame(failure: str | None) -> bytes:
    """The terminating chunk, with the error trailer when the stream failed."""
    if failure is None:
        return _LAST
    # the tail of a long traceback says what failed; the reader's header limit is 64 KiB
    value = quote(failure[-_MAX_MESSAGE:], safe=" /:,.()'\"=-_").encode("ascii")
    return b"0\r\n%s: %s\r\n\r\n" % (STREAM_ERROR_TRAILER, value)


def failure_of(trailers: dict[bytes, bytes]) -> str | None:
    """The model's error message from a chunked answer's trailers (None when it ended well)."""
    value = trailers.get(STREAM_ERROR_TRAILER)
    return None if value is None else unquote(value.decode("ascii", "replace"))
