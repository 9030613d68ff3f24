"""Fuzzy memberships: how much an indicator value belongs to "oversold", "neutral", "overbought", ...

A strategy describes, per indicator feature, a few named fuzzy sets; each bar's value becomes one membership
degree in [0, 1] per set, and those degrees (not the raw indicator) are what the model learns from. The membership
functions are the textbook ones (as in scikit-fuzzy's ``trimf``, ``trapmf``, ``gaussmf``), vectorised over numpy
arrays; a missing value (NaN, e.g. an indicator's warm-up) stays missing rather than becoming "0% member".
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_serializer, model_validator

from trainops.errors import StrategyError

FloatArray = npt.NDArray[np.float64]

SET_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"
_SET_NAME = re.compile(SET_NAME_PATTERN)
RESERVED_KEYS = ("input_transform", "output")
"""Keys of a feature's fuzzy mapping that configure the feature instead of naming a set."""

MembershipType = Literal["triangular", "trapezoidal", "gaussian"]


def format_numbers(values: Sequence[float]) -> str:
    """``[30, 20.5]``: a list as a person wrote it, whole numbers without ``.0``, for error messages."""
    return "[" + ", ".join(_format_number(v) for v in values) + "]"


def _format_number(value: float) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def _shape_message(kind: MembershipType, parameters: Sequence[float]) -> str:
    shape = {
        "triangular": "3 numbers a <= b <= c",
        "trapezoidal": "4 numbers a <= b <= c <= d",
        "gaussian": "2 numbers [mean, sigma] with sigma > 0",
    }[kind]
    return f"{kind} needs {shape}, got {format_numbers(parameters)}"


def check_parameters(kind: MembershipType, parameters: Sequence[float]) -> None:
    """Refuse parameters that do not describe a proper fuzzy set of this kind.

    Raises:
        ValueError: Wrong count, a non-finite number, numbers out of order, ``sigma <= 0``, or a set of zero
            width (``a == c`` for a triangle, ``a == d`` for a trapezoid), which no value could partly belong to.
    """
    count = {"triangular": 3, "trapezoidal": 4, "gaussian": 2}[kind]
    if len(parameters) != count:
        raise ValueError(_shape_message(kind, parameters))
    if not all(math.isfinite(p) for p in parameters):
        raise ValueError(f"{kind} parameters must be finite numbers, got {format_numbers(parameters)}")
    if kind == "gaussian":
        if parameters[1] <= 0:
            raise ValueError(_shape_message(kind, parameters))
        return
    if any(left > right for left, right in itertools.pairwise(parameters)):
        raise ValueError(_shape_message(kind, parameters))
    if parameters[0] == parameters[-1]:
        edges = "a == c" if kind == "triangular" else "a == d"
        raise ValueError(
            f"{kind} set {format_numbers(parameters)} has zero width ({edges}); "
            "spread its edges apart so values near the peak partly belong to it"
        )


def triangular(x: npt.ArrayLike, a: float, b: float, c: float) -> FloatArray:
    """Triangle rising from 0 at ``a`` to 1 at ``b`` and falling back to 0 at ``c``.

    ``a == b`` (or ``b == c``) makes that side a vertical edge: 1 at the peak, 0 beyond it.

    >>> triangular([0, 10, 15, 20, 25, 30, 40], 10, 20, 30).tolist()
    [0.0, 0.0, 0.5, 1.0, 0.5, 0.0, 0.0]

    Raises:
        ValueError: The parameters are not a proper triangle (see :func:`check_parameters`).
    """
    check_parameters("triangular", [a, b, c])
    return _trapezoid(np.asarray(x, dtype=np.float64), a, b, b, c)


def trapezoidal(x: npt.ArrayLike, a: float, b: float, c: float, d: float) -> FloatArray:
    """Trapezoid rising from 0 at ``a`` to 1 at ``b``, flat to ``c``, falling to 0 at ``d``.

    ``a == b`` (or ``c == d``) makes a vertical shoulder: 1 from ``b`` on, 0 below ``a``.

    >>> trapezoidal([0, 0.5, 1, 2, 3, 3.5, 4], 0, 1, 3, 4).tolist()
    [0.0, 0.5, 1.0, 1.0, 1.0, 0.5, 0.0]

    Raises:
        ValueError: The parameters are not a proper trapezoid (see :func:`check_parameters`).
    """
    check_parameters("trapezoidal", [a, b, c, d])
    return _trapezoid(np.asarray(x, dtype=np.float64), a, b, c, d)


def _trapezoid(values: FloatArray, a: float, b: float, c: float, d: float) -> FloatArray:
    out = np.zeros(values.shape, dtype=np.float64)
    # Each slope is evaluated only strictly inside its interval, so a vertical edge never divides by zero.
    rising = (values > a) & (values < b)
    out[rising] = (values[rising] - a) / (b - a)
    out[(values >= b) & (values <= c)] = 1.0
    falling = (values > c) & (values < d)
    out[falling] = (d - values[falling]) / (d - c)
    out[np.isnan(values)] = np.nan
    return out


def gaussian(x: npt.ArrayLike, mean: float, sigma: float) -> FloatArray:
    """Bell curve ``exp(-0.5 * ((x - mean) / sigma) ** 2)``: 1 at the mean, ``exp(-0.5) ≈ 0.61`` one sigma away.

    Unlike the triangle it never quite reaches 0, so every value belongs a little to every gaussian set.

    >>> round(float(gaussian(1.0, 0.0, 1.0)), 4)
    0.6065

    Raises:
        ValueError: ``sigma`` is not positive.
    """
    check_parameters("gaussian", [mean, sigma])
    values = np.asarray(x, dtype=np.float64)
    return np.asarray(np.exp(-0.5 * ((values - mean) / sigma) ** 2), dtype=np.float64)


class FuzzySetConfig(BaseModel):
    """One fuzzy set: its membership function and that function's numbers.

    ``{type: triangular, parameters: [0, 20, 35]}``: the corners a, b, c (trapezoidal: a, b, c, d; gaussian:
    mean, sigma), in the indicator's own units (or as a ratio to price when the feature sets an input transform).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: MembershipType
    parameters: list[float]

    @field_validator("parameters", mode="before")
    @classmethod
    def _no_booleans(cls, value: Any) -> Any:
        # YAML turns yes/no/on/off into booleans, which pydantic would otherwise read as 1.0 and 0.0.
        if isinstance(value, list) and any(isinstance(item, bool) for item in value):
            raise ValueError(f"parameters must be numbers, got {value!r}")
        return value

    @model_validator(mode="after")
    def _check(self) -> FuzzySetConfig:
        check_parameters(self.type, self.parameters)
        return self

    def membership(self, x: npt.ArrayLike) -> FloatArray:
        """The membership degree of each value, in [0, 1]; NaN stays NaN."""
        if self.type == "triangular":
            return triangular(x, *self.parameters)
        if self.type == "trapezoidal":
            return trapezoidal(x, *self.parameters)
        return gaussian(x, *self.parameters)


class PriceRatioTransform(BaseModel):
    """Divide the indicator by a price column before fuzzifying.

    Moving averages and bands are in price units, which drift over years and differ between symbols; their ratio
    to the bar's price (``sma_20 / close``) means the same thing at any price level, so one set of fuzzy
    numbers (``below: [0, 0, 0.98, 1.0]``) serves them all.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: Literal["price_ratio"]
    reference: Literal["open", "high", "low", "close"] = "close"


class FuzzyFeatureConfig(BaseModel):
    """The fuzzy sets of one indicator feature, in the order they were declared.

    The strategy writes them as one mapping: set names next to two reserved keys, ``input_transform`` (see
    :class:`PriceRatioTransform`) and ``output`` (which indicator output the sets describe; the primary one when
    left out; the strategy loader checks it against the indicator)::

        macd_12_26_9:
          output: histogram
          negative: {type: gaussian, parameters: [-0.001, 0.0005]}

    A dump gives back that same flat mapping, so a saved strategy reloads unchanged.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    input_transform: PriceRatioTransform | None = None
    output: str | None = Field(None, pattern=SET_NAME_PATTERN)
    sets: dict[str, FuzzySetConfig]

    @model_validator(mode="before")
    @classmethod
    def _split_sets(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data  # pydantic explains what a model needs
        bad = [name for name in data if name not in RESERVED_KEYS and not _is_set_name(name)]
        if bad:
            raise ValueError(
                f"fuzzy set name {bad[0]!r} must start with a letter and hold only letters, digits and _ "
                f"(reserved keys: {', '.join(RESERVED_KEYS)})"
            )
        sets = {name: value for name, value in data.items() if name not in RESERVED_KEYS}
        if not sets:
            raise ValueError(
                "a fuzzy feature needs at least one set, e.g. low: {type: triangular, parameters: [0, 20, 40]}"
            )
        return {**{key: data[key] for key in RESERVED_KEYS if key in data}, "sets": sets}

    @model_serializer(mode="wrap")
    def _flatten(self, handler: Any) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        flat = {key: dumped[key] for key in RESERVED_KEYS if dumped.get(key) is not None}
        return {**flat, **dumped["sets"]}


def _is_set_name(name: object) -> bool:
    return isinstance(name, str) and _SET_NAME.fullmatch(name) is not None


def fuzzify(
    values: pd.Series, config: FuzzyFeatureConfig, feature_id: str, ohlcv: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Turn one indicator series into one membership column per fuzzy set.

    Args:
        values: The indicator output the sets describe (see :func:`trainops.pipeline.indicators.output_column`).
        config: The feature's fuzzy sets.
        feature_id: Prefix of the column names.
        ohlcv: The bars ``values`` was computed from; required when the config has an input transform.

    Returns:
        A frame on ``values``' index with columns ``{feature_id}_{set}`` in declared order; NaN where the value
        is NaN (or the reference price is 0).

    Raises:
        StrategyError: An input transform is configured and its price column is missing from ``ohlcv``.
        ValueError: An input transform is configured but ``ohlcv`` is not given or not on the same index
            (a bug in the caller, not in the strategy).

    >>> config = FuzzyFeatureConfig.model_validate({"low": {"type": "triangular", "parameters": [0, 0, 50]}})
    >>> fuzzify(pd.Series([0.0, 25.0, 75.0]), config, "rsi").to_dict("list")
    {'rsi_low': [1.0, 0.5, 0.0]}
    """
    x = values.to_numpy(dtype=np.float64)
    transform = config.input_transform
    if transform is not None:
        if ohlcv is None or not ohlcv.index.equals(values.index):
            raise ValueError(
                f"{feature_id} divides by the {transform.reference} price, so fuzzify needs the OHLCV frame the "
                "values were computed from, on the same index"
            )
        if transform.reference not in ohlcv.columns:
            raise StrategyError(
                f"{feature_id} divides by the {transform.reference} price, but the data has no such column",
                details={"feature_id": feature_id, "reference": transform.reference},
            )
        reference = ohlcv[transform.reference].to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            x = np.where(reference == 0, np.nan, x / np.where(reference == 0, 1.0, reference))
    return pd.DataFrame(
        {f"{feature_id}_{name}": fuzzy_set.membership(x) for name, fuzzy_set in config.sets.items()},
        index=values.index,
    )
