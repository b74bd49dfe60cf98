"""ParameterRanges → Optuna distributions, and sampled values → hyperparameter strings."""

from __future__ import annotations

import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from modelyard.core.errors import ValidationError
from modelyard.tuning.ranges import ParameterSpace, grid_size, parameter_spaces


def _one(kind: str, **item: object) -> ParameterSpace:
    (space,) = parameter_spaces({kind: [{"Name": "p", **item}]})
    return space


@pytest.mark.parametrize(
    ("low", "high", "scaling", "log"),
    [
        ("1", "10", "Linear", False),
        ("1", "10", "Logarithmic", True),
        ("1", "10", "Auto", False),      # one order of magnitude: linear
        ("1", "1000", "Auto", True),     # three orders: logarithmic
        ("0", "1000", "Auto", False),    # a log scale cannot start at 0
    ],
)
def test_integer_scaling(low: str, high: str, scaling: str, log: bool) -> None:
    space = _one("IntegerParameterRanges", MinValue=low, MaxValue=high, ScalingType=scaling)
    assert space.distribution == IntDistribution(int(low), int(high), log=log)


def test_integer_values_are_written_without_a_decimal_point() -> None:
    space = _one("IntegerParameterRanges", MinValue="1", MaxValue="10")
    assert space.hyperparameter(7) == "7"
    assert space.value_of("7") == 7
    assert space.value_of("7.0") == 7
    assert space.value_of("11") is None and space.value_of("7.5") is None


@pytest.mark.parametrize(
    ("low", "high", "scaling", "log"),
    [("0", "1", "Linear", False), ("0.0001", "0.1", "Logarithmic", True),
     ("0.0001", "0.1", "Auto", True), ("0.5", "1.5", "Auto", False)],
)
def test_continuous_scaling(low: str, high: str, scaling: str, log: bool) -> None:
    space = _one("ContinuousParameterRanges", MinValue=low, MaxValue=high, ScalingType=scaling)
    assert space.distribution == FloatDistribution(float(low), float(high), log=log)
    assert space.hyperparameter(0.0625) == "0.0625"


def test_reverse_logarithmic_samples_one_minus_the_value_on_a_log_scale() -> None:
    space = _one("ContinuousParameterRanges", MinValue="0.5", MaxValue="0.999",
                 ScalingType="ReverseLogarithmic")
    assert space.distribution == FloatDistribution(1 - 0.999, 0.5, log=True)
    assert float(space.hyperparameter(0.01)) == pytest.approx(0.99)
    assert space.value_of("0.99") == pytest.approx(0.01)
    assert space.value_of("0.2") is None  # below MinValue


def test_categorical_values_travel_verbatim() -> None:
    space = _one("CategoricalParameterRanges", Values=["adam", '"sgd"'])
    assert space.distribution == CategoricalDistribution(("adam", '"sgd"'))
    assert space.hyperparameter('"sgd"') == '"sgd"'
    assert space.value_of("rmsprop") is None


@pytest.mark.parametrize(
    ("ranges", "message"),
    [
        ({"IntegerParameterRanges": [{"Name": "n", "MinValue": "5", "MaxValue": "1"}]},
         r"MinValue \(5\) is greater than MaxValue \(1\)"),
        ({"IntegerParameterRanges": [{"Name": "n", "MinValue": "1.5", "MaxValue": "3"}]},
         "is not an integer"),
        ({"ContinuousParameterRanges": [{"Name": "x", "MinValue": "a", "MaxValue": "3"}]},
         "is not a number"),
        ({"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0", "MaxValue": "1",
                                         "ScalingType": "Logarithmic"}]},
         "Logarithmic scaling needs a range above 0"),
        ({"IntegerParameterRanges": [{"Name": "n", "MinValue": "1", "MaxValue": "3",
                                      "ScalingType": "ReverseLogarithmic"}]},
         "applies only to continuous ranges"),
        ({"ContinuousParameterRanges": [{"Name": "x", "MinValue": "0.5", "MaxValue": "1",
                                         "ScalingType": "ReverseLogarithmic"}]},
         "MaxValue < 1"),
        ({"IntegerParameterRanges": [{"Name": "n", "MinValue": "1", "MaxValue": "3"}],
          "CategoricalParameterRanges": [{"Name": "n", "Values": ["a"]}]},
         "has more than one range"),
        ({"CategoricalParameterRanges": [{"Name": "c", "Values": ["a", "a"]}]},
         "lists a value more than once"),
        ({"AutoParameters": [{"Name": "n", "ValueHint": "1"}]}, "AutoParameters"),
    ],
)
def test_bad_ranges_are_refused(ranges: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parameter_spaces(ranges)


def test_grid_enumerates_categories_and_integers_but_not_continuous_ranges() -> None:
    spaces = parameter_spaces({
        "IntegerParameterRanges": [{"Name": "depth", "MinValue": "2", "MaxValue": "4"}],
        "CategoricalParameterRanges": [{"Name": "opt", "Values": ["adam", "sgd"]}],
    })
    assert [s.grid_values() for s in spaces] == [[2, 3, 4], ["adam", "sgd"]]
    assert grid_size(spaces) == 6
    continuous = parameter_spaces({"ContinuousParameterRanges": [
        {"Name": "lr", "MinValue": "0", "MaxValue": "1"}]})
    with pytest.raises(ValidationError, match="continuous ranges have no grid"):
        grid_size(continuous)
