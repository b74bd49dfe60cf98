"""Input objects as request bodies: gunzip, split into records, pack records into batches.

Everything streams: an object is read in pieces no larger than the payload limit, so a
multi-gigabyte input never sits in memory. Three ways to make batches, fastest first:

- :func:`line_chunks` (SplitType Line, MultiRecord, no per-record work): each batch is the
  longest run of whole lines that fits the limit, cut from the stream without looking at the
  lines one by one;
- :func:`pack` over :func:`lines` (SingleRecord, or filters and joins that need each record);
- :func:`whole_object` (SplitType None): the object is one request.
"""

from __future__ import annotations

import dataclasses
import gzip
from collections.abc import Callable, Iterable, Iterator
from typing import BinaryIO

from modelyard.runtime.failures import ClientError

NEWLINE = b"\n"


@dataclasses.dataclass(frozen=True)
class Batch:
    """One request body and what it holds."""

    body: bytes
    records: int
    inputs: tuple[bytes, ...] = ()  # the original records, kept only when they are joined


class RecordTooLarge(ClientError):
    """One record is bigger than MaxPayloadInMB, so no request can carry it."""

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"a single record is larger than MaxPayloadInMB ({limit // (1024 * 1024)} MB); "
            "raise MaxPayloadInMB or split the input into smaller records"
        )


def open_input(stream: BinaryIO, compression: str) -> BinaryIO:
    """The object's bytes, gunzipped on the fly when CompressionType is Gzip."""
    if compression == "Gzip":
        return gzip.GzipFile(fileobj=stream, mode="rb")  # type: ignore[return-value]
    return stream


def read_up_to(stream: BinaryIO, size: int) -> bytes:
    """``size`` bytes, fewer only at the end (a network stream may return short reads)."""
    parts, wanted = [], size
    while wanted > 0:
        part = stream.read(wanted)
        if not part:
            break
        parts.append(part)
        wanted -= len(part)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def whole_object(stream: BinaryIO, limit: int) -> Iterator[Batch]:
    """SplitType None: the object as one request; RecordTooLarge past the limit."""
    body = read_up_to(stream, limit + 1)
    if len(body) > limit:
        raise RecordTooLarge(limit)
    if body:
        yield Batch(body, 1)


def line_chunks(stream: BinaryIO, limit: int) -> Iterator[Batch]:
    """MultiRecord over lines: the longest run of whole lines that fits ``limit`` bytes."""
    pending = b""
    while True:
        buffer = pending + read_up_to(stream, limit + 1 - len(pending))
        if len(buffer) <= limit:  # the end of the object
            body = buffer.rstrip(NEWLINE)
            if body:
                yield Batch(body, body.count(NEWLINE) + 1)
            return
        # the separator may sit just past the limit: the lines before it still fit
        cut = buffer.rfind(NEWLINE, 0, limit + 1)
        if cut < 0:
            raise RecordTooLarge(limit)
        body, pending = buffer[:cut].rstrip(NEWLINE), buffer[cut + 1 :]
        if body:
            yield Batch(body, body.count(NEWLINE) + 1)


def lines(stream: BinaryIO) -> Iterator[bytes]:
    """The records of SplitType Line, without their line ends; blank lines are skipped."""
    for raw in stream:
        record = raw.rstrip(b"\r\n")
        if record:
            yield record


def pack(
    records: Iterable[bytes],
    limit: int,
    single: bool,
    transform: Callable[[bytes], bytes] | None = None,
    keep_inputs: bool = False,
) -> Iterator[Batch]:
    """Batches of records joined with newlines: one each (``single``) or as many as fit.

    ``transform`` (the InputFilter) turns each record into what is sent; ``keep_inputs`` keeps
    the original records beside each batch for JoinSource=Input.
    """
    bodies: list[bytes] = []
    inputs: list[bytes] = []
    size = 0
    for record in records:
        body = transform(record) if transform else record
        if len(body) > limit:
            raise RecordTooLarge(limit)
        if bodies and (single or size + 1 + len(body) > limit):
            yield _batch(bodies, inputs)
            bodies, inputs, size = [], [], 0
        size += len(body) + (1 if bodies else 0)
        bodies.append(body)
        if keep_inputs:
            inputs.append(record)
    if bodies:
        yield _batch(bodies, inputs)


def _batch(bodies: list[bytes], inputs: list[bytes]) -> Batch:
    return Batch(NEWLINE.join(bodies), len(bodies), tuple(inputs))
