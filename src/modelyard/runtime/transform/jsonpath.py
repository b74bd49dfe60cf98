"""The JSONPath subset of batch transform's DataProcessing filters.

Supported: ``$``, ``.name``, ``['name']``, ``['a','b']``, ``[n]``, ``[n,m]``, ``[start:end]``
(end exclusive), ``[-n]``, ``[*]`` and ``.*``. A CSV row is a JSON array of its column strings,
so ``$[1:]`` drops the first column and ``$[0,-1]`` keeps the first and the last.

A path that selects one thing (``$[0]``, ``$.a``) gives that value; one that may select several
(a slice, a union, a wildcard) gives a list, except a union of names on an object, which gives
the object with just those keys (``$['id','SageMakerOutput']``), as SageMaker does. An index out
of range or a missing key is an error: the job fails rather than writing a wrong record.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

_TOKEN = re.compile(
    r"""\.(?P<name>[A-Za-z_][\w-]*)        # .name
      | \.(?P<dotstar>\*)                   # .*
      | \[(?P<bracket>[^\]]*)\]             # [...]
    """,
    re.VERBOSE,
)
_SLICE = re.compile(r"^\s*(-?\d+)?\s*:\s*(-?\d+)?\s*$")
_QUOTED = re.compile(r"""^\s*(?:'([^']*)'|"([^"]*)")\s*$""")


class PathError(ValueError):
    """A record does not have what the path selects."""


@dataclasses.dataclass(frozen=True)
class Selector:
    """One step of a path: keys or indexes, a slice, or every child."""

    keys: tuple[str | int, ...] = ()
    slice: tuple[int | None, int | None] | None = None
    wildcard: bool = False

    @property
    def multiple(self) -> bool:
        return self.wildcard or self.slice is not None or len(self.keys) > 1


def parse_path(text: str) -> list[Selector]:
    """The selectors of ``text``; ValueError when it is not in the supported subset."""
    text = text.strip()
    if not text.startswith("$"):
        raise ValueError(f"{text!r} must start with $")
    selectors, position = [], 1
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"{text!r} is not a supported JSONPath (at {text[position:]!r})")
        selectors.append(_selector(match, text))
        position = match.end()
    return selectors


def _selector(match: re.Match[str], text: str) -> Selector:
    if match["name"] is not None:
        return Selector(keys=(match["name"],))
    if match["dotstar"] is not None:
        return Selector(wildcard=True)
    inside = match["bracket"].strip()
    if inside == "*":
        return Selector(wildcard=True)
    sliced = _SLICE.match(inside)
    if sliced:
        start, end = (int(v) if v is not None else None for v in sliced.groups())
        return Selector(slice=(start, end))
    return Selector(keys=tuple(_key(part, text) for part in inside.split(",")))


def _key(part: str, text: str) -> str | int:
    quoted = _QUOTED.match(part)
    if quoted:
        return quoted[1] if quoted[1] is not None else quoted[2]
    try:
        return int(part)
    except ValueError:
        raise ValueError(f"{text!r}: {part.strip()!r} is neither an index nor a quoted name") from None


def select(selectors: list[Selector], value: Any) -> Any:
    """Apply a parsed path to ``value``; PathError when the value lacks what it selects."""
    current, multiple = value, False
    for selector in selectors:
        if multiple:
            current = [item for v in current for item in _flat(_step(selector, v))]
        else:
            current = _step(selector, current)
            multiple = selector.multiple and not _is_name_union(selector, current)
    return current


def _flat(result: Any) -> list[Any]:
    return result if isinstance(result, list) else [result]


def _is_name_union(selector: Selector, result: Any) -> bool:
    return isinstance(result, dict) and len(selector.keys) > 1


def _step(selector: Selector, value: Any) -> Any:
    if selector.wildcard:
        return list(value.values()) if isinstance(value, dict) else list(_sequence(value))
    if selector.slice is not None:
        start, end = selector.slice
        return list(_sequence(value)[start:end])
    if len(selector.keys) == 1:
        return _child(value, selector.keys[0])
    if isinstance(value, dict) and all(isinstance(k, str) for k in selector.keys):
        return {str(k): _child(value, k) for k in selector.keys}
    return [_child(value, k) for k in selector.keys]


def _sequence(value: Any) -> list[Any]:
    if not isinstance(value, list):
        raise PathError(f"expected an array, found {type(value).__name__}")
    return value


def _child(value: Any, key: str | int) -> Any:
    try:
        if isinstance(key, int):
            return _sequence(value)[key]
        if not isinstance(value, dict):
            raise PathError(f"expected an object with {key!r}, found {type(value).__name__}")
        return value[key]
    except IndexError:
        raise PathError(f"index {key} is out of range for {len(value)} element(s)") from None
    except KeyError:
        raise PathError(f"the record has no key {key!r}") from None
