"""Response shaping: turn a handler's plain dict into the wire form of an operation's output.

Handlers return Python values (``datetime``, ``bytes``, enums, ``None`` for "not set"); the
output shape from botocore decides what goes on the wire. :func:`shape_output` gives the JSON
object for awsJson 1.1 bodies; :func:`rest_json_response` also splits rest-json outputs into
status, headers and body (``InvokeEndpoint`` returns the model's raw bytes as its body).

``None`` is never emitted: botocore would hand ``null`` to callers that test ``"X" in resp``.
Members the shape does not declare are dropped (a handler may return a richer record); with
``strict=True`` they raise instead, so tests catch a misspelt member name.
"""

from __future__ import annotations

import base64
import enum
import json
import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from email.utils import format_datetime
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from modelyard.api.validation import parse_timestamp
from modelyard.core.errors import ModelyardError

__all__ = ["encode_json", "rest_json_response", "shape_output", "to_epoch"]


def shape_output(
    operation_model: OperationModel, data: Mapping[str, Any] | None, strict: bool = False
) -> dict[str, Any]:
    """Return ``data`` reduced and converted to the operation's output shape (a JSON object).

    Timestamps become epoch seconds rounded to milliseconds, blobs base64 text. ``strict``
    raises :class:`ModelyardError` (500) for unknown members and wrongly typed values.
    """
    shape = operation_model.output_shape
    if shape is None or data is None:
        if strict and data:
            raise ModelyardError(f"{operation_model.name} has no output members, got {list(data)}")
        return {}
    return _Shaper(strict).structure(shape, data, operation_model.name)


def encode_json(document: Mapping[str, Any]) -> bytes:
    """Serialise a shaped document compactly (what the service sends)."""
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def rest_json_response(
    operation_model: OperationModel, data: Mapping[str, Any] | None, strict: bool = False
) -> tuple[int, dict[str, str], bytes]:
    """Shape a rest-json output into ``(status, headers, body)``.

    Members bound to headers become header strings; a ``payload`` member is the whole body (raw
    bytes for a blob, JSON for a structure); the remaining members form a JSON body. Event-stream
    payloads are left to the caller, which must stream them.
    """
    status = int(operation_model.http.get("responseCode", 200))
    shape = operation_model.output_shape
    if shape is None or data is None:
        return status, {}, b""
    assert isinstance(shape, StructureShape)
    shaper = _Shaper(strict)
    headers: dict[str, str] = {}
    body_members: dict[str, Any] = {}
    for name, value in data.items():
        member = shape.members.get(name)
        if value is None or member is None:
            if member is None and strict:
                raise ModelyardError(f"Unknown member {name!r} in {operation_model.name}")
            continue
        if member.serialization.get("location") == "header":
            headers[member.serialization.get("name", name)] = shaper.header(member, value, name)
        else:
            body_members[name] = value
    payload_name = shape.serialization.get("payload")
    if payload_name is None:
        shaped = shaper.structure(shape, body_members, operation_model.name)
        return status, headers, encode_json(shaped)
    payload = body_members.get(payload_name)
    member = shape.members[payload_name]
    if payload is None:
        return status, headers, b""
    if member.type_name in ("blob", "string"):
        raw = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        return status, headers, raw
    return status, headers, encode_json(shaper.value(member, payload, payload_name))


def to_epoch(value: datetime | date | float | int | str) -> float:
    """Epoch seconds rounded to milliseconds; naive datetimes are taken as UTC."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return round(value.timestamp(), 3)
    if isinstance(value, date):
        return float(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    parsed = parse_timestamp(value)
    if parsed is None:
        raise ModelyardError(f"Not a timestamp: {value!r}")
    return round(parsed, 3)


class _Shaper:
    """One shaping pass; ``strict`` turns silent drops into errors."""

    def __init__(self, strict: bool) -> None:
        self.strict = strict

    def fail(self, where: str, why: str) -> None:
        if self.strict:
            raise ModelyardError(f"Cannot shape {where}: {why}")

    def value(self, shape: Shape, value: Any, where: str) -> Any:
        if isinstance(value, enum.Enum):
            value = value.value  # a plain Enum member is not JSON; a StrEnum's value is its text
        kind = shape.type_name
        if kind == "structure":
            assert isinstance(shape, StructureShape)
            if not isinstance(value, Mapping):
                return self.mismatch(value, where, "a mapping")
            return self.structure(shape, value, where)
        if kind == "list":
            assert isinstance(shape, ListShape)
            if isinstance(value, str | bytes | Mapping) or not hasattr(value, "__iter__"):
                return self.mismatch(value, where, "a list")
            return [self.value(shape.member, v, f"{where}[]") for v in value if v is not None]
        if kind == "map":
            assert isinstance(shape, MapShape)
            if not isinstance(value, Mapping):
                return self.mismatch(value, where, "a mapping")
            return {
                str(k): self.value(shape.value, v, f"{where}.{k}")
                for k, v in value.items()
                if v is not None
            }
        if kind == "timestamp":
            return self.timestamp(value, where)
        if kind == "blob":
            if isinstance(value, str):
                value = value.encode("utf-8")
            if not isinstance(value, bytes | bytearray):
                return self.mismatch(value, where, "bytes")
            return base64.b64encode(bytes(value)).decode("ascii")
        return self.scalar(kind, value, where)

    def structure(self, shape: StructureShape, data: Mapping[str, Any], where: str) -> dict:
        out: dict[str, Any] = {}
        for name, value in data.items():
            member = shape.members.get(name)
            if member is None:
                self.fail(f"{where}.{name}", f"not a member of {shape.name}")
                continue
            if value is None or member.serialization.get("eventstream"):
                continue
            out[name] = self.value(member, value, f"{where}.{name}")
        return out

    def scalar(self, kind: str, value: Any, where: str) -> Any:
        if kind == "string" and not isinstance(value, str):
            return self.mismatch(value, where, "a string")
        if kind in ("integer", "long"):
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            if isinstance(value, bool) or not isinstance(value, int):
                return self.mismatch(value, where, "an integer")
        if kind in ("float", "double"):
            if isinstance(value, bool) or not isinstance(value, int | float):
                return self.mismatch(value, where, "a number")
            value = float(value)
            if not math.isfinite(value):
                # Coral sends the strings "NaN"/"Infinity"; botocore turns them back into floats.
                return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
        if kind == "boolean" and not isinstance(value, bool):
            return self.mismatch(value, where, "a boolean")
        return value

    def timestamp(self, value: Any, where: str) -> Any:
        try:
            return to_epoch(value)
        except ModelyardError:
            return self.mismatch(value, where, "a timestamp")

    def mismatch(self, value: Any, where: str, expected: str) -> Any:
        self.fail(where, f"expected {expected}, got {type(value).__name__}")
        return value  # lenient mode: send what the handler gave rather than drop data

    def header(self, shape: Shape, value: Any, where: str) -> str:
        if isinstance(value, enum.Enum):
            value = value.value
        kind = shape.type_name
        if kind == "timestamp":
            moment = datetime.fromtimestamp(to_epoch(value), tz=UTC)
            return format_datetime(moment, usegmt=True)
        if kind == "boolean":
            return "true" if value else "false"
        if shape.serialization.get("jsonvalue"):
            return base64.b64encode(encode_json(value)).decode("ascii")
        if kind == "blob" and isinstance(value, bytes | bytearray):
            return base64.b64encode(bytes(value)).decode("ascii")
        if kind not in ("string", "integer", "long", "float", "double", "blob"):
            self.fail(where, f"a {kind} cannot travel in a header")
        return str(value)
