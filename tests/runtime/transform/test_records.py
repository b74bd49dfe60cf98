"""The bulk MultiRecord batches (``line_chunks``) against the record-by-record ones."""

from __future__ import annotations

import gzip
import io
import random
from collections.abc import Iterator

import pytest

from modelyard.runtime.transform import records
from modelyard.runtime.transform.records import RecordTooLarge


class Trickle(io.RawIOBase):
    """A stream that answers reads a few bytes at a time and has no ``readinto`` of its own
    that reads ahead: what a network stream may do."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.position = 0

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        size = len(self.data) if size < 0 else min(size, 7)
        part = self.data[self.position : self.position + size]
        self.position += len(part)
        return part

    readinto = None  # type: ignore[assignment]

    def __iter__(self) -> Iterator[bytes]:
        return iter(io.BytesIO(self.data[self.position :]).readlines())

    def readline(self, size: int | None = -1) -> bytes:
        end = self.data.find(b"\n", self.position)
        end = len(self.data) if end < 0 else end + 1
        line = self.data[self.position : end]
        self.position = end
        return line


def bulk(data: bytes, limit: int) -> list[tuple[bytes, int]]:
    return [(bytes(b.body), b.records) for b in records.line_chunks(io.BytesIO(data), limit)]


def by_record(data: bytes, limit: int) -> list[tuple[bytes, int]]:
    batches = records.pack(records.lines(io.BytesIO(data)), limit, single=False)
    return [(bytes(b.body), b.records) for b in batches]


def random_lines(rng: random.Random, count: int, blank: float = 0.0, crlf: float = 0.0) -> bytes:
    out = []
    for _ in range(count):
        if rng.random() < blank:
            out.append(b"\n")
            continue
        fields = (f"{rng.uniform(-9, 9):.{rng.randint(0, 6)}f}" for _ in range(rng.randint(1, 6)))
        row = ",".join(fields)
        out.append(row.encode() + (b"\r\n" if rng.random() < crlf else b"\n"))
    return b"".join(out)


@pytest.mark.parametrize("seed", range(40))
def test_bulk_batches_are_the_record_batches(seed: int) -> None:
    rng = random.Random(seed)
    data = random_lines(rng, rng.randint(0, 400), blank=rng.choice([0, 0, 0.02]),
                        crlf=rng.choice([0, 0, 0.05, 1]))
    if rng.random() < 0.3:
        data = data.rstrip(b"\r\n")  # no line end after the last record
    limit = rng.randint(60, 2000)
    assert bulk(data, limit) == by_record(data, limit)


def test_every_payload_boundary() -> None:
    data = b"".join(b"%d\n" % (10**n) for n in range(12)) * 3  # lines of 2 to 13 bytes
    expected_rows = data.count(b"\n")
    for limit in range(13, len(data) + 2):
        batches = bulk(data, limit)
        assert batches == by_record(data, limit), limit
        assert sum(n for _, n in batches) == expected_rows
        assert all(len(body) <= limit for body, _ in batches)


def test_blank_lines_and_crlf_take_the_record_path_from_there() -> None:
    head = b"".join(b"1,2,%d\n" % i for i in range(100))
    for tail in (b"\n\n3,4,5\n", b"3,4,5\r\n6,7,8\r\n", b"\n3,4\n", b"3,4\r", b"3,4\n\n"):
        data = head + tail
        for limit in (20, 64, 500, 10_000):
            assert bulk(data, limit) == by_record(data, limit), (tail, limit)
    assert bulk(b"\n\n\n", 10) == by_record(b"\n\n\n", 10) == []


def test_a_record_larger_than_the_limit_fails_after_the_batches_before_it() -> None:
    data = b"1,2\n3,4\n" + b"5," * 40 + b"6\n7,8\n"
    for make in (bulk, by_record):
        seen: list[tuple[bytes, int]] = []
        with pytest.raises(RecordTooLarge):
            seen.extend(make(data, 16))
    got = []
    with pytest.raises(RecordTooLarge):
        for batch in records.line_chunks(io.BytesIO(data), 16):
            got.append(bytes(batch.body))
    assert got == [b"1,2\n3,4"]


def test_gzip_and_short_reads_give_the_same_batches() -> None:
    data = random_lines(random.Random(7), 3000)
    expected = by_record(data, 4096)
    gzipped = records.open_input(io.BytesIO(gzip.compress(data)), "Gzip")
    assert [(bytes(b.body), b.records) for b in records.line_chunks(gzipped, 4096)] == expected
    trickle = [(bytes(b.body), b.records) for b in records.line_chunks(Trickle(data), 4096)]
    assert trickle == expected
    crlf = data.replace(b"\n", b"\r\n")
    crlf_batches = records.line_chunks(Trickle(crlf), 4096)
    assert [(bytes(b.body), b.records) for b in crlf_batches] == expected
