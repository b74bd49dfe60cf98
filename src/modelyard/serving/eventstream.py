"""The AWS event-stream binary framing (``application/vnd.amazon.eventstream``), encoding side.

One message is::

    prelude   total length (uint32 BE) | headers length (uint32 BE) | CRC32 of those 8 bytes
    headers   per header: name length (uint8) | name | type 7 = string | value length (uint16 BE) | value
    payload   raw bytes
    trailer   CRC32 of everything before it (uint32 BE)

botocore's ``EventStreamBuffer`` decodes exactly this; the tests check our frames with it. Only
string headers are written, because events and exceptions of the runtime API need no others.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Sequence

CONTENT_TYPE = "application/vnd.amazon.eventstream"
_STRING = 7
_PRELUDE = struct.Struct(">II")
_CRC = struct.Struct(">I")


def message(headers: Sequence[tuple[str, str]], payload: bytes) -> bytes:
    """One framed message with string ``headers`` and ``payload``."""
    encoded = _headers(headers)
    total = _PRELUDE.size + _CRC.size + len(encoded) + len(payload) + _CRC.size
    prelude = _PRELUDE.pack(total, len(encoded))
    body = prelude + _CRC.pack(zlib.crc32(prelude)) + encoded + payload
    return body + _CRC.pack(zlib.crc32(body))


def event(event_type: str, payload: bytes, content_type: str = "application/octet-stream") -> bytes:
    """An event message (``:message-type`` event) of the stream's ``event_type`` member."""
    return message(
        [(":event-type", event_type), (":content-type", content_type), (":message-type", "event")],
        payload,
    )


def exception(exception_type: str, members: dict[str, str]) -> bytes:
    """A modeled exception ending the stream, its members as a JSON payload (rest-json)."""
    return message(
        [(":exception-type", exception_type), (":content-type", "application/json"),
         (":message-type", "exception")],
        json.dumps(members).encode("utf-8"),
    )


def payload_part(data: bytes) -> bytes:
    """``PayloadPart{Bytes}`` of InvokeEndpointWithResponseStream (``Bytes`` is the payload)."""
    return event("PayloadPart", data)


def _headers(headers: Sequence[tuple[str, str]]) -> bytes:
    out = bytearray()
    for name, value in headers:
        raw_name, raw_value = name.encode("utf-8"), value.encode("utf-8")
        out += struct.pack(">B", len(raw_name)) + raw_name
        out += struct.pack(">BH", _STRING, len(raw_value)) + raw_value
    return bytes(out)
