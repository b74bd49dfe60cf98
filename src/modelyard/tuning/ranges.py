"""Parameter ranges: SageMaker's ``ParameterRanges`` as Optuna distributions.

Each tuned hyperparameter becomes one :class:`ParameterSpace`: the Optuna distribution its
values are sampled from, and the way a sampled value is written as the hyperparameter string a
training job receives (and read back, for warm starts). The mapping of ``ScalingType``:

| range      | Linear                    | Logarithmic                  | ReverseLogarithmic            |
| ---------- | ------------------------- | ---------------------------- | ----------------------------- |
| Integer    | ``IntDistribution``       | ``IntDistribution(log=True)``| refused (continuous only)     |
| Continuous | ``FloatDistribution``     | ``FloatDistribution(log=True)`` | ``1 - x`` sampled on a log scale |

``Auto`` picks Logarithmic when the range is positive and spans at least two orders of
magnitude (a learning rate from 1e-4 to 1e-1), Linear otherwise. Categorical ranges become a
``CategoricalDistribution`` over the given strings, passed to jobs verbatim.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from modelyard.core.errors import ValidationError

if TYPE_CHECKING:
    from optuna.distributions import BaseDistribution

__all__ = ["ParameterSpace", "grid_search_space", "grid_size", "parameter_spaces"]

#: ranges whose max/min ratio reaches this are sampled logarithmically under ``Auto``
AUTO_LOG_RATIO = 100.0
#: the largest grid a Grid tuning job may enumerate
MAX_GRID_SIZE = 100_000


@dataclasses.dataclass(frozen=True)
class ParameterSpace:
    """One tuned hyperparameter: where Optuna samples it and how a sample becomes a string.

    ``low``/``high``/``log`` bound a numeric range in Optuna's terms; ``choices`` are a
    categorical range's values. ``reverse`` marks ReverseLogarithmic scaling: Optuna samples
    ``1 - value`` on a log scale (so ``low``/``high`` bound ``1 - value``), and values crowd
    towards 1 (a momentum of 0.9, 0.99, 0.999).
    """

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    choices: tuple[str, ...] = ()
    reverse: bool = False

    @property
    def distribution(self) -> BaseDistribution:
        """The Optuna distribution (Optuna is imported on first use, not with the server)."""
        from optuna.distributions import (
            CategoricalDistribution,
            FloatDistribution,
            IntDistribution,
        )

        if self.kind == "Categorical":
            return CategoricalDistribution(self.choices)
        if self.kind == "Integer":
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(self.low, self.high, log=self.log)

    def hyperparameter(self, value: Any) -> str:
        """The hyperparameter string for an Optuna value: integers without a decimal point."""
        if self.kind == "Categorical":
            return str(value)
        if self.kind == "Integer":
            return str(int(value))
        number = 1.0 - float(value) if self.reverse else float(value)
        return repr(number)

    def value_of(self, text: str) -> Any | None:
        """The Optuna value of a hyperparameter string, or None when it lies outside the range."""
        try:
            if self.kind == "Categorical":
                value: Any = text
            elif self.kind == "Integer":
                value = _integer(text)
            else:
                value = 1.0 - float(text) if self.reverse else float(text)
        except ValueError:
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return None
        return value if self.contains(value) else None

    def contains(self, value: Any) -> bool:
        """Whether an Optuna value lies in the range."""
        if self.kind == "Categorical":
            return value in self.choices
        return self.low <= value <= self.high

    def sample(self) -> Any:
        """Some value of the range (its first category or its lower bound)."""
        if self.kind == "Categorical":
            return self.choices[0]
        return int(self.low) if self.kind == "Integer" else self.low

    def grid_values(self) -> list[Any]:
        """Every value a grid search visits: the categories, or each integer of the range."""
        if self.kind == "Categorical":
            return list(self.choices)
        if self.kind == "Integer":
            return list(range(int(self.low), int(self.high) + 1))
        raise ValidationError(
            f"Hyperparameter {self.name}: the Grid strategy takes only categorical and integer "
            "ranges; continuous ranges have no grid."
        )


def parameter_spaces(ranges: Mapping[str, Any] | None, where: str = "ParameterRanges") -> list[ParameterSpace]:
    """Every range of a ``ParameterRanges`` structure, validated, in request order."""
    ranges = ranges or {}
    if ranges.get("AutoParameters"):
        raise ValidationError(f"{where}.AutoParameters (Autotune) is not supported by modelyard.")
    spaces = [
        *(_integer_space(r, where) for r in ranges.get("IntegerParameterRanges", [])),
        *(_continuous_space(r, where) for r in ranges.get("ContinuousParameterRanges", [])),
        *(_categorical_space(r, where) for r in ranges.get("CategoricalParameterRanges", [])),
    ]
    seen: set[str] = set()
    for space in spaces:
        if space.name in seen:
            raise ValidationError(f"{where}: hyperparameter {space.name} has more than one range.")
        seen.add(space.name)
    return spaces


def grid_size(spaces: Sequence[ParameterSpace]) -> int:
    """How many combinations a grid over ``spaces`` has (ValidationError for a continuous one)."""
    return math.prod(len(space.grid_values()) for space in spaces)


def _integer_space(item: Mapping[str, Any], where: str) -> ParameterSpace:
    name, low, high, scaling = _numeric(item, where, _integer)
    if scaling == "ReverseLogarithmic":
        raise ValidationError(
            f"{where}: hyperparameter {name}: ReverseLogarithmic scaling applies only to "
            "continuous ranges."
        )
    log = _is_log(name, low, high, scaling, where)
    return ParameterSpace(name, "Integer", low, high, log)


def _continuous_space(item: Mapping[str, Any], where: str) -> ParameterSpace:
    name, low, high, scaling = _numeric(item, where, float)
    if scaling == "ReverseLogarithmic":
        if not (0 <= low and high < 1):
            raise ValidationError(
                f"{where}: hyperparameter {name}: ReverseLogarithmic scaling needs "
                f"0 <= MinValue and MaxValue < 1, got [{low}, {high}]."
            )
        return ParameterSpace(name, "Continuous", 1.0 - high, 1.0 - low, log=True, reverse=True)
    log = _is_log(name, low, high, scaling, where)
    return ParameterSpace(name, "Continuous", low, high, log)


def _categorical_space(item: Mapping[str, Any], where: str) -> ParameterSpace:
    name, values = item["Name"], list(item["Values"])
    if len(set(values)) != len(values):
        raise ValidationError(f"{where}: hyperparameter {name} lists a value more than once.")
    return ParameterSpace(name, "Categorical", choices=tuple(values))


def _numeric(item: Mapping[str, Any], where: str, parse: Any) -> tuple[str, Any, Any, str]:
    """An integer or continuous range's name, checked bounds and scaling type."""
    name = item["Name"]
    low, high = (_bound(item, key, name, where, parse) for key in ("MinValue", "MaxValue"))
    _check_order(name, low, high, where)
    return name, low, high, item.get("ScalingType", "Auto")


def _bound(item: Mapping[str, Any], key: str, name: str, where: str, parse: Any) -> Any:
    text = item[key]
    try:
        value = parse(text)
    except ValueError:
        kind = "an integer" if parse is _integer else "a number"
        raise ValidationError(
            f"{where}: hyperparameter {name}: {key} {text!r} is not {kind}."
        ) from None
    if isinstance(value, float) and not math.isfinite(value):
        raise ValidationError(f"{where}: hyperparameter {name}: {key} must be finite.")
    return value


def _integer(text: str) -> int:
    number = float(text)
    if not number.is_integer():
        raise ValueError(text)
    return int(number)


def _check_order(name: str, low: float, high: float, where: str) -> None:
    if low > high:
        raise ValidationError(
            f"{where}: hyperparameter {name}: MinValue ({low}) is greater than MaxValue ({high})."
        )


def _is_log(name: str, low: float, high: float, scaling: str, where: str) -> bool:
    if scaling == "Logarithmic":
        if low <= 0:
            raise ValidationError(
                f"{where}: hyperparameter {name}: Logarithmic scaling needs a range above 0, "
                f"got MinValue {low}."
            )
        return True
    if scaling == "Auto":
        return low > 0 and high / low >= AUTO_LOG_RATIO
    return False


def grid_search_space(
    keyed: Iterable[tuple[str, ParameterSpace]],
) -> dict[str, list[Any]]:
    """Optuna's ``GridSampler`` search space: each parameter key and its grid values."""
    return {key: space.grid_values() for key, space in keyed}
