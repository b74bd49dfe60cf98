"""Request decoding and response encoding shared by the default handlers.

The hot path is numpy on the raw bytes: a CSV body is parsed by ``np.fromstring`` in one call
(about 6 µs for a 30-feature row), never through ``csv``, pandas or a ``str`` copy. The slow,
field-by-field parser runs only when the fast one cannot vouch for its result (empty fields,
ragged rows, stray text), and turns what it cannot read into :class:`UnsupportedContentType`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np

from modelyard.runtime.serving.errors import UnsupportedAccept, UnsupportedContentType

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
    rows = text.count(b"\n") + 1
    fields = text.count(b",") + rows  # values in the whole body: each row has commas + 1
    if len(text) >= _BULK_BYTES:
        bulk = _parse_csv_in_bulk(text, dtype, rows, fields)
        if bulk is not None:
            return bulk
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


#: bodies from this size (batch transform's MultiRecord payloads) are parsed by pandas' C
#: reader, about 9× faster than ``np.fromstring`` on a 6 MB body; below it, pandas' fixed cost
#: per call would dominate a one-row request
_BULK_BYTES = 256 * 1024


def _parse_csv_in_bulk(text: bytes, dtype: type, rows: int, fields: int) -> np.ndarray | None:
    """pandas' C parser, or None (not installed, or not a plain rectangular numeric CSV)."""
    try:
        import pandas as pd
    except ImportError:
        return None
    try:
        frame = pd.read_csv(io.BytesIO(text), header=None, dtype=dtype, engine="c",
                            quoting=3, skip_blank_lines=False)  # 3: QUOTE_NONE
    except (ValueError, TypeError):
        return None  # the careful parser says what is wrong
    array = frame.to_numpy()
    # pandas pads short rows with NaN: only a rectangle with every comma accounted for counts
    if array.shape[0] != rows or array.size != fields:
        return None
    return array


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
        return array_to_csv(array).encode(), kind
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue(), kind


def array_to_csv(array: np.ndarray) -> str:
    """One line per row (``\\n`` terminated), a row's values comma-joined, shortest reprs."""
    if array.ndim == 0:
        return f"{array}\n"
    if array.ndim == 1:
        return "\n".join(map(str, array)) + "\n"
    return "".join(",".join(map(str, row)) + "\n" for row in array.reshape(len(array), -1))
