"""SageMaker Search expressions, evaluated against one resource document.

A document is the resource as its Search record shows it (a DescribeTrainingJob answer for a
training job), seen through :func:`searchable_view`, which turns SageMaker's keyed lists into
maps so that property names reach into them:

- ``Tags.<key>`` (the ``Tags`` list of ``{Key, Value}``);
- ``Metrics.<name>``: a training job's final value of a metric (from ``FinalMetricDataList``),
  or a trial component's metric summary (``Metrics.<name>.Max``, ``.Avg`` ...; the summary
  itself compares as its ``Last``);
- ``Parameters.<name>``: a trial component parameter's ``StringValue`` or ``NumberValue``;
- ``HyperParameters.<name>``, ``InputDataConfig.ChannelName`` ... as they are. Through a list
  a name matches when any element matches (``Parents.ExperimentName``); map keys may contain
  dots (``HyperParameters.a.b`` finds the key ``a.b``). A leading ``<Record>.`` (as in
  ``TrialComponent.DisplayName``) may be written or left out.

Operators: ``Equals``, ``NotEquals`` (no value equals), ``GreaterThan``,
``GreaterThanOrEqualTo``, ``LessThan``, ``LessThanOrEqualTo`` (numbers, and timestamps given as
ISO 8601 text or epoch seconds; text that is a number compares as one, other text compares as
text), ``Contains`` (substring), ``Exists``, ``NotExists`` and ``In`` (comma-separated values).
``NestedFilters`` hold when one element of the named list passes all of their filters.
``SubExpressions`` nest; ``Operator`` (``And`` by default) joins everything in one expression.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from modelyard.api.validation import parse_timestamp
from modelyard.core.errors import ValidationError

MAX_CONDITIONS = 50  # filters, nested filters and subexpressions in one request, in all
_NO_VALUE = ("Exists", "NotExists")
_ORDER = {
    "GreaterThan": lambda a, b: a > b,
    "GreaterThanOrEqualTo": lambda a, b: a >= b,
    "LessThan": lambda a, b: a < b,
    "LessThanOrEqualTo": lambda a, b: a <= b,
}


def check(expression: Mapping[str, Any]) -> None:
    """Raise ValidationError for an expression SageMaker refuses."""
    if _count(expression) > MAX_CONDITIONS:
        raise ValidationError(
            f"A SearchExpression can hold at most {MAX_CONDITIONS} filters, nested filters "
            "and subexpressions in all."
        )
    _check(expression)


def _check(expression: Mapping[str, Any]) -> None:
    if not any(expression.get(k) for k in ("Filters", "NestedFilters", "SubExpressions")):
        raise ValidationError(
            "A SearchExpression must have at least one filter, nested filter or subexpression."
        )
    for item in expression.get("Filters", []):
        _check_filter(item)
    for nested in expression.get("NestedFilters", []):
        prefix = nested["NestedPropertyName"] + "."
        for item in nested["Filters"]:
            _check_filter(item)
            if not item["Name"].startswith(prefix):
                raise ValidationError(
                    f"Filter {item['Name']} of nested property {nested['NestedPropertyName']} "
                    f"must start with {prefix}"
                )
    for sub in expression.get("SubExpressions", []):
        _check(sub)


def _check_filter(item: Mapping[str, Any]) -> None:
    operator = item.get("Operator", "Equals")
    if operator not in _NO_VALUE and "Value" not in item:
        raise ValidationError(f"Filter {item['Name']} with operator {operator} needs a Value.")


def _count(expression: Mapping[str, Any]) -> int:
    return (len(expression.get("Filters", [])) + len(expression.get("NestedFilters", []))
            + sum(1 + _count(sub) for sub in expression.get("SubExpressions", [])))


def referenced(expression: Mapping[str, Any] | None, *names: str | None) -> set[str]:
    """The top-level property names an expression (and extra names, e.g. SortBy) reads."""
    found = {name.split(".", 1)[0] for name in names if name}
    if expression:
        for item in expression.get("Filters", []):
            found.add(item["Name"].split(".", 1)[0])
        for nested in expression.get("NestedFilters", []):
            found.add(nested["NestedPropertyName"].split(".", 1)[0])
        for sub in expression.get("SubExpressions", []):
            found |= referenced(sub)
    return found


def conjuncts(expression: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    """The filters every match must pass (those of a top-level And), for narrowing reads."""
    if not expression or expression.get("Operator", "And") != "And":
        return []
    return list(expression.get("Filters", []))


def searchable_view(document: Mapping[str, Any]) -> dict[str, Any]:
    """``document`` with keyed lists turned into maps (see the module docstring)."""
    view = dict(document)
    if isinstance(view.get("Tags"), list):
        view["Tags"] = {t["Key"]: t["Value"] for t in view["Tags"] if "Key" in t}
    if isinstance(view.get("FinalMetricDataList"), list) and "Metrics" not in view:
        view["Metrics"] = {m["MetricName"]: m["Value"] for m in view["FinalMetricDataList"]}
    if isinstance(view.get("Metrics"), list):
        view["Metrics"] = {m["MetricName"]: m for m in view["Metrics"] if "MetricName" in m}
    if isinstance(view.get("Parameters"), Mapping):
        view["Parameters"] = {k: _parameter(v) for k, v in view["Parameters"].items()}
    return view


def _parameter(value: Any) -> Any:
    if isinstance(value, Mapping):
        if "NumberValue" in value:
            return value["NumberValue"]
        if "StringValue" in value:
            return value["StringValue"]
    return value


def matches(expression: Mapping[str, Any] | None, view: Mapping[str, Any],
            record_name: str = "") -> bool:
    """Whether a document (already through :func:`searchable_view`) passes ``expression``."""
    if not expression:
        return True
    results = _conditions(expression, view, record_name)
    if expression.get("Operator", "And") == "Or":
        return any(results)
    return all(results)


def _conditions(expression: Mapping[str, Any], view: Mapping[str, Any],
                record_name: str) -> Iterator[bool]:
    for item in expression.get("Filters", []):
        yield passes(item, resolve(view, item["Name"], record_name))
    for nested in expression.get("NestedFilters", []):
        yield _nested(nested, view, record_name)
    for sub in expression.get("SubExpressions", []):
        yield matches(sub, view, record_name)


def _nested(nested: Mapping[str, Any], view: Mapping[str, Any], record_name: str) -> bool:
    name = nested["NestedPropertyName"]
    elements = resolve(view, name, record_name, flatten=False)
    prefix = len(name) + 1
    for element in elements:
        for member in (element if isinstance(element, list) else [element]):
            if all(passes(f, resolve(member, f["Name"][prefix:])) for f in nested["Filters"]):
                return True
    return False


def resolve(document: Any, name: str, record_name: str = "", flatten: bool = True) -> list[Any]:
    """Every value at the dotted property ``name`` (see the module docstring)."""
    parts = name.split(".")
    if record_name and parts[0] == record_name and isinstance(document, Mapping) \
            and record_name not in document:
        parts = parts[1:]
    found = list(_walk(document, parts))
    if not flatten:
        return found
    out: list[Any] = []
    for value in found:
        out.extend(value if isinstance(value, list) else [value])
    return [v for v in out if v is not None]


def _walk(value: Any, parts: Sequence[str]) -> Iterator[Any]:
    if not parts:
        yield value
        return
    if isinstance(value, list):
        for element in value:
            yield from _walk(element, parts)
        return
    if not isinstance(value, Mapping):
        return
    # the longest run of parts that is one key first: keys may contain dots
    for end in range(len(parts), 0, -1):
        key = ".".join(parts[:end])
        if key in value:
            yield from _walk(value[key], parts[end:])
            return


def passes(item: Mapping[str, Any], values: list[Any]) -> bool:
    """Whether the values found for a filter's property satisfy the filter."""
    operator = item.get("Operator", "Equals")
    if operator == "Exists":
        return bool(values)
    if operator == "NotExists":
        return not values
    wanted = str(item["Value"])
    scalars = [_scalar(v) for v in values]
    if operator == "Equals":
        return any(_equal(v, wanted) for v in scalars)
    if operator == "NotEquals":
        return not any(_equal(v, wanted) for v in scalars)
    if operator == "In":
        options = [o.strip() for o in wanted.split(",")]
        return any(_equal(v, o) for v in scalars for o in options)
    if operator == "Contains":
        return any(wanted in text for v in values for text in _texts(v))
    if operator in _ORDER:
        return any(_ordered(operator, v, wanted) for v in scalars)
    raise ValidationError(f"Operator {operator} is not supported.")


def _scalar(value: Any) -> Any:
    """What a value compares as: a metric summary as its Last, an artifact as its Value."""
    if isinstance(value, Mapping):
        for key in ("Value", "Last", "StringValue", "NumberValue"):
            if key in value:
                return value[key]
    return value


def _texts(value: Any) -> Iterable[str]:
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)
    elif isinstance(value, str):
        yield value


def _equal(actual: Any, wanted: str) -> bool:
    if isinstance(actual, bool):
        return str(actual).lower() == wanted.lower()
    if isinstance(actual, int | float):
        other = _number(wanted)
        return other is not None and math.isclose(float(actual), other, rel_tol=1e-12, abs_tol=0.0)
    if isinstance(actual, str):
        return actual == wanted
    return False


def _ordered(operator: str, actual: Any, wanted: str) -> bool:
    compare = _ORDER[operator]
    if isinstance(actual, bool):
        return False
    number = _number(actual) if isinstance(actual, str) else actual
    if isinstance(number, int | float):
        other = _number(wanted)
        return other is not None and compare(float(number), other)
    if isinstance(actual, str):
        return compare(actual, wanted)
    return False


def _number(text: Any) -> float | None:
    """A filter value (or textual property) as a number: a decimal, or a timestamp."""
    if isinstance(text, int | float) and not isinstance(text, bool):
        return float(text)
    if not isinstance(text, str):
        return None
    try:
        number = float(text)
    except ValueError:
        return parse_timestamp(text) if text[:1].isdigit() and "-" in text else None
    return number if math.isfinite(number) else None


def sort_value(view: Mapping[str, Any], name: str, record_name: str = "") -> tuple[int, Any] | None:
    """The sort key of a document for ``SortBy`` (None when it lacks the property)."""
    values = [_scalar(v) for v in resolve(view, name, record_name)]
    if not values:
        return None
    value = values[0]
    number = _number(value) if isinstance(value, str) else value
    if isinstance(number, int | float) and not isinstance(number, bool):
        return (0, float(number))
    return (1, str(value))
