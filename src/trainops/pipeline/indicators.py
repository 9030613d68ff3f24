"""Technical indicators: a registry over TA-Lib, the strategy's indicator config, and the computation.

A strategy names indicators the way traders do (``rsi``, ``bbands``) or the way TA-Lib does (``RSI``, ``BBANDS``);
both resolve to one canonical entry of :data:`INDICATORS`, which also owns the parameter names, their defaults and
their valid ranges. Validation happens when the strategy is loaded, so a typo fails in milliseconds with the valid
options listed, not an hour into preprocessing with a TA-Lib error code.

Each indicator produces one or more *outputs* (``macd`` has ``line``, ``signal`` and ``histogram``). The primary
output's column is named after the strategy's ``feature_id``; the others are ``{feature_id}_{output}``. Warm-up
rows, where TA-Lib has too little history, are NaN; :func:`warmup_bars` says exactly how many.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
import talib
import talib.abstract
from pydantic import BaseModel, ConfigDict, Field, model_validator

from trainops.errors import DataError, StrategyError

FloatArray = npt.NDArray[np.float64]

SOURCES: tuple[str, ...] = ("open", "high", "low", "close", "volume", "hl2", "hlc3", "ohlc4")
"""Price series a single-series indicator can read; ``hl2`` etc. are the usual typical-price averages."""

FEATURE_ID_PATTERN = r"^[A-Za-z][A-Za-z0-9_]*$"

MAX_PERIOD = 100_000
"""TA-Lib's own upper bound for every period parameter."""

ParamKind = Literal["period", "number", "source"]


@dataclass(frozen=True, slots=True)
class ParamSpec:
    """One parameter of an indicator.

    Attributes:
        name: The name a strategy uses (``period``, ``fast_period``, ...).
        kind: ``period`` (a whole number in ``[minimum, 100000]``), ``number`` (a finite float above ``minimum``)
            or ``source`` (one of :data:`SOURCES`).
        default: Used when the strategy leaves the parameter out.
        description: One line for listings and error messages.
        minimum: The smallest valid period (TA-Lib refuses 1 for some indicators), or the exclusive lower bound
            of a number.
        talib_keys: The TA-Lib keyword arguments the value is passed as (``multiplier`` feeds both ``nbdevup``
            and ``nbdevdn``); empty for ``source``, which picks the input series instead.
    """

    name: str
    kind: ParamKind
    default: int | float | str
    description: str
    minimum: float = 0.0
    talib_keys: tuple[str, ...] = ()

    def validate(self, indicator: str, value: object) -> int | float | str:
        """The value, normalised (``14.0`` becomes ``14``); raises :class:`StrategyError` naming the fix."""
        if self.kind == "source":
            if isinstance(value, str) and value.lower() in SOURCES:
                return value.lower()
            raise StrategyError(
                f"{indicator} parameter source must be one of {', '.join(SOURCES)}, got {value!r}",
                details={"indicator": indicator, "parameter": self.name, "value": repr(value), "valid": SOURCES},
            )
        if self.kind == "period":
            minimum = int(self.minimum)
            if (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and float(value).is_integer()
                and minimum <= value <= MAX_PERIOD
            ):
                return int(value)
            raise StrategyError(
                f"{indicator} parameter {self.name} must be a whole number from {minimum} to {MAX_PERIOD}, "
                f"got {value!r}",
                details={"indicator": indicator, "parameter": self.name, "value": repr(value)},
            )
        if (
            isinstance(value, int | float)
            and not isinstance(value, bool)
            and math.isfinite(value)
            and value > self.minimum
        ):
            return float(value)
        raise StrategyError(
            f"{indicator} parameter {self.name} must be a finite number greater than {self.minimum:g}, got {value!r}",
            details={"indicator": indicator, "parameter": self.name, "value": repr(value)},
        )


Outputs = dict[str, FloatArray]
Derive = Callable[[Outputs, FloatArray], Outputs]


@dataclass(frozen=True, slots=True)
class IndicatorDef:
    """What the registry knows about one indicator.

    Attributes:
        name: Canonical name (``williams_r``).
        talib_name: TA-Lib's function name (``WILLR``), also accepted as an alias.
        description: One line for listings.
        outputs: Every output name, primary first.
        primary: The output whose column is named ``feature_id``.
        params: The parameters a strategy may set, with defaults.
        inputs: The columns TA-Lib reads, in its argument order; ``"source"`` stands for the configurable series.
        talib_outputs: Names of TA-Lib's raw outputs, in the order TA-Lib returns them.
        derive: Turns the raw outputs (and the source series) into extra outputs (Bollinger %B and width).
        check: Cross-parameter rule (MACD's fast < slow); raises :class:`StrategyError`.
    """

    name: str
    talib_name: str
    description: str
    outputs: tuple[str, ...]
    primary: str
    params: tuple[ParamSpec, ...]
    inputs: tuple[str, ...]
    talib_outputs: tuple[str, ...]
    derive: Derive | None = field(default=None, repr=False, compare=False)
    check: Callable[[Mapping[str, Any]], None] | None = field(default=None, repr=False, compare=False)

    @property
    def defaults(self) -> dict[str, int | float | str]:
        return {spec.name: spec.default for spec in self.params}

    @property
    def param_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.params)

    def resolve_params(self, given: Mapping[str, object]) -> dict[str, int | float | str]:
        """Validate the parameters a strategy gave and fill in the defaults of the rest.

        Raises:
            StrategyError: An unknown parameter (the message lists this indicator's parameters), or a value of
                the wrong type or out of range.
        """
        unknown = [name for name in given if name not in self.param_names]
        if unknown:
            valid = ", ".join(self.param_names) if self.params else "none"
            raise StrategyError(
                f"{self.name} has no parameter {unknown[0]!r}; its parameters are: {valid}",
                details={"indicator": self.name, "parameter": unknown[0], "valid": list(self.param_names)},
            )
        specs = {spec.name: spec for spec in self.params}
        params = {
            name: specs[name].validate(self.name, given[name]) if name in given else specs[name].default
            for name in self.param_names
        }
        if self.check is not None:
            self.check(params)
        return params

    def talib_kwargs(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The keyword arguments for the TA-Lib function (and its lookback) for these parameters."""
        kwargs: dict[str, Any] = {}
        for spec in self.params:
            for key in spec.talib_keys:
                kwargs[key] = params[spec.name]
        return kwargs


def _period(
    default: int, minimum: int, talib_key: str = "timeperiod", *, name: str = "period", what: str = "bars in the window"
) -> ParamSpec:
    return ParamSpec(name, "period", default, what, minimum, (talib_key,))


_SOURCE = ParamSpec("source", "source", "close", f"price series to read: {', '.join(SOURCES)}")
_HLC = ("high", "low", "close")


def _check_macd(params: Mapping[str, Any]) -> None:
    if params["fast_period"] >= params["slow_period"]:
        raise StrategyError(
            f"macd needs fast_period < slow_period, got fast_period={params['fast_period']} and "
            f"slow_period={params['slow_period']}; swap them or shorten fast_period",
            details={"indicator": "macd", "fast_period": params["fast_period"], "slow_period": params["slow_period"]},
        )


def _derive_bbands(raw: Outputs, source: FloatArray) -> Outputs:
    upper, middle, lower = raw["upper"], raw["middle"], raw["lower"]
    band = upper - lower
    # TA-Lib reports a flat window's deviation as exactly 0; the tolerance also absorbs rounding noise, so flat
    # bars give NaN (no position within a band of zero width) instead of inf or a meaningless huge number.
    flat = ~(band > 1e-12 * np.abs(middle))
    with np.errstate(divide="ignore", invalid="ignore"):
        percent_b = np.where(flat, np.nan, (source - lower) / np.where(flat, 1.0, band))
        width = np.where(middle == 0, np.nan, band / np.where(middle == 0, 1.0, middle))
    return {"percent_b": percent_b, "upper": upper, "middle": middle, "lower": lower, "width": width}


def _single(
    name: str, talib_name: str, description: str, params: tuple[ParamSpec, ...], inputs: tuple[str, ...]
) -> IndicatorDef:
    return IndicatorDef(name, talib_name, description, ("value",), "value", params, inputs, ("value",))


_DEFS: tuple[IndicatorDef, ...] = (
    _single("rsi", "RSI", "Relative Strength Index, 0-100", (_period(14, 2), _SOURCE), ("source",)),
    _single("sma", "SMA", "Simple moving average", (_period(20, 1), _SOURCE), ("source",)),
    _single("ema", "EMA", "Exponential moving average", (_period(20, 1), _SOURCE), ("source",)),
    IndicatorDef(
        "macd",
        "MACD",
        "Moving Average Convergence/Divergence: fast EMA minus slow EMA, its signal EMA and their difference",
        ("line", "signal", "histogram"),
        "line",
        (
            _period(12, 2, "fastperiod", name="fast_period", what="bars of the fast EMA"),
            _period(26, 2, "slowperiod", name="slow_period", what="bars of the slow EMA"),
            _period(9, 1, "signalperiod", name="signal_period", what="bars of the signal line's EMA"),
            _SOURCE,
        ),
        ("source",),
        ("line", "signal", "histogram"),
        check=_check_macd,
    ),
    IndicatorDef(
        "bbands",
        "BBANDS",
        "Bollinger Bands; primary output %B, the position of the price within the bands (0 = lower, 1 = upper)",
        ("percent_b", "upper", "middle", "lower", "width"),
        "percent_b",
        (
            _period(20, 2),
            ParamSpec("multiplier", "number", 2.0, "band distance in standard deviations", 0.0, ("nbdevup", "nbdevdn")),
            _SOURCE,
        ),
        ("source",),
        ("upper", "middle", "lower"),
        derive=_derive_bbands,
    ),
    _single("atr", "ATR", "Average True Range, in price units", (_period(14, 1),), _HLC),
    IndicatorDef(
        "stoch",
        "STOCH",
        "Stochastic oscillator (slow): %K smoothed over smooth_k bars, %D its moving average, 0-100",
        ("k", "d"),
        "k",
        (
            ParamSpec("k_period", "period", 14, "bars in the high-low range", 1, ("fastk_period",)),
            ParamSpec("d_period", "period", 3, "bars averaged into %D", 1, ("slowd_period",)),
            ParamSpec("smooth_k", "period", 3, "bars smoothing the raw %K", 1, ("slowk_period",)),
        ),
        _HLC,
        ("k", "d"),
    ),
    _single("williams_r", "WILLR", "Williams %R, -100 to 0", (_period(14, 2),), _HLC),
    _single("cci", "CCI", "Commodity Channel Index", (_period(14, 2),), _HLC),
    _single("adx", "ADX", "Average Directional Index, trend strength 0-100", (_period(14, 2),), _HLC),
    _single("obv", "OBV", "On-Balance Volume (cumulative, in volume units)", (), ("close", "volume")),
    _single("mfi", "MFI", "Money Flow Index, volume-weighted RSI, 0-100", (_period(14, 2),), (*_HLC, "volume")),
    _single("roc", "ROC", "Rate of change in percent over period bars", (_period(10, 1), _SOURCE), ("source",)),
    _single("momentum", "MOM", "Momentum: price change over period bars", (_period(10, 1), _SOURCE), ("source",)),
)

INDICATORS: Mapping[str, IndicatorDef] = MappingProxyType({d.name: d for d in _DEFS})
"""Every supported indicator by canonical name."""

_BY_ALIAS: dict[str, str] = {
    **{d.talib_name.lower(): d.name for d in _DEFS},
    **{d.name: d.name for d in _DEFS},
}


def get_indicator(name: str) -> IndicatorDef:
    """The registry entry for a canonical or TA-Lib name, in any case (``WILLR``, ``williams_r``, ``Bbands``).

    Raises:
        StrategyError: The name is unknown; the message lists the valid names.
    """
    canonical = _BY_ALIAS.get(name.lower()) if isinstance(name, str) else None
    if canonical is None:
        raise StrategyError(
            f"unknown indicator {name!r}; valid indicators are: {', '.join(INDICATORS)} "
            "(TA-Lib names such as RSI or WILLR work too)",
            details={"indicator": repr(name), "valid": list(INDICATORS)},
        )
    return INDICATORS[canonical]


class IndicatorConfig(BaseModel):
    """One indicator of a strategy, with its parameters as sibling keys.

    ``- {name: rsi, feature_id: rsi_14, period: 14}`` in YAML. Validation resolves aliases to the canonical
    name and fills in every parameter's default, so a dump of a loaded config is complete and reloads to the
    same thing.

    >>> config = IndicatorConfig.model_validate({"name": "RSI", "feature_id": "rsi_14", "period": 14})
    >>> config.name, config.params
    ('rsi', {'period': 14, 'source': 'close'})
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    name: str
    feature_id: str = Field(pattern=FEATURE_ID_PATTERN, max_length=64)

    @model_validator(mode="before")
    @classmethod
    def _resolve(cls, data: Any) -> Any:
        if not isinstance(data, Mapping) or not isinstance(data.get("name"), str):
            return data  # pydantic reports the missing or mistyped name
        given = {key: value for key, value in data.items() if key not in ("name", "feature_id")}
        try:
            indicator = get_indicator(data["name"])
            params = indicator.resolve_params(given)
        except StrategyError as error:
            raise ValueError(error.message) from None
        resolved: dict[str, Any] = {"name": indicator.name, **params}
        if "feature_id" in data:
            resolved["feature_id"] = data["feature_id"]
        return resolved

    @property
    def indicator(self) -> IndicatorDef:
        return INDICATORS[self.name]

    @property
    def params(self) -> dict[str, Any]:
        """Every parameter of the indicator, defaults filled in."""
        return dict(self.model_extra or {})


def output_column(config: IndicatorConfig, output: str | None = None) -> str:
    """The column :func:`compute_indicator` writes ``output`` to; ``None`` means the primary output.

    >>> output_column(IndicatorConfig(name="macd", feature_id="macd_fast"), "histogram")
    'macd_fast_histogram'

    Raises:
        StrategyError: ``output`` is not one of the indicator's outputs; the message lists them.
    """
    indicator = config.indicator
    if output is None or output == indicator.primary:
        return config.feature_id
    if output not in indicator.outputs:
        raise StrategyError(
            f"{indicator.name} has no output {output!r}; its outputs are: {', '.join(indicator.outputs)} "
            f"(the primary one, {indicator.primary}, is used when none is given)",
            details={"indicator": indicator.name, "output": output, "valid": list(indicator.outputs)},
        )
    return f"{config.feature_id}_{output}"


def warmup_bars(config: IndicatorConfig) -> int:
    """How many leading rows :func:`compute_indicator` leaves NaN: TA-Lib's lookback for these parameters.

    >>> warmup_bars(IndicatorConfig(name="sma", feature_id="sma_20", period=20))
    19
    """
    indicator = config.indicator
    # TA-Lib's stubs omit the abstract API, which is the only place lookbacks are exposed.
    function = talib.abstract.Function(indicator.talib_name)  # type: ignore[attr-defined]
    function.set_parameters(indicator.talib_kwargs(config.params))
    return int(function.lookback)


def _series(ohlcv: pd.DataFrame, column: str) -> FloatArray:
    return np.ascontiguousarray(ohlcv[column].to_numpy(dtype=np.float64))


_SOURCE_COLUMNS = {"hl2": ("high", "low"), "hlc3": ("high", "low", "close"), "ohlc4": ("open", "high", "low", "close")}
"""The columns averaged into each composite source."""


def _source(ohlcv: pd.DataFrame, source: str) -> FloatArray:
    columns = _SOURCE_COLUMNS.get(source, (source,))
    total = _series(ohlcv, columns[0])
    for column in columns[1:]:
        total = total + _series(ohlcv, column)
    return np.ascontiguousarray(total / len(columns), dtype=np.float64)


def _required_columns(indicator: IndicatorDef, params: Mapping[str, Any]) -> list[str]:
    columns: list[str] = []
    for name in indicator.inputs:
        if name == "source":
            columns.extend(_SOURCE_COLUMNS.get(params["source"], (params["source"],)))
        else:
            columns.append(name)
    return list(dict.fromkeys(columns))


def compute_indicator(config: IndicatorConfig, ohlcv: pd.DataFrame) -> pd.DataFrame:
    """Compute every output of one indicator over an OHLCV frame.

    Args:
        config: The validated indicator config.
        ohlcv: Bars with a sorted ``DatetimeIndex`` and float columns ``open, high, low, close, volume``.

    Returns:
        A frame on the same index: the primary output in column ``config.feature_id``, each other output in
        ``{feature_id}_{output}`` (see :func:`output_column`), outputs in :attr:`IndicatorDef.outputs` order. The
        first :func:`warmup_bars` rows are NaN.

    Raises:
        DataError: ``ohlcv`` lacks a column the indicator reads.
    """
    indicator = config.indicator
    params = config.params
    missing = [c for c in _required_columns(indicator, params) if c not in ohlcv.columns]
    if missing:
        raise DataError(
            f"{indicator.name} ({config.feature_id}) needs the column(s) {', '.join(missing)}, "
            f"but the data has only: {', '.join(map(str, ohlcv.columns))}",
            details={"feature_id": config.feature_id, "missing": missing},
        )
    source = _source(ohlcv, params["source"]) if "source" in params else _series(ohlcv, "close")
    arrays = [source if name == "source" else _series(ohlcv, name) for name in indicator.inputs]
    result = getattr(talib, indicator.talib_name)(*arrays, **indicator.talib_kwargs(params))
    raw_arrays = result if isinstance(result, tuple) else (result,)
    outputs: Outputs = dict(zip(indicator.talib_outputs, raw_arrays, strict=True))
    if indicator.derive is not None:
        outputs = indicator.derive(outputs, source)
    return pd.DataFrame(
        {output_column(config, name): np.asarray(outputs[name], dtype=np.float64) for name in indicator.outputs},
        index=ohlcv.index,
    )


def list_indicators() -> list[dict[str, Any]]:
    """Every indicator as plain, JSON-able data, for the API's and the CLI's listings."""
    return [
        {
            "name": d.name,
            "talib_name": d.talib_name,
            "description": d.description,
            "outputs": list(d.outputs),
            "primary_output": d.primary,
            "params": [
                {
                    "name": spec.name,
                    "kind": spec.kind,
                    "default": spec.default,
                    "description": spec.description,
                    **({"minimum": int(spec.minimum), "maximum": MAX_PERIOD} if spec.kind == "period" else {}),
                    **({"exclusive_minimum": spec.minimum} if spec.kind == "number" else {}),
                    **({"choices": list(SOURCES)} if spec.kind == "source" else {}),
                }
                for spec in d.params
            ],
        }
        for d in _DEFS
    ]
