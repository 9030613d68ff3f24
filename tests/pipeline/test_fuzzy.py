"""Membership functions, fuzzy set configs with the messages users read, and fuzzify."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from trainops.errors import StrategyError
from trainops.pipeline.fuzzy import (
    FuzzyFeatureConfig,
    FuzzySetConfig,
    PriceRatioTransform,
    fuzzify,
    gaussian,
    trapezoidal,
    triangular,
)

NAN = math.nan


@pytest.mark.parametrize(
    ("params", "x", "expected"),
    [
        pytest.param((10, 20, 30), [5, 10, 15, 20, 25, 30, 35], [0, 0, 0.5, 1, 0.5, 0, 0], id="symmetric"),
        pytest.param((0, 20, 100), [10, 20, 60, 100], [0.5, 1, 0.5, 0], id="skewed"),
        pytest.param((10, 10, 30), [9.99, 10, 20, 30], [0, 1, 0.5, 0], id="left-vertical-edge"),
        pytest.param((10, 30, 30), [10, 20, 30, 30.01], [0, 0.5, 1, 0], id="right-vertical-edge"),
        pytest.param((0, 1, 2), [NAN, 1, NAN], [NAN, 1, NAN], id="nan-propagates"),
    ],
)
def test_triangular(params: tuple[float, float, float], x: list[float], expected: list[float]) -> None:
    np.testing.assert_allclose(triangular(np.array(x), *params), expected, equal_nan=True)


@pytest.mark.parametrize(
    ("params", "x", "expected"),
    [
        pytest.param((0, 1, 3, 4), [-1, 0, 0.5, 1, 2, 3, 3.5, 4, 5], [0, 0, 0.5, 1, 1, 1, 0.5, 0, 0], id="plain"),
        pytest.param((0, 0, 0.98, 1.0), [0, 0.5, 0.98, 0.99, 1.0, 1.2], [1, 1, 1, 0.5, 0, 0], id="left-shoulder"),
        pytest.param((1.0, 1.02, 2, 2), [0.99, 1.01, 1.5, 2, 2.01], [0, 0.5, 1, 1, 0], id="right-shoulder"),
        pytest.param((0, 1, 1, 2), [0.5, 1, 1.5], [0.5, 1, 0.5], id="triangle-shaped"),
        pytest.param((0, 1, 3, 4), [NAN, 2], [NAN, 1], id="nan-propagates"),
    ],
)
def test_trapezoidal(params: tuple[float, float, float, float], x: list[float], expected: list[float]) -> None:
    np.testing.assert_allclose(trapezoidal(np.array(x), *params), expected, equal_nan=True)


@pytest.mark.parametrize(
    ("mean", "sigma", "x", "expected"),
    [
        (0.0, 1.0, [0.0, 1.0, -1.0, 2.0], [1.0, math.exp(-0.5), math.exp(-0.5), math.exp(-2.0)]),
        (-0.001, 0.0005, [-0.001, -0.0005, -0.0015], [1.0, math.exp(-0.5), math.exp(-0.5)]),
        (50.0, 10.0, [NAN, 50.0], [NAN, 1.0]),
    ],
)
def test_gaussian(mean: float, sigma: float, x: list[float], expected: list[float]) -> None:
    np.testing.assert_allclose(gaussian(np.array(x), mean, sigma), expected, equal_nan=True, rtol=1e-12)


def test_membership_functions_return_float_arrays_of_the_input_shape() -> None:
    x = np.arange(12, dtype=np.int64).reshape(3, 4)

    for result in (triangular(x, 0, 5, 10), trapezoidal(x, 0, 2, 4, 8), gaussian(x, 5, 2)):
        assert result.shape == (3, 4)
        assert result.dtype == np.float64
        assert ((result >= 0) & (result <= 1)).all()


@pytest.mark.parametrize(
    ("type_", "parameters", "message"),
    [
        ("triangular", [30, 20], r"triangular needs 3 numbers a <= b <= c, got [30, 20]"),
        ("triangular", [30, 20, 40], r"triangular needs 3 numbers a <= b <= c, got [30, 20, 40]"),
        ("triangular", [0, 20.5, 35, 50], r"triangular needs 3 numbers a <= b <= c, got [0, 20.5, 35, 50]"),
        ("trapezoidal", [0, 1, 2], r"trapezoidal needs 4 numbers a <= b <= c <= d, got [0, 1, 2]"),
        ("trapezoidal", [0, 1, 0.5, 2], r"trapezoidal needs 4 numbers a <= b <= c <= d, got [0, 1, 0.5, 2]"),
        ("gaussian", [1], r"gaussian needs 2 numbers [mean, sigma] with sigma > 0, got [1]"),
        ("gaussian", [0.5, 0], r"gaussian needs 2 numbers [mean, sigma] with sigma > 0, got [0.5, 0]"),
        ("gaussian", [0, -0.25], r"gaussian needs 2 numbers [mean, sigma] with sigma > 0, got [0, -0.25]"),
        ("triangular", [0, NAN, 35], r"triangular parameters must be finite numbers, got [0, nan, 35]"),
        ("gaussian", [math.inf, 1], r"gaussian parameters must be finite numbers, got [inf, 1]"),
        ("triangular", [20, 20, 20], r"triangular set [20, 20, 20] has zero width (a == c)"),
        ("trapezoidal", [1, 1, 1, 1], r"trapezoidal set [1, 1, 1, 1] has zero width (a == d)"),
        ("triangular", [0, True, 1], r"parameters must be numbers, got [0, True, 1]"),
    ],
)
def test_fuzzy_set_validation_messages(type_: str, parameters: list[float], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FuzzySetConfig.model_validate({"type": type_, "parameters": parameters})

    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("function", "args"),
    [(triangular, (3, 2, 1)), (trapezoidal, (0, 2, 1, 3)), (gaussian, (0, 0))],
)
def test_membership_functions_refuse_bad_parameters_too(function: Any, args: tuple[float, ...]) -> None:
    with pytest.raises(ValueError, match="needs"):
        function(np.array([1.0]), *args)


def test_fuzzy_set_refuses_unknown_type_and_extra_keys() -> None:
    with pytest.raises(ValidationError, match="triangular"):
        FuzzySetConfig.model_validate({"type": "sigmoid", "parameters": [1, 2]})
    with pytest.raises(ValidationError, match="Extra inputs are not permitted"):
        FuzzySetConfig.model_validate({"type": "gaussian", "parameters": [0, 1], "weight": 2})


def test_fuzzy_set_membership_dispatches_on_type() -> None:
    x = np.array([0.0, 25.0, 50.0])

    np.testing.assert_allclose(FuzzySetConfig(type="triangular", parameters=[0, 50, 100]).membership(x), [0, 0.5, 1])
    np.testing.assert_allclose(FuzzySetConfig(type="trapezoidal", parameters=[0, 0, 25, 50]).membership(x), [1, 1, 0])
    np.testing.assert_allclose(
        FuzzySetConfig(type="gaussian", parameters=[25, 25]).membership(x), [math.exp(-0.5), 1, math.exp(-0.5)]
    )


RSI_SETS = {
    "oversold": {"type": "triangular", "parameters": [0, 20, 35]},
    "neutral": {"type": "triangular", "parameters": [30, 50, 70]},
    "overbought": {"type": "triangular", "parameters": [65, 80, 100]},
}


def test_feature_config_keeps_sets_in_declared_order() -> None:
    reordered = dict(reversed(RSI_SETS.items()))

    assert list(FuzzyFeatureConfig.model_validate(RSI_SETS).sets) == ["oversold", "neutral", "overbought"]
    assert list(FuzzyFeatureConfig.model_validate(reordered).sets) == ["overbought", "neutral", "oversold"]


def test_feature_config_reserved_keys_configure_the_feature() -> None:
    config = FuzzyFeatureConfig.model_validate(
        {
            "input_transform": {"type": "price_ratio", "reference": "open"},
            "output": "histogram",
            "negative": {"type": "gaussian", "parameters": [-0.001, 0.0005]},
        }
    )

    assert config.input_transform == PriceRatioTransform(type="price_ratio", reference="open")
    assert config.output == "histogram"
    assert list(config.sets) == ["negative"]


def test_feature_config_defaults() -> None:
    config = FuzzyFeatureConfig.model_validate(RSI_SETS)

    assert config.input_transform is None
    assert config.output is None
    assert FuzzyFeatureConfig.model_validate(
        {"input_transform": {"type": "price_ratio"}, **RSI_SETS}
    ).input_transform == PriceRatioTransform(type="price_ratio", reference="close")


def test_feature_config_dumps_back_to_the_yaml_shape() -> None:
    data = {"input_transform": {"type": "price_ratio", "reference": "close"}, **RSI_SETS}
    config = FuzzyFeatureConfig.model_validate(data)

    dumped = config.model_dump()

    assert list(dumped) == ["input_transform", "oversold", "neutral", "overbought"]
    assert FuzzyFeatureConfig.model_validate(dumped) == config


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "a fuzzy feature needs at least one set"),
        ({"output": "histogram"}, "a fuzzy feature needs at least one set"),
        ({"low-ish": RSI_SETS["oversold"]}, "fuzzy set name 'low-ish' must start with a letter"),
        ({"2low": RSI_SETS["oversold"]}, "fuzzy set name '2low' must start with a letter"),
        ({"input_transform": {"type": "log"}, **RSI_SETS}, "input_transform.type"),
        ({"input_transform": {"type": "price_ratio", "reference": "volume"}, **RSI_SETS}, "input_transform.reference"),
        (
            {"low": {"type": "triangular", "parameters": [30, 20]}},
            "triangular needs 3 numbers a <= b <= c, got [30, 20]",
        ),
        ({"low": [0, 20, 35]}, "sets.low"),
    ],
)
def test_feature_config_refusals(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        FuzzyFeatureConfig.model_validate(data)

    assert message in str(caught.value)


def test_fuzzify_names_columns_in_declared_order_and_keeps_the_index() -> None:
    index = pd.date_range("2024-01-01", periods=4, freq="D", name="timestamp")
    values = pd.Series([NAN, 20.0, 50.0, 90.0], index=index)

    frame = fuzzify(values, FuzzyFeatureConfig.model_validate(RSI_SETS), "rsi_14")

    assert list(frame.columns) == ["rsi_14_oversold", "rsi_14_neutral", "rsi_14_overbought"]
    assert frame.index.equals(index)
    np.testing.assert_allclose(
        frame.to_numpy(), [[NAN, NAN, NAN], [1, 0, 0], [0, 1, 0], [0, 0, 0.5]], equal_nan=True, rtol=1e-12
    )


def test_fuzzify_price_ratio_divides_by_the_reference_column() -> None:
    index = pd.date_range("2024-01-01", periods=3, freq="D", name="timestamp")
    ohlcv = pd.DataFrame({"close": [100.0, 100.0, 0.0], "open": [99.0, 200.0, 5.0]}, index=index)
    sma = pd.Series([99.0, 98.0, 50.0], index=index)
    config = FuzzyFeatureConfig.model_validate(
        {
            "input_transform": {"type": "price_ratio", "reference": "close"},
            "below": {"type": "trapezoidal", "parameters": [0, 0, 0.98, 1.0]},
        }
    )

    frame = fuzzify(sma, config, "sma_20", ohlcv)

    # 0.99 is halfway down the shoulder, 0.98 on the plateau; a zero close gives NaN, not inf
    np.testing.assert_allclose(frame["sma_20_below"], [0.5, 1.0, NAN], equal_nan=True)
    by_open = config.model_copy(update={"input_transform": PriceRatioTransform(type="price_ratio", reference="open")})
    np.testing.assert_allclose(fuzzify(sma, by_open, "sma_20", ohlcv)["sma_20_below"], [0.0, 1.0, 0.0])


def test_fuzzify_with_a_transform_needs_the_ohlcv_frame() -> None:
    index = pd.date_range("2024-01-01", periods=2, freq="D")
    values = pd.Series([1.0, 2.0], index=index)
    config = FuzzyFeatureConfig.model_validate(
        {
            "input_transform": {"type": "price_ratio", "reference": "high"},
            "x": {"type": "gaussian", "parameters": [1, 1]},
        }
    )

    with pytest.raises(ValueError, match="needs the OHLCV frame"):
        fuzzify(values, config, "f")
    with pytest.raises(ValueError, match="on the same index"):
        fuzzify(values, config, "f", pd.DataFrame({"high": [1.0, 2.0]}, index=index[::-1]))
    with pytest.raises(StrategyError, match="divides by the high price, but the data has no such column"):
        fuzzify(values, config, "f", pd.DataFrame({"close": [1.0, 2.0]}, index=index))
