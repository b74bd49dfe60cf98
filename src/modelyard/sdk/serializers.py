"""Serializers and deserializers for :class:`~modelyard.sdk.predictor.Predictor`, SageMaker-style.

A serializer turns Python data into a request body and names its ``CONTENT_TYPE``; a
deserializer turns a response body back and names what it ``ACCEPT``s.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any


class CSVSerializer:
    """Rows (lists, numpy arrays, DataFrames) as CSV lines; a flat sequence is one row."""

    CONTENT_TYPE = "text/csv"

    def serialize(self, data: Any) -> bytes:
        if isinstance(data, (str, bytes)):
            return data.encode() if isinstance(data, str) else data
        if hasattr(data, "to_numpy"):
            data = data.to_numpy()
        rows = data.tolist() if hasattr(data, "tolist") else list(data)
        if rows and not isinstance(rows[0], (list, tuple)):
            rows = [rows]
        return "\n".join(",".join(_number(v) for v in row) for row in rows).encode()


class JSONSerializer:
    """Any JSON-able value (numpy arrays become lists)."""

    CONTENT_TYPE = "application/json"

    def serialize(self, data: Any) -> bytes:
        if hasattr(data, "tolist"):
            data = data.tolist()
        return json.dumps(data).encode()


class NumpySerializer:
    """A numpy array as ``.npy`` bytes."""

    CONTENT_TYPE = "application/x-npy"

    def serialize(self, data: Any) -> bytes:
        import numpy as np

        buffer = io.BytesIO()
        np.save(buffer, np.asarray(data), allow_pickle=False)
        return buffer.getvalue()


class CSVDeserializer:
    """CSV lines as a list of rows of strings (as the SageMaker SDK's CSVDeserializer)."""

    ACCEPT = "text/csv"

    def deserialize(self, body: bytes, content_type: str) -> list[list[str]]:
        return [row for row in csv.reader(io.StringIO(body.decode())) if row]


class NumpyDeserializer:
    """A numeric answer (CSV lines, JSON or ``.npy``) as a float numpy array."""

    ACCEPT = "text/csv"

    def deserialize(self, body: bytes, content_type: str) -> Any:
        import numpy as np

        if content_type.startswith("application/x-npy"):
            return np.load(io.BytesIO(body), allow_pickle=False)
        if content_type.startswith("application/json"):
            return np.asarray(json.loads(body), dtype=float)
        rows = [[float(v) for v in line.split(",")] for line in body.decode().splitlines() if line]
        array = np.asarray(rows, dtype=float)
        return array[:, 0] if array.ndim == 2 and array.shape[1] == 1 else array


class JSONDeserializer:
    """A JSON answer as Python values."""

    ACCEPT = "application/json"

    def deserialize(self, body: bytes, content_type: str) -> Any:
        return json.loads(body)


class BytesDeserializer:
    """The raw answer."""

    ACCEPT = "*/*"

    def deserialize(self, body: bytes, content_type: str) -> bytes:
        return body


def _number(value: Any) -> str:
    return repr(float(value)) if isinstance(value, float) else str(value)
