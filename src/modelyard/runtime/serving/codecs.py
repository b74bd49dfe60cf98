"""Request decoding and response encoding shared by the default handlers.

The hot path is numpy on the raw bytes: a CSV body is parsed by ``np.fromstring`` in one call
(about 6 µs for a 30-feature row), never through ``csv``, pandas or a ``str`` copy; a body of
256 KB or more (a batch transform payload) by Arrow's CSV reader. The slow, field-by-field
parser runs only when the fast ones cannot vouch for their result (empty fields, ragged rows,
stray text), and turns what it cannot read into :class:`UnsupportedContentType`. CSV answers
of float32 predictions are written by :func:`float32_text`, numpy's ``str`` for a whole array.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelyard.runtime.serving.errors import UnsupportedAccept, UnsupportedContentType
from modelyard.runtime.serving.float_text import float32_text

JSON = "application/json"
CSV = "text/csv"
NPY = "application/x-npy"
JSONLINES = "application/jsonlines"
ANY = "*/*"


def media_type(header: str | None) -> str:
    """``text/csv; charset=utf-8`` → ``text/csv`` (empty when absent)."""
    if not header:
        return ""
    return header.split(";", 1)[0].strip().lower()


def choose_accept(accept: str, supported: Sequence[str]) -> str:
    """The first type of the Accept list that is ``supported``; raises UnsupportedAccept.

    ``accept`` has already had ``*/*`` and absence replaced by the instance's default.
    """
    for part in accept.split(","):
        wanted = media_type(part)
        if wanted in supported:
            return wanted
        if wanted == ANY:
            return supported[0]
    raise UnsupportedAccept(accept, list(supported))


def parse_csv(body: bytes, dtype: type = np.float32) -> np.ndarray:
    """A 2-D array from CSV rows without header; UnsupportedContentType when unreadable."""
    text = body.strip()
    if not text:
        raise UnsupportedContentType("The CSV body holds no rows")
    if len(text) >= _BULK_BYTES:
        bulk = _parse_csv_in_bulk(text, dtype)
        if bulk is not None:
            return bulk
    rows = text.count(b"\n") + 1
    fields = text.count(b",") + rows  # values in the whole body: each row has commas + 1
    flat = text if rows == 1 else text.replace(b"\n", b",")
    values: np.ndarray | None
    try:
        values = np.fromstring(flat, dtype=dtype, sep=",")
    except ValueError:
        values = None  # stray text or an empty field: let the careful parser say which
    if values is not None and values.size == fields and fields % rows == 0:
        width = fields // rows
        if rows == 1 or _rectangular(text, width - 1):
            return values.reshape(rows, width)
    return _parse_csv_slowly(text, dtype)


#: bodies from this size (batch transform's MultiRecord payloads) are parsed by Arrow's CSV
#: reader, several times faster than ``np.fromstring`` on a 6 MB body (and as fast as pandas'
#: C reader, whose import costs each worker 0.35 s more CPU); below it, the reader's fixed
#: cost per call would dominate a one-row request
_BULK_BYTES = 256 * 1024
_NEWLINE, _COMMA = ord("\n"), ord(",")


def _parse_csv_in_bulk(text: bytes, dtype: type) -> np.ndarray | None:
    """Arrow's CSV reader, or None (pyarrow not installed, or not a plain rectangular numeric
    CSV: the other parsers say what is wrong)."""
    try:
        import pyarrow as pa  # type: ignore[import-untyped]
        import pyarrow.csv as arrow_csv  # type: ignore[import-untyped]
    except ImportError:
        return None
    if not np.issubdtype(dtype, np.floating):  # missing values must be NaN
        return None
    first_end = text.find(b"\n")
    first_line = text if first_end < 0 else text[:first_end]
    # Arrow refuses a row with more or fewer fields than the first
    names = [f"c{i}" for i in range(first_line.count(b",") + 1)]
    try:
        table = arrow_csv.read_csv(
            pa.py_buffer(text),
            # one block: one chunk per column
            read_options=arrow_csv.ReadOptions(column_names=names, use_threads=False,
                                               block_size=len(text) + 1),
            parse_options=arrow_csv.ParseOptions(quote_char=False, ignore_empty_lines=False),
            # an empty field is a missing value (NaN) as in the other parsers; text is refused
            convert_options=arrow_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.from_numpy_dtype(np.dtype(dtype))),
                null_values=[""], strings_can_be_null=False,
            ),
        )
    except (pa.ArrowException, ValueError, TypeError):
        return None
    if any(column.null_count for column in table.columns) and not _every_field_read(text, table):
        return None
    return _table_to_array(table, dtype)


def _every_field_read(text: bytes, table: Any) -> bool:
    """Whether the table has a value for every field of the text: a blank line reads as a row
    of missing values, where the careful parser refuses it (as a row with one field)."""
    # numpy counts a 6 MB body's separators in about 1 ms, ten times faster than bytes.count
    codes = np.frombuffer(text, np.uint8)
    rows = int(np.count_nonzero(codes == _NEWLINE)) + 1
    fields = int(np.count_nonzero(codes == _COMMA)) + rows  # each row has commas + 1 values
    return table.num_rows == rows and rows * table.num_columns == fields


def _table_to_array(table: Any, dtype: type) -> np.ndarray:
    """The columns of an Arrow table of floats side by side, missing values as NaN.

    Arrow's own ``to_numpy`` imports pandas (0.35 s of CPU, for each worker), so the column
    buffers are read directly.
    """
    out = np.empty((table.num_rows, table.num_columns), dtype)
    for j, column in enumerate(table.columns):
        start = 0
        for chunk in column.chunks:
            validity, data = chunk.buffers()
            end = start + len(chunk)
            out[start:end, j] = np.frombuffer(data, dtype, len(chunk), chunk.offset * out.itemsize)
            if chunk.null_count:
                bits = np.unpackbits(np.frombuffer(validity, np.uint8), bitorder="little")
                out[start:end, j][bits[chunk.offset : chunk.offset + len(chunk)] == 0] = np.nan
            start = end
    return out


def _rectangular(text: bytes, commas: int) -> bool:
    return all(line.count(b",") == commas for line in text.split(b"\n"))


def _parse_csv_slowly(text: bytes, dtype: type) -> np.ndarray:
    """Field by field: empty fields are missing values (NaN); anything else must be a number."""
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        try:
            rows.append([float(f) if f.strip() else np.nan for f in line.split(b",")])
        except ValueError as e:
            raise UnsupportedContentType(f"CSV line {number} is not numeric: {e}") from None
    if len({len(row) for row in rows}) != 1:
        raise UnsupportedContentType("CSV rows have different numbers of fields")
    return np.asarray(rows, dtype=dtype)


def decode(body: bytes, content_type: str, dtype: type | None = None) -> np.ndarray:
    """The toolkit's default decoder: JSON, CSV or NPY to an array (cast to ``dtype``)."""
    kind = media_type(content_type)
    try:
        if kind == JSON:
            array = np.asarray(json.loads(body))
        elif kind == CSV:
            array = parse_csv(body, dtype or np.float64)
        elif kind == NPY:
            array = np.load(io.BytesIO(body), allow_pickle=False)
        else:
            supported = ", ".join([JSON, CSV, NPY])
            raise UnsupportedContentType(
                f"Content type {content_type!r} is not supported; use {supported}"
            )
    except (ValueError, TypeError, OSError) as e:
        raise UnsupportedContentType(f"Cannot decode the {kind} body: {e}") from None
    return array if dtype is None else array.astype(dtype, copy=False)


ENCODINGS = (JSON, CSV, NPY)


def encode(prediction: Any, accept: str) -> tuple[bytes, str]:
    """The toolkit's default encoder: the first of JSON, CSV, NPY the Accept list names."""
    kind = choose_accept(accept, ENCODINGS)
    if kind == JSON:
        value = prediction.tolist() if isinstance(prediction, np.ndarray) else prediction
        return json.dumps(value).encode(), kind
    array = np.asarray(prediction)
    if kind == CSV:
        return csv_bytes(array), kind
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue(), kind


def array_to_csv(array: np.ndarray) -> str:
    """One line per row (``\\n`` terminated), a row's values comma-joined, shortest reprs."""
    return csv_bytes(array).decode()


#: from this many values on, :func:`float32_text` beats ``str()`` per value: its fixed cost
#: (about 0.7 ms) would otherwise be most of a one-row request's time
FLOAT32_TEXT_MIN = 2048


def csv_bytes(array: np.ndarray) -> bytes:
    """:func:`array_to_csv`, encoded; large float32 arrays take :func:`float32_text`."""
    if array.ndim == 0:
        return f"{array}\n".encode()
    rows = array.reshape(len(array), -1) if array.ndim > 1 else array
    if array.dtype == np.float32 and array.size >= FLOAT32_TEXT_MIN:
        return float32_text(rows)
    if array.ndim == 1:
        return ("\n".join(map(str, array)) + "\n").encode()
    return "".join(",".join(map(str, row)) + "\n" for row in rows).encode()
