"""The indicator registry, its config validation, and the computed columns against TA-Lib called directly."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
import talib
from pydantic import ValidationError

from trainops.errors import DataError, StrategyError
from trainops.pipeline.indicators import (
    INDICATORS,
    IndicatorConfig,
    compute_indicator,
    get_indicator,
    list_indicators,
    output_column,
    warmup_bars,
)


def random_walk_ohlcv(bars: int = 300, seed: int = 7) -> pd.DataFrame:
    """Consistent bars: high >= max(open, close), low <= min(open, close), positive volume."""
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.01, bars)))
    open_ = np.r_[close[0], close[:-1]] * (1 + rng.normal(0.0, 0.002, bars))
    high = np.maximum(open_, close) * (1 + rng.uniform(0.0, 0.01, bars))
    low = np.minimum(open_, close) * (1 - rng.uniform(0.0, 0.01, bars))
    volume = rng.uniform(1_000.0, 10_000.0, bars)
    index = pd.date_range("2024-01-01", periods=bars, freq="h", name="timestamp")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index)


OHLCV = random_walk_ohlcv()
H, L, C, V = (OHLCV[column].to_numpy() for column in ("high", "low", "close", "volume"))


def percent_b(upper: np.ndarray, middle: np.ndarray, lower: np.ndarray) -> np.ndarray:
    return np.asarray((C - lower) / (upper - lower))


# name, extra parameters, TA-Lib computing the primary output directly
DIRECT: list[tuple[str, dict[str, Any], Any]] = [
    ("rsi", {"period": 9}, lambda: talib.RSI(C, timeperiod=9)),
    ("sma", {"period": 5}, lambda: talib.SMA(C, timeperiod=5)),
    ("ema", {}, lambda: talib.EMA(C, timeperiod=20)),
    ("macd", {"fast_period": 5, "slow_period": 13}, lambda: talib.MACD(C, 5, 13, 9)[0]),
    ("bbands", {"period": 10, "multiplier": 1.5}, lambda: percent_b(*talib.BBANDS(C, 10, 1.5, 1.5))),
    ("atr", {"period": 7}, lambda: talib.ATR(H, L, C, timeperiod=7)),
    ("stoch", {}, lambda: talib.STOCH(H, L, C, fastk_period=14, slowk_period=3, slowd_period=3)[0]),
    ("williams_r", {}, lambda: talib.WILLR(H, L, C, timeperiod=14)),
    ("cci", {"period": 20}, lambda: talib.CCI(H, L, C, timeperiod=20)),
    ("adx", {}, lambda: talib.ADX(H, L, C, timeperiod=14)),
    ("obv", {}, lambda: talib.OBV(C, V)),
    ("mfi", {}, lambda: talib.MFI(H, L, C, V, timeperiod=14)),
    ("roc", {"period": 3}, lambda: talib.ROC(C, timeperiod=3)),
    ("momentum", {"source": "hl2"}, lambda: talib.MOM((H + L) / 2, timeperiod=10)),
]


def config(name: str, feature_id: str = "feat", **params: Any) -> IndicatorConfig:
    return IndicatorConfig.model_validate({"name": name, "feature_id": feature_id, **params})


def test_every_registered_indicator_is_covered() -> None:
    assert sorted(name for name, _, _ in DIRECT) == sorted(INDICATORS)


@pytest.mark.parametrize(("name", "params", "direct"), DIRECT, ids=[name for name, _, _ in DIRECT])
def test_primary_output_matches_talib(name: str, params: dict[str, Any], direct: Any) -> None:
    cfg = config(name, "x", **params)

    frame = compute_indicator(cfg, OHLCV)

    assert frame.index.equals(OHLCV.index)
    np.testing.assert_allclose(frame["x"].to_numpy(), direct(), equal_nan=True, rtol=1e-12)
    assert frame["x"].notna().sum() > 100  # not trivially all-NaN


@pytest.mark.parametrize(("name", "params", "direct"), DIRECT, ids=[name for name, _, _ in DIRECT])
def test_warmup_bars_is_the_count_of_leading_nans(name: str, params: dict[str, Any], direct: Any) -> None:
    cfg = config(name, **params)

    frame = compute_indicator(cfg, OHLCV)

    for column in frame.columns:
        first_valid = int(np.argmax(frame[column].notna().to_numpy()))
        assert first_valid == warmup_bars(cfg), column


@pytest.mark.parametrize(
    ("name", "columns"),
    [
        ("rsi", ["rsi_14"]),
        ("macd", ["rsi_14", "rsi_14_signal", "rsi_14_histogram"]),
        ("bbands", ["rsi_14", "rsi_14_upper", "rsi_14_middle", "rsi_14_lower", "rsi_14_width"]),
        ("stoch", ["rsi_14", "rsi_14_d"]),
    ],
)
def test_column_names_primary_is_feature_id_then_others_suffixed(name: str, columns: list[str]) -> None:
    assert list(compute_indicator(config(name, "rsi_14"), OHLCV).columns) == columns


def test_macd_outputs_are_consistent() -> None:
    frame = compute_indicator(config("macd", "m"), OHLCV).dropna()

    np.testing.assert_allclose(frame["m_histogram"], frame["m"] - frame["m_signal"], atol=1e-12)


def test_bbands_outputs() -> None:
    frame = compute_indicator(config("bbands", "bb", period=20, multiplier=2.0), OHLCV).dropna()
    upper, middle, lower = talib.BBANDS(C, 20, 2.0, 2.0)
    valid = ~np.isnan(middle)

    np.testing.assert_allclose(frame["bb_upper"], upper[valid])
    np.testing.assert_allclose(frame["bb_middle"], middle[valid])
    np.testing.assert_allclose(frame["bb_lower"], lower[valid])
    np.testing.assert_allclose(frame["bb_width"], (upper - lower)[valid] / middle[valid])
    assert ((frame["bb"] < 0) | (frame["bb"] > 1)).any()  # %B leaves [0, 1] when price leaves the bands
    assert frame["bb"].between(-1, 2).all()


def test_bbands_percent_b_on_a_flat_series_is_nan_not_inf() -> None:
    flat = OHLCV.assign(close=123.456, open=123.456, high=123.456, low=123.456)

    frame = compute_indicator(config("bbands", "bb"), flat)

    assert not np.isinf(frame.to_numpy()).any()
    assert frame["bb"].isna().all()
    assert (frame["bb_width"].dropna() == 0).all()


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("open", OHLCV["open"]),
        ("volume", OHLCV["volume"]),
        ("hlc3", (OHLCV["high"] + OHLCV["low"] + OHLCV["close"]) / 3),
        ("ohlc4", (OHLCV["open"] + OHLCV["high"] + OHLCV["low"] + OHLCV["close"]) / 4),
    ],
)
def test_source_selects_the_series(source: str, expected: pd.Series) -> None:
    frame = compute_indicator(config("sma", period=1, source=source), OHLCV)

    np.testing.assert_allclose(frame["feat"], expected, rtol=1e-12)


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [("WILLR", "williams_r"), ("mom", "momentum"), ("Bbands", "bbands"), ("RSI", "rsi"), ("Williams_R", "williams_r")],
)
def test_aliases_resolve_to_the_canonical_name(alias: str, canonical: str) -> None:
    cfg = config(alias)

    assert cfg.name == canonical
    assert cfg.indicator is INDICATORS[canonical]
    assert get_indicator(alias) is INDICATORS[canonical]


@pytest.mark.parametrize(
    ("name", "given", "params"),
    [
        ("rsi", {}, {"period": 14, "source": "close"}),
        ("macd", {"signal_period": 5.0}, {"fast_period": 12, "slow_period": 26, "signal_period": 5, "source": "close"}),
        ("bbands", {"multiplier": 1}, {"period": 20, "multiplier": 1.0, "source": "close"}),
        ("stoch", {"k_period": 5}, {"k_period": 5, "d_period": 3, "smooth_k": 3}),
        ("obv", {}, {}),
        ("roc", {"source": "HLC3"}, {"period": 10, "source": "hlc3"}),
    ],
)
def test_params_are_validated_and_defaults_filled(name: str, given: dict[str, Any], params: dict[str, Any]) -> None:
    cfg = config(name, **given)

    assert cfg.params == params
    assert cfg.params == {key: value for key, value in cfg.model_dump().items() if key not in ("name", "feature_id")}


def test_config_dump_reloads_to_the_same_config() -> None:
    cfg = config("WILLR", "wr", period=21)

    assert IndicatorConfig.model_validate(json.loads(cfg.model_dump_json())) == cfg


def test_unknown_indicator_lists_the_valid_names() -> None:
    with pytest.raises(ValidationError, match=r"unknown indicator 'rsx'; valid indicators are: rsi, sma, ema, macd"):
        config("rsx")
    with pytest.raises(StrategyError, match=r"williams_r, cci, adx, obv, mfi, roc, momentum"):
        get_indicator("rsx")


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("rsi", {"length": 14}, r"rsi has no parameter 'length'; its parameters are: period, source"),
        ("macd", {"period": 14}, r"its parameters are: fast_period, slow_period, signal_period, source"),
        ("obv", {"period": 3}, r"obv has no parameter 'period'; its parameters are: none"),
        ("atr", {"source": "hl2"}, r"atr has no parameter 'source'; its parameters are: period"),
        ("rsi", {"period": 1}, r"rsi parameter period must be a whole number from 2 to 100000, got 1"),
        ("sma", {"period": 0}, r"sma parameter period must be a whole number from 1 to 100000, got 0"),
        ("sma", {"period": 2.5}, r"got 2.5"),
        ("sma", {"period": True}, r"got True"),
        ("sma", {"period": "14"}, r"got '14'"),
        ("sma", {"period": 100_001}, r"got 100001"),
        ("rsi", {"source": "typical"}, r"source must be one of open, high, low, close, volume, hl2, hlc3, ohlc4"),
        ("bbands", {"multiplier": 0}, r"multiplier must be a finite number greater than 0, got 0"),
        ("bbands", {"multiplier": float("inf")}, r"multiplier must be a finite number greater than 0, got inf"),
        ("bbands", {"multiplier": -1.0}, r"got -1.0"),
        ("macd", {"fast_period": 26}, r"macd needs fast_period < slow_period, got fast_period=26 and slow_period=26"),
        ("macd", {"fast_period": 30, "slow_period": 10}, r"fast_period=30 and slow_period=10"),
    ],
)
def test_invalid_parameters_are_refused_with_the_fix(name: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        config(name, **params)
    with pytest.raises(StrategyError, match=message):
        get_indicator(name).resolve_params(params)


@pytest.mark.parametrize("feature_id", ["14rsi", "rsi-14", "", "rsi 14"])
def test_feature_id_must_be_an_identifier(feature_id: str) -> None:
    with pytest.raises(ValidationError, match="feature_id"):
        config("rsi", feature_id)


@pytest.mark.parametrize(
    ("name", "output", "column"),
    [
        ("macd", None, "m"),
        ("macd", "line", "m"),
        ("macd", "histogram", "m_histogram"),
        ("bbands", "width", "m_width"),
        ("rsi", "value", "m"),
    ],
)
def test_output_column(name: str, output: str | None, column: str) -> None:
    assert output_column(config(name, "m"), output) == column


def test_output_column_refuses_an_unknown_output_listing_the_valid_ones() -> None:
    with pytest.raises(StrategyError, match=r"macd has no output 'hist'; its outputs are: line, signal, histogram"):
        output_column(config("macd"), "hist")


def test_missing_columns_are_a_data_error_naming_them() -> None:
    with pytest.raises(DataError, match=r"mfi \(feat\) needs the column\(s\) volume"):
        compute_indicator(config("mfi"), OHLCV.drop(columns="volume"))


def test_short_data_is_all_warmup() -> None:
    frame = compute_indicator(config("sma", period=50), OHLCV.iloc[:10])

    assert len(frame) == 10
    assert frame["feat"].isna().all()


def test_list_indicators_is_plain_json_data() -> None:
    listing = list_indicators()

    assert [entry["name"] for entry in listing] == list(INDICATORS)
    assert json.loads(json.dumps(listing)) == listing
    rsi = listing[0]
    assert rsi["talib_name"] == "RSI"
    assert rsi["primary_output"] == "value"
    assert rsi["params"][0] == {
        "name": "period",
        "kind": "period",
        "default": 14,
        "description": "bars in the window",
        "minimum": 2,
        "maximum": 100_000,
    }
