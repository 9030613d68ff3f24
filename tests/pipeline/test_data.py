"""OHLCV frames: timeframes, symbols, validation, resampling and look-ahead-free alignment."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from tests.pipeline.ohlcv import bars, weekdays_only
from trainops.errors import DataError
from trainops.pipeline.data import (
    OHLCV_COLUMNS,
    align_to_base,
    normalize_symbol,
    parse_timeframe,
    readable_time,
    require_bars,
    resample_ohlcv,
    timeframe_delta,
    validate_ohlcv,
)

# --- timeframes and symbols ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1h", "1h"),
        ("1H", "1h"),
        ("60m", "1h"),
        ("H1", "1h"),
        ("hourly", "1h"),
        (" 4H ", "4h"),
        ("240m", "4h"),
        ("15min", "15m"),
        ("M5", "5m"),
        ("1D", "1d"),
        ("D1", "1d"),
        ("Daily", "1d"),
        ("1W", "1w"),
        ("weekly", "1w"),
    ],
)
def test_parse_timeframe_accepts_aliases(text: str, expected: str) -> None:
    assert parse_timeframe(text) == expected


def test_unknown_timeframe_lists_the_valid_ones() -> None:
    with pytest.raises(DataError, match=r"unknown timeframe '3h'; use one of 1m, 5m, 15m, 30m, 1h, 2h, 4h, 1d, 1w"):
        parse_timeframe("3h")
    with pytest.raises(DataError, match=r"'1M' is ambiguous .* write 1m"):
        parse_timeframe("1M")


def test_timeframe_delta() -> None:
    assert timeframe_delta("H4") == pd.Timedelta(hours=4)
    assert timeframe_delta("1w") == pd.Timedelta(days=7)


@pytest.mark.parametrize(
    ("symbol", "expected"),
    [("eurusd", "EURUSD"), (" brk.b ", "BRK.B"), ("X_1-2", "X_1-2"), ("9" * 32, "9" * 32)],
)
def test_normalize_symbol_upper_cases_safe_names(symbol: str, expected: str) -> None:
    assert normalize_symbol(symbol) == expected


@pytest.mark.parametrize("symbol", ["../etc", "..", "a/b", "EUR USD", "", ".hidden", "x" * 33])
def test_normalize_symbol_refuses_what_could_leave_the_data_directory(symbol: str) -> None:
    with pytest.raises(DataError, match=r"invalid symbol .*letters, digits"):
        normalize_symbol(symbol)


# --- validation and warm-up ---------------------------------------------------------------------------------------


def test_validate_refuses_a_frame_without_a_datetime_index() -> None:
    with pytest.raises(
        DataError, match=r"memory: the index must be bar open times \(a DatetimeIndex\), not RangeIndex"
    ):
        validate_ohlcv(bars("2024-01-01", 3).reset_index(), "memory")


def test_validate_returns_the_canonical_form() -> None:
    index = pd.date_range("2024-01-01 01:00", periods=3, freq="h", tz="Europe/Berlin")
    raw = pd.DataFrame(
        {"Close": [1, 2, 3], "Open": [1, 2, 3], "HIGH": [2, 3, 4], "low": ["0.5", "1.5", "2.5"], "Volume": 1, "x": 0},
        index=index,
    )

    frame = validate_ohlcv(raw, "memory")

    assert list(frame.columns) == list(OHLCV_COLUMNS)
    assert all(dtype == np.float64 for dtype in frame.dtypes)
    assert frame.index.name == "timestamp" and frame.index.tz is None
    assert frame.index[0] == pd.Timestamp("2024-01-01 00:00")  # 01:00 in Berlin is midnight UTC
    assert frame["low"].tolist() == [0.5, 1.5, 2.5]


@pytest.mark.parametrize(
    ("stamp", "expected"),
    [
        ("2024-01-31", "2024-01-31"),
        ("2024-01-31 14:00", "2024-01-31 14:00"),
        ("2024-01-31 14:00:30", "2024-01-31 14:00:30"),
    ],
)
def test_readable_time_drops_what_is_zero(stamp: str, expected: str) -> None:
    assert readable_time(pd.Timestamp(stamp)) == expected


def test_require_bars_names_the_data_and_the_need() -> None:
    frame = bars("2024-01-01", 40, "D")
    frame.attrs["source"] = "EURUSD 1d"  # as load_ohlcv names what it read

    require_bars(frame, 40, "the indicators")
    with pytest.raises(
        DataError,
        match=r"^EURUSD 1d has 40 bar\(s\) between 2024-01-01 and 2024-02-09; at least 60 are needed for the "
        r"indicators \(warm-up 33 \+ 27 to train on\)\. Load a wider date range",
    ):
        require_bars(frame, 60, "the indicators (warm-up 33 + 27 to train on)")
    with pytest.raises(DataError, match=r"^GOOG 1w has 0 bar\(s\); at least 1"):
        require_bars(frame.iloc[:0], 1, "anything", source="GOOG 1w")
    with pytest.raises(DataError, match=r"^the data has 0 bar\(s\)"):
        require_bars(bars("2024-01-01", 1).iloc[:0], 1, "anything")


# --- resampling ---------------------------------------------------------------------------------------------------


def friday_and_monday() -> pd.DataFrame:
    """Hourly bars on Friday 2024-01-05 and Monday 2024-01-08 (a weekend between): open i, close i + 0.25."""
    index = pd.date_range("2024-01-05", periods=24, freq="h").append(pd.date_range("2024-01-08", periods=24, freq="h"))
    i = np.arange(48.0)
    return pd.DataFrame({"open": i, "high": i + 0.5, "low": i - 0.5, "close": i + 0.25, "volume": i + 1}, index=index)


def test_resample_to_4h_and_1d_gives_known_bars() -> None:
    hourly = friday_and_monday()

    four = resample_ohlcv(hourly, "4h")
    daily = resample_ohlcv(hourly, "1d")

    assert len(four) == 12
    assert four.loc["2024-01-05 04:00"].tolist() == [4.0, 7.5, 3.5, 7.25, 5 + 6 + 7 + 8]
    assert four.loc["2024-01-08 20:00"].tolist() == [44.0, 47.5, 43.5, 47.25, 45 + 46 + 47 + 48]
    assert daily.index.tolist() == [pd.Timestamp("2024-01-05"), pd.Timestamp("2024-01-08")]  # no weekend bars
    assert daily.loc["2024-01-05"].tolist() == [0.0, 23.5, -0.5, 23.25, float(sum(range(1, 25)))]
    assert daily.loc["2024-01-08"].tolist() == [24.0, 47.5, 23.5, 47.25, float(sum(range(25, 49)))]
    assert four.index.name == "timestamp" and list(four.columns) == list(OHLCV_COLUMNS)


def test_incomplete_last_period_is_dropped() -> None:
    hourly = friday_and_monday()

    assert resample_ohlcv(hourly.iloc[:-1], "1d").index[-1] == pd.Timestamp("2024-01-05")  # Monday lacks 23:00
    assert resample_ohlcv(hourly.iloc[:-1], "4h").index[-1] == pd.Timestamp("2024-01-08 16:00")
    assert resample_ohlcv(hourly.iloc[:-4], "4h").index[-1] == pd.Timestamp("2024-01-08 16:00")  # 16-19 complete
    assert resample_ohlcv(hourly.iloc[:-5], "4h").index[-1] == pd.Timestamp("2024-01-08 12:00")
    # A gap inside a period does not make it incomplete once later data exists.
    gappy = hourly.drop(pd.Timestamp("2024-01-05 05:00"))
    assert pd.Timestamp("2024-01-05 04:00") in resample_ohlcv(gappy, "4h").index


def test_weekly_bars_open_on_monday_and_weekend_gaps_make_no_bars() -> None:
    daily = weekdays_only(bars("2024-01-01", 28, "D"))  # Mon 2024-01-01 .. Sun 2024-01-28

    weekly = resample_ohlcv(daily, "1w", source_timeframe="1d")

    # The fourth week ends on Friday 2024-01-26: without Saturday/Sunday data it is not known to be complete.
    assert weekly.index.tolist() == [pd.Timestamp("2024-01-01"), pd.Timestamp("2024-01-08"), pd.Timestamp("2024-01-15")]
    first_week = daily.loc["2024-01-01":"2024-01-05"]
    assert weekly.iloc[0]["high"] == first_week["high"].max()
    assert weekly.iloc[0]["open"] == first_week["open"].iloc[0]
    hourly = weekdays_only(bars("2024-01-01", 24 * 14))
    assert not resample_ohlcv(hourly, "1d").index.day_of_week.isin([5, 6]).any()


def test_resample_refuses_shorter_timeframes_and_unknown_bar_lengths() -> None:
    with pytest.raises(DataError, match=r"cannot resample 1d bars to 1h: resampling only aggregates"):
        resample_ohlcv(bars("2024-01-01", 5, "D"), "1h")
    with pytest.raises(DataError, match="pass source_timeframe"):
        resample_ohlcv(bars("2024-01-01", 1), "1d")


# --- alignment ----------------------------------------------------------------------------------------------------

Aligner = Callable[[pd.DataFrame, str, pd.DatetimeIndex, str], pd.DataFrame]


def leaky_align(frame: pd.DataFrame, timeframe: str, base_index: pd.DatetimeIndex, base_timeframe: str) -> pd.DataFrame:
    """The classic mistake: a higher bar is used from its open time on, before its values are known."""
    return frame.reindex(base_index, method="ffill")


def features(raw: pd.DataFrame, align: Aligner) -> pd.DataFrame:
    """Higher-timeframe features on the hourly bars, the way the strategy pipeline builds them."""
    four = resample_ohlcv(raw, "4h", source_timeframe="1h")
    daily = resample_ohlcv(raw, "1d", source_timeframe="1h")
    index = pd.DatetimeIndex(raw.index)
    return pd.concat(
        [
            align(four[["close"]].rolling(3).mean().add_prefix("sma3_4h_"), "4h", index, "1h"),
            align(four[["high"]].add_prefix("last_4h_"), "4h", index, "1h"),
            align(daily[["close"]].rolling(2).mean().add_prefix("sma2_1d_"), "1d", index, "1h"),
        ],
        axis=1,
    )


CUTS = [
    "2024-01-03 03:00",  # closes at 04:00 together with a 4h bar
    "2024-01-03 05:00",  # inside a 4h bar
    "2024-01-03 23:00",  # closes with the day
    "2024-01-04 00:00",  # first bar of a day
    "2024-01-08 10:00",  # after a weekend gap
    "2024-01-10 13:00",
]


def assert_no_look_ahead(raw: pd.DataFrame, align: Aligner) -> None:
    full = features(raw, align)
    for cut in CUTS:
        truncated = raw.loc[:cut]  # everything known at the close of the bar opening at `cut`
        pd.testing.assert_frame_equal(features(truncated, align), full.loc[:cut], obj=f"features up to {cut}")


def test_alignment_never_looks_ahead() -> None:
    raw = weekdays_only(bars("2024-01-01", 24 * 12, seed=7))

    assert_no_look_ahead(raw, align_to_base)
    with pytest.raises(AssertionError):  # the check catches the classic leak, so its pass above means something
        assert_no_look_ahead(raw, leaky_align)


def test_the_first_base_bar_to_see_a_higher_bar_closes_with_it() -> None:
    raw = bars("2024-01-01", 48)
    four = resample_ohlcv(raw, "4h")
    daily = resample_ohlcv(raw, "1d")

    aligned = align_to_base(four[["close"]], "4h", pd.DatetimeIndex(raw.index), "1h")["close"]
    aligned_daily = align_to_base(daily[["close"]], "1d", pd.DatetimeIndex(raw.index), "1h")["close"]

    assert aligned.loc[:"2024-01-01 02:00"].isna().all()
    assert aligned.loc["2024-01-01 03:00"] == four.loc["2024-01-01 00:00", "close"]  # 4h bar closes at 04:00
    assert aligned.loc["2024-01-01 10:00"] == four.loc["2024-01-01 04:00", "close"]
    assert (
        aligned.loc["2024-01-01 11:00"] == four.loc["2024-01-01 08:00", "close"] == raw.loc["2024-01-01 11:00", "close"]
    )
    assert aligned_daily.loc[:"2024-01-01 22:00"].isna().all()
    assert aligned_daily.loc["2024-01-01 23:00"] == daily.loc["2024-01-01", "close"]
    assert aligned_daily.loc["2024-01-02 22:00"] == daily.loc["2024-01-01", "close"]


def test_align_onto_a_same_or_longer_base_uses_bars_closed_by_the_base_close() -> None:
    hourly = bars("2024-01-01", 48)[["close"]]
    days = pd.DatetimeIndex(["2024-01-01", "2024-01-02"])

    aligned = align_to_base(hourly, "1h", days, "1d")

    assert aligned["close"].tolist() == [hourly["close"].iloc[23], hourly["close"].iloc[47]]
    assert aligned.index.equals(days)


def test_align_refuses_unsorted_values_and_is_fast() -> None:
    four = resample_ohlcv(bars("2024-01-01", 48), "4h")[["close"]]
    with pytest.raises(DataError, match=r"the 4h values: timestamps are not sorted"):
        align_to_base(four.iloc[::-1], "4h", pd.DatetimeIndex(four.index), "1h")

    base = bars("2000-01-01", 100_000)
    higher = resample_ohlcv(base, "4h")
    started = time.perf_counter()
    aligned = align_to_base(higher, "4h", pd.DatetimeIndex(base.index), "1h")
    assert time.perf_counter() - started < 1.0
    assert aligned["close"].iloc[-1] == higher["close"].iloc[-1]
