"""Metrics from log lines, matched as SageMaker matches them.

SageMaker searches each MetricDefinitions regex in every log line as the line appears in
CloudWatch, where syslog-style escaping has turned a TAB into ``#011`` (and every other control
character into ``#`` + three octal digits). Built-in algorithm regexes depend on that, so the
same escaping is applied before matching. The first capture group must parse as a float.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Iterable, Mapping

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\t]")


def escape_control(line: str) -> str:
    """``"a\\tb"`` → ``"a#011b"``: control characters as CloudWatch shows them."""
    return _CONTROL.sub(lambda m: f"#{ord(m.group()):03o}", line)


@dataclasses.dataclass(frozen=True)
class Observation:
    """One metric value seen in one log line."""

    name: str
    value: float
    timestamp: float


class MetricMatcher:
    """Applies a job's MetricDefinitions to its log lines."""

    def __init__(self, definitions: Iterable[Mapping[str, str]]) -> None:
        self._rules = []
        for definition in definitions:
            try:
                self._rules.append((definition["Name"], re.compile(definition["Regex"])))
            except re.error:
                # A regex Python cannot compile was rejected at create time; never reached.
                continue

    def __bool__(self) -> bool:
        return bool(self._rules)

    def match(self, line: str, timestamp: float) -> list[Observation]:
        """Every metric value found in one raw log line."""
        escaped = escape_control(line)
        found = []
        for name, pattern in self._rules:
            m = pattern.search(escaped)
            if not m or not m.groups():
                continue
            try:
                value = float(m.group(1))
            except (TypeError, ValueError):
                continue
            if math.isfinite(value):
                found.append(Observation(name, value, timestamp))
        return found
