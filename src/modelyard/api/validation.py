"""Server-side request validation against botocore's input shapes.

botocore checks only required members, types, minimum lengths and integer minimums on the client;
patterns, maximums and enums are the server's job, and non-boto clients skip the client checks
entirely. :func:`validate_input` walks the operation's input shape once, collects every problem in
the wording AWS uses, and returns the parameters converted to Python values (timestamps to float
epoch seconds, blobs to bytes)::

    op = operation("sagemaker", "DescribeTrainingJob")
    validate_input(op, {"TrainingJobName": "bad_name"})
    # ValidationError: 1 validation error detected: Value 'bad_name' at 'trainingJobName'
    # failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9]...

Paths follow AWS: members are lower-camel-cased (``algorithmSpecification.trainingImage``), list
items are ``inputDataConfig.1.member.channelName`` (1-based), map values ``hyperParameters.<key>``.
Unknown members are rejected rather than ignored, so that a typo in a hand-written request is not
silently dropped (boto3 rejects them on the client too).

botocore's own ``ParamValidator`` is not reused: it checks Python types (``datetime``, file
objects), not the JSON types on the wire, and it skips exactly the constraints the server owns.
"""

from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape

from modelyard.core.errors import ValidationError

__all__ = ["find_problems", "parse_timestamp", "unsupported_patterns", "validate_input"]

# Members carried outside the JSON body arrive as text and are coerced to their shape's type.
_TEXT_LOCATIONS = frozenset({"header", "querystring", "uri"})
# Values longer than this are not echoed in full into an error message.
_MAX_ECHO = 256
# Past its max length, a string this long is not also matched against the pattern: the answer is
# already "invalid" and a backtracking pattern over a megabyte would stall the request.
_PATTERN_SKIP_LENGTH = 1024
_REDACTED = "*** Sensitive Data Redacted ***"
# JSON has no NaN or infinity: AWS protocols send such doubles as these strings.
_NON_FINITE = frozenset({"NaN", "Infinity", "-Infinity"})

# Java regexes (``\p{L}``, ``\uD800`` ranges) that Python's ``re`` cannot compile; such members
# go unchecked rather than failing every request.
_UNSUPPORTED: set[str] = set()


def _local_uri_in_s3_field(pattern: str, value: str) -> bool:
    """modelyard takes ``file://`` URIs and absolute local paths wherever SageMaker takes S3 URIs."""
    s3_field = "s3)://" in pattern or "s3://" in pattern
    return s3_field and value.startswith(("file:///", "/"))


def validate_input(operation_model: OperationModel, params: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``params`` against the operation's input shape and return them converted.

    Raises :class:`ValidationError` listing every problem found, e.g.
    ``2 validation errors detected: Value null at 'roleArn' ...; Value 'x' at ...``.
    """
    converted, problems = find_problems(operation_model, params)
    if problems:
        raise ValidationError(_headline(problems))
    return converted


def find_problems(
    operation_model: OperationModel, params: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """Return ``(converted params, problems)`` without raising; each problem is one AWS phrase."""
    walker = _Walker()
    shape = operation_model.input_shape
    if shape is None:
        for name in params:
            walker.problems.append(f"Unknown parameter '{name}'")
        return {}, walker.problems
    if not isinstance(params, Mapping):
        walker.type_problem(params, "", "a structure")
        return {}, walker.problems
    converted = walker.structure(shape, params, "")
    return converted, walker.problems


def unsupported_patterns() -> frozenset[str]:
    """The model patterns seen so far that Python's ``re`` cannot compile (left unchecked)."""
    return frozenset(_UNSUPPORTED)


def _headline(problems: list[str]) -> str:
    count = len(problems)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected: " + "; ".join(problems)


@lru_cache(maxsize=2048)
def _compiled(pattern: str) -> re.Pattern[str] | None:
    try:
        return re.compile(pattern)
    except re.error:
        _UNSUPPORTED.add(pattern)
        return None


def _lower_camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _join(path: str, part: str) -> str:
    return f"{path}.{part}" if path else part


class _Walker:
    """One validation pass: walks shapes, converts values and gathers problems."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    # -- reporting -----------------------------------------------------------------------------

    def problem(
        self, value: Any, path: str, constraint: str, shape: Shape | None = None, subject: str = ""
    ) -> None:
        shown = _REDACTED if shape is not None and shape.metadata.get("sensitive") else value
        self.problems.append(
            f"Value {_echo(shown)} at '{path}' failed to satisfy constraint: {subject}{constraint}"
        )

    def type_problem(
        self, value: Any, path: str, expected: str, shape: Shape | None = None
    ) -> None:
        self.problem(value, path, f"Member must be {expected}", shape)

    # -- shapes --------------------------------------------------------------------------------

    def value(self, shape: Shape, value: Any, path: str, from_text: bool = False) -> Any:
        """Validate one non-null value of ``shape``; return it converted (or None if invalid)."""
        kind = shape.type_name
        if kind == "structure":
            assert isinstance(shape, StructureShape)
            if not isinstance(value, Mapping):
                self.type_problem(value, path, "a structure", shape)
                return None
            return self.structure(shape, value, path)
        if kind == "list":
            assert isinstance(shape, ListShape)
            return self.list(shape, value, path)
        if kind == "map":
            assert isinstance(shape, MapShape)
            return self.map(shape, value, path)
        if kind == "string":
            return self.string(shape, value, path)
        if kind in ("integer", "long"):
            return self.integer(shape, value, path, from_text)
        if kind in ("float", "double"):
            return self.number(shape, value, path, from_text)
        if kind == "boolean":
            return self.boolean(shape, value, path, from_text)
        if kind == "blob":
            return self.blob(shape, value, path)
        if kind == "timestamp":
            return self.timestamp(shape, value, path)
        # A type the models do not use today (e.g. "document"): pass it through untouched.
        return value

    def structure(self, shape: StructureShape, value: Mapping[str, Any], path: str) -> dict:
        members = shape.members
        for name in value:
            if name not in members:
                where = f" at '{path}'" if path else ""
                self.problems.append(f"Unknown parameter '{name}'{where}")
        required = set(shape.required_members)
        out: dict[str, Any] = {}
        for name, member in members.items():
            item = value.get(name)
            if item is None:
                # JSON null is read as "absent", as the real service's deserialiser does.
                if name in required:
                    self.problem(None, _join(path, _lower_camel(name)), "Member must not be null")
                continue
            from_text = member.serialization.get("location") in _TEXT_LOCATIONS
            out[name] = self.value(member, item, _join(path, _lower_camel(name)), from_text)
        if shape.is_tagged_union and len(out) != 1:
            names = ", ".join(members)
            self.problem(value, path, f"Member must have exactly one of [{names}] set")
        return out

    def list(self, shape: ListShape, value: Any, path: str) -> list | None:
        if not isinstance(value, list):
            self.type_problem(value, path, "a list", shape)
            return None
        self.length(shape, value, len(value), path)
        out = []
        for index, item in enumerate(value, start=1):
            item_path = f"{path}.{index}.member"
            if item is None:
                self.problem(None, item_path, "Member must not be null")
                continue
            out.append(self.value(shape.member, item, item_path))
        return out

    def map(self, shape: MapShape, value: Any, path: str) -> dict | None:
        if not isinstance(value, Mapping):
            self.type_problem(value, path, "a map", shape)
            return None
        self.length(shape, value, len(value), path)
        out = {}
        for key, item in value.items():
            # Key problems are reported at the map itself: there is no path to a key.
            self.string(shape.key, key, path, subject="Map keys must satisfy constraint: ")
            item_path = _join(path, str(key))
            if item is None:
                self.problem(None, item_path, "Member must not be null")
                continue
            out[key] = self.value(shape.value, item, item_path)
        return out

    def string(self, shape: Shape, value: Any, path: str, subject: str = "") -> str | None:
        if not isinstance(value, str):
            self.type_problem(value, path, "a string", shape)
            return None
        # Java counts UTF-16 code units; astral characters count twice on the real service.
        length = len(value.encode("utf-16-le")) // 2
        self.length(shape, value, length, path, subject)
        enum = shape.enum
        if enum and value not in enum:
            allowed = ", ".join(enum)
            self.problem(
                value, path, f"Member must satisfy enum value set: [{allowed}]", shape, subject
            )
        pattern = shape.metadata.get("pattern")
        too_long = length > shape.metadata.get("max", math.inf) and length > _PATTERN_SKIP_LENGTH
        if pattern and not too_long:
            compiled = _compiled(pattern)
            if compiled is not None and compiled.fullmatch(value) is None \
                    and not _local_uri_in_s3_field(pattern, value):
                constraint = f"Member must satisfy regular expression pattern: {pattern}"
                self.problem(value, path, constraint, shape, subject)
        return value

    def length(self, shape: Shape, value: Any, length: int, path: str, subject: str = "") -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and length < low:
            constraint = f"Member must have length greater than or equal to {low}"
            self.problem(value, path, constraint, shape, subject)
        if high is not None and length > high:
            constraint = f"Member must have length less than or equal to {high}"
            self.problem(value, path, constraint, shape, subject)

    def bounds(self, shape: Shape, value: int | float, path: str) -> None:
        low, high = shape.metadata.get("min"), shape.metadata.get("max")
        if low is not None and value < low:
            constraint = f"Member must have value greater than or equal to {low}"
            self.problem(value, path, constraint, shape)
        if high is not None and value > high:
            constraint = f"Member must have value less than or equal to {high}"
            self.problem(value, path, constraint, shape)

    def integer(self, shape: Shape, value: Any, path: str, from_text: bool) -> int | None:
        if from_text and isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                self.type_problem(value, path, "an integer", shape)
                return None
        # JSON has one number type; 3.0 is a legitimate spelling of 3, 3.5 is not.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            self.type_problem(value, path, "an integer", shape)
            return None
        self.bounds(shape, value, path)
        return value

    def number(self, shape: Shape, value: Any, path: str, from_text: bool) -> float | None:
        if isinstance(value, str) and value in _NON_FINITE:
            return float(value)  # how botocore sends a NaN or infinite double in JSON
        if from_text and isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                self.type_problem(value, path, "a number", shape)
                return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.type_problem(value, path, "a number", shape)
            return None
        self.bounds(shape, value, path)
        return float(value)

    def boolean(self, shape: Shape, value: Any, path: str, from_text: bool) -> bool | None:
        if from_text and isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            self.type_problem(value, path, "a boolean", shape)
            return None
        return value

    def blob(self, shape: Shape, value: Any, path: str) -> bytes | None:
        if isinstance(value, bytes | bytearray):
            data = bytes(value)  # a rest-json payload arrives raw, not base64
        elif isinstance(value, str):
            try:
                data = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                self.type_problem(value, path, "base64-encoded binary data", shape)
                return None
        else:
            self.type_problem(value, path, "base64-encoded binary data", shape)
            return None
        self.length(shape, data, len(data), path)
        return data

    def timestamp(self, shape: Shape, value: Any, path: str) -> float | None:
        parsed = parse_timestamp(value)
        if parsed is None:
            self.type_problem(value, path, "a timestamp (epoch seconds or ISO 8601)", shape)
            return None
        return parsed


def parse_timestamp(value: Any) -> float | None:
    """Epoch seconds from a JSON number, a numeric string, ISO 8601 or RFC 822 text; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) else None
    moment: datetime | None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            moment = parsedate_to_datetime(text)  # header timestamps default to RFC 822
        except (TypeError, ValueError, IndexError):
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # AWS reads zone-less times as UTC
    return moment.timestamp()


def _echo(value: Any) -> str:
    """Render a value the way AWS (Java's ``toString``) does in validation messages."""
    if value is None:
        return "null"
    text = _java_text(value)
    if len(text) > _MAX_ECHO:
        text = text[:_MAX_ECHO] + "..."
    return f"'{text}'"


def _java_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, list):
        return "[" + ", ".join(_java_text(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k}={_java_text(v)}" for k, v in value.items()) + "}"
    if value is None:
        return "null"
    return str(value)
