"""Market data: files, validation, resampling, sample data and look-ahead-free alignment."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from trainops.errors import DataError
from trainops.pipeline.data import (
    OHLCV_COLUMNS,
    align_to_base,
    available_data,
    load_ohlcv,
    parse_timeframe,
    require_bars,
    resample_ohlcv,
    timeframe_delta,
    validate_ohlcv,
    write_sample_data,
)

CSV_HEADER = "timestamp,open,high,low,close,volume\n"


def bars(start: str, periods: int, freq: str = "h", *, seed: int = 0) -> pd.DataFrame:
    """A valid OHLCV frame of a random walk."""
    index = pd.date_range(start, periods=periods, freq=freq, name="timestamp").as_unit("ns")
    close = 100 + np.random.default_rng(seed).standard_normal(periods).cumsum()
    opens = np.concatenate([[100.0], close[:-1]])
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, close) + 0.5,
            "low": np.minimum(opens, close) - 0.5,
            "close": close,
            "volume": np.arange(1.0, periods + 1),
        },
        index=index,
    )


def weekdays_only(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[frame.index.day_of_week < 5]


def write_csv(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


# --- timeframes ---------------------------------------------------------------------------------------------------


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


# --- loading ------------------------------------------------------------------------------------------------------


def test_csv_round_trip(tmp_path: Path) -> None:
    frame = bars("2024-01-01", 50)
    frame.to_csv(tmp_path / "EURUSD_1h.csv", index_label="timestamp")

    loaded = load_ohlcv(tmp_path, "eurusd", "H1")

    pd.testing.assert_frame_equal(loaded, frame, check_freq=False)
    assert loaded.index.name == "timestamp" and loaded.index.tz is None
    assert loaded.attrs["source"] == "EURUSD 1h"


def test_parquet_round_trip(tmp_path: Path) -> None:
    frame = bars("2024-01-01", 50, "D")
    frame.to_parquet(tmp_path / "GOOG_1d.parquet")

    loaded = load_ohlcv(tmp_path, "GOOG", "1d")

    pd.testing.assert_frame_equal(loaded, frame, check_freq=False)
    [listed] = available_data(tmp_path)
    assert (listed.format, listed.bars, listed.start, listed.end) == (
        "parquet",
        50,
        datetime(2024, 1, 1),
        datetime(2024, 2, 19),
    )


@pytest.mark.parametrize(
    "text",
    [
        "Date,Open,High,Low,Close,Volume\n2024-01-01 10:00,1,2,0.5,1.5,10\n",
        "DATETIME,OPEN,HIGH,LOW,CLOSE,VOLUME\n2024-01-01T10:00:00,1,2,0.5,1.5,10\n",
        "time,open,high,low,close,volume,adj close\n2024-01-01 10:00:00,1,2,0.5,1.5,10,9\n",
        ",Open,High,Low,Close,Volume\n2024-01-01 10:00:00,1,2,0.5,1.5,10\n",
        "Date,Time,Open,High,Low,Close,Volume\n2024-01-01,10:00,1,2,0.5,1.5,10\n",
        "timestamp,open,high,low,close,volume\n2024-01-01T12:00:00+02:00,1,2,0.5,1.5,10\n",
    ],
    ids=["date", "upper-case", "time-and-extra-column", "unnamed-index", "date-and-time", "tz-aware"],
)
def test_timestamp_and_column_variants(tmp_path: Path, text: str) -> None:
    write_csv(tmp_path, "X_1h.csv", text)

    loaded = load_ohlcv(tmp_path, "X", "1h")

    assert list(loaded.columns) == list(OHLCV_COLUMNS)
    assert loaded.index.tolist() == [pd.Timestamp("2024-01-01 10:00")]
    assert loaded.iloc[0].tolist() == [1.0, 2.0, 0.5, 1.5, 10.0]
    assert all(dtype == np.float64 for dtype in loaded.dtypes)


def test_tz_aware_timestamps_become_naive_utc(tmp_path: Path) -> None:
    frame = bars("2024-03-30 23:00", 6)
    frame.index = frame.index.tz_localize("UTC").tz_convert("Europe/Berlin")  # 00:00+01:00, 01:00+01:00, 03:00+02:00
    frame.to_parquet(tmp_path / "X_1h.parquet")

    loaded = load_ohlcv(tmp_path, "X", "1h")

    assert loaded.index.tz is None
    assert loaded.index[0] == pd.Timestamp("2024-03-30 23:00")
    assert (loaded.index.to_series().diff().dropna() == pd.Timedelta(hours=1)).all()


@pytest.mark.parametrize(
    ("start", "end", "first", "last"),
    [
        ("2024-01-02", "2024-01-03", "2024-01-02 00:00", "2024-01-03 23:00"),  # a date-only end covers its day
        ("2024-01-02 05:00", "2024-01-02 07:00", "2024-01-02 05:00", "2024-01-02 07:00"),
        (date(2024, 1, 2), date(2024, 1, 2), "2024-01-02 00:00", "2024-01-02 23:00"),
        (datetime(2024, 1, 2, 5), datetime(2024, 1, 2, 7), "2024-01-02 05:00", "2024-01-02 07:00"),
        (pd.Timestamp("2024-01-03"), pd.Timestamp("2024-01-04"), "2024-01-03 00:00", "2024-01-04 00:00"),
        (None, "2024-01-01 02:00", "2024-01-01 00:00", "2024-01-01 02:00"),
        ("2024-01-04 22:00", None, "2024-01-04 22:00", "2024-01-04 23:00"),
        ("2024-01-02 05:00", "2024-01-02", "2024-01-02 05:00", "2024-01-02 23:00"),
        ("2024-01-02T06:00:00+01:00", "2024-01-02T07:00:00+01:00", "2024-01-02 05:00", "2024-01-02 06:00"),
    ],
)
def test_date_filter_is_inclusive(
    tmp_path: Path, start: str | date | None, end: str | date | None, first: str, last: str
) -> None:
    bars("2024-01-01", 96).to_csv(tmp_path / "X_1h.csv", index_label="timestamp")

    loaded = load_ohlcv(tmp_path, "X", "1h", start=start, end=end)

    assert (loaded.index[0], loaded.index[-1]) == (pd.Timestamp(first), pd.Timestamp(last))


# --- loading errors -----------------------------------------------------------------------------------------------


def test_missing_file_lists_the_available_ones(tmp_path: Path) -> None:
    bars("2024-01-01", 5).to_csv(tmp_path / "EURUSD_1h.csv", index_label="timestamp")
    bars("2024-01-01", 5, "D").to_csv(tmp_path / "GOOG_1d.csv", index_label="timestamp")

    with pytest.raises(
        DataError, match=r"no market data for EURUSD 1d: .*EURUSD_1d\.csv.* Available: EURUSD_1h, GOOG_1d"
    ):
        load_ohlcv(tmp_path, "EURUSD", "1d")


@pytest.mark.parametrize("exists", [True, False])
def test_empty_or_missing_directory_says_to_write_sample_data(tmp_path: Path, exists: bool) -> None:
    directory = tmp_path / "data"
    if exists:
        directory.mkdir()
    with pytest.raises(DataError, match=rf"holds no data files\. Run `trainops data sample --data-dir {directory}`"):
        load_ohlcv(directory, "EURUSD", "1h")


@pytest.mark.parametrize("symbol", ["../etc", "..", "a/b", "EUR USD", "", ".hidden", "x" * 33])
def test_hostile_or_malformed_symbols_are_refused(tmp_path: Path, symbol: str) -> None:
    with pytest.raises(DataError, match=r"invalid symbol .*letters, digits"):
        load_ohlcv(tmp_path, symbol, "1h")


def test_data_dir_that_is_a_file(tmp_path: Path) -> None:
    path = write_csv(tmp_path, "notes.txt", "hello")
    with pytest.raises(DataError, match="is a file, not a directory"):
        available_data(path)
    with pytest.raises(DataError, match="is a file, not a directory"):
        write_sample_data(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "timestamp,open,high,low,close\n2024-01-01,1,2,0.5,1\n",
            r"missing column\(s\) volume; found: open, high, low, close\. An OHLCV file needs",
        ),
        ("timestamp,open,hi,lo,close,volume\n2024-01-01,1,2,0.5,1,1\n", r"missing column\(s\) high, low; found: "),
        (
            "timestamp,open,high,low,close,volume\n2024-01-01,1,2,0.5,abc,1\n",
            r"column close is not numeric \(e\.g\. 'abc' at 2024-01-01\)",
        ),
        (
            CSV_HEADER + "2024-01-01 00:00,1,2,0.5,1,1\n2024-01-01 01:00,1,2,0.5,,1\n2024-01-01 02:00,1,inf,0.5,1,1\n",
            r"2 row\(s\) have NaN or infinite values, first at 2024-01-01 01:00 \(in close\)",
        ),
        (
            CSV_HEADER + "2024-01-01 00:00,1,2,0.5,1,1\n2024-01-01 02:00,1,2,0.5,1,1\n2024-01-01 01:00,1,2,0.5,1,1\n",
            r"not sorted: 2024-01-01 01:00 comes after 2024-01-01 02:00; sort the rows",
        ),
        (
            CSV_HEADER + "2024-01-01 00:00,1,2,0.5,1,1\n2024-01-01 01:00,1,2,0.5,1,1\n2024-01-01 01:00,1,2,0.5,1,1\n",
            r"duplicate timestamp 2024-01-01 01:00 \(1 repeat\(s\)\)",
        ),
        (
            CSV_HEADER + "2024-01-01 00:00,1,2,0.5,1,1\n2024-01-01 01:00,1,0.4,0.5,1,1\n",
            r"high is below low on 1 row\(s\), first at 2024-01-01 01:00 \(high 0\.4, low 0\.5\)",
        ),
        ("open,high,low,close,volume\n1,2,0.5,1,1\n", r"no timestamp column; name one timestamp.*Found: open, high"),
        (CSV_HEADER + "2024-01-01,1,2,0.5,1,1\nsoon,1,2,0.5,1,1\n", r"1 row\(s\) have no readable timestamp.*'soon'"),
        (CSV_HEADER + "1704067200,1,2,0.5,1,1\n", r"holds numbers, not dates"),
        (CSV_HEADER, r"has no bars"),
    ],
    ids=[
        "missing-volume",
        "missing-two",
        "not-numeric",
        "nan-and-inf",
        "unsorted",
        "duplicate",
        "high-below-low",
        "no-timestamp",
        "bad-timestamp",
        "epoch-numbers",
        "empty",
    ],
)
def test_invalid_files_are_refused_with_the_reason(tmp_path: Path, body: str, message: str) -> None:
    write_csv(tmp_path, "X_1h.csv", body)
    with pytest.raises(DataError, match=message) as caught:
        load_ohlcv(tmp_path, "X", "1h")
    assert "X_1h.csv" in caught.value.message


@pytest.mark.parametrize(
    ("start", "end", "message"),
    [
        ("2024-01-03", "2024-01-02", r"start 2024-01-03 is after end 2024-01-02; swap them"),
        ("2025-01-01", None, r"no bars between 2025-01-01 and 2024-01-01 23:00"),
        ("2023-01-01", "2023-02-01", r"no bars between 2023-01-01 and 2023-02-01"),
        ("yesterday-ish", None, r"start 'yesterday-ish' is not a date; use YYYY-MM-DD"),
    ],
)
def test_bad_date_ranges_name_the_files_range(tmp_path: Path, start: str, end: str | None, message: str) -> None:
    bars("2024-01-01", 24).to_csv(tmp_path / "X_1h.csv", index_label="timestamp")
    with pytest.raises(DataError, match=message) as caught:
        load_ohlcv(tmp_path, "X", "1h", start=start, end=end)
    if "not a date" not in message:
        assert "X_1h.csv has 24 bars from 2024-01-01 to 2024-01-01 23:00" in caught.value.message


def test_csv_and_parquet_for_the_same_data_is_ambiguous(tmp_path: Path) -> None:
    frame = bars("2024-01-01", 5)
    frame.to_csv(tmp_path / "X_1h.csv", index_label="timestamp")
    frame.to_parquet(tmp_path / "X_1h.parquet")
    with pytest.raises(DataError, match=r"both X_1h\.csv and X_1h\.parquet exist .* keep one"):
        load_ohlcv(tmp_path, "X", "1h")


def test_validate_refuses_a_frame_without_a_datetime_index() -> None:
    with pytest.raises(
        DataError, match=r"memory: the index must be bar open times \(a DatetimeIndex\), not RangeIndex"
    ):
        validate_ohlcv(bars("2024-01-01", 3).reset_index(), "memory")


# --- listing and warm-up ------------------------------------------------------------------------------------------


def test_available_data_is_sorted_and_ignores_other_files(tmp_path: Path) -> None:
    assert available_data(tmp_path / "missing") == []
    bars("2024-01-01", 10, "D").to_csv(tmp_path / "EURUSD_1d.csv", index_label="timestamp")
    bars("2024-01-01", 30).to_csv(tmp_path / "EURUSD_1h.csv", index_label="timestamp")
    bars("2024-01-01", 7, "W-MON").to_parquet(tmp_path / "AAPL_1w.parquet")
    write_csv(tmp_path, "README.md", "not data")
    write_csv(tmp_path, "EURUSD_H1.csv", CSV_HEADER)  # non-canonical timeframe: not listed
    write_csv(tmp_path, "eurusd_1h.csv", CSV_HEADER)  # lower-case symbol: not listed

    listed = available_data(tmp_path)

    assert [(f.symbol, f.timeframe, f.format, f.bars) for f in listed] == [
        ("AAPL", "1w", "parquet", 7),
        ("EURUSD", "1h", "csv", 30),
        ("EURUSD", "1d", "csv", 10),
    ]
    assert listed[1].start == datetime(2024, 1, 1) and listed[1].end == datetime(2024, 1, 2, 5)
    assert listed[1].path == tmp_path / "EURUSD_1h.csv" and listed[1].name == "EURUSD_1h"


def test_require_bars_names_the_data_and_the_need(tmp_path: Path) -> None:
    bars("2024-01-01", 40, "D").to_csv(tmp_path / "EURUSD_1d.csv", index_label="timestamp")
    frame = load_ohlcv(tmp_path, "EURUSD", "1d")

    require_bars(frame, 40, "the indicators")
    with pytest.raises(
        DataError,
        match=r"^EURUSD 1d has 40 bar\(s\) between 2024-01-01 and 2024-02-09; at least 60 are needed for the "
        r"indicators \(warm-up 33 \+ 27 to train on\)\. Load a wider date range",
    ):
        require_bars(frame, 60, "the indicators (warm-up 33 + 27 to train on)")
    with pytest.raises(DataError, match=r"^GOOG 1w has 0 bar\(s\); at least 1"):
        require_bars(frame.iloc[:0], 1, "anything", source="GOOG 1w")


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


# --- sample data --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sample_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sample") / "data"
    write_sample_data(directory)
    return directory


def test_sample_data_is_the_real_history(sample_dir: Path) -> None:
    listed = {f.name: f for f in available_data(sample_dir)}
    assert list(listed) == ["EURUSD_1h", "EURUSD_4h", "EURUSD_1d", "GOOG_1d", "GOOG_1w"]
    hourly = load_ohlcv(sample_dir, "EURUSD", "1h")
    assert len(hourly) == listed["EURUSD_1h"].bars == 5000
    assert hourly["close"].iloc[0] == 1.07219
    assert (hourly.index[0], hourly.index[-1]) == (pd.Timestamp("2017-04-19 09:00"), pd.Timestamp("2018-02-07 15:00"))
    goog = load_ohlcv(sample_dir, "GOOG", "1d")
    assert len(goog) == 2148 and goog.index[0] == pd.Timestamp("2004-08-19")


def test_sample_higher_timeframes_agree_with_the_hourly(sample_dir: Path) -> None:
    hourly = load_ohlcv(sample_dir, "EURUSD", "1h")
    daily = load_ohlcv(sample_dir, "EURUSD", "1d")
    four = load_ohlcv(sample_dir, "EURUSD", "4h")

    for day in (daily.index[1], daily.index[100], daily.index[-1]):
        hours = hourly.loc[day : day + pd.Timedelta(hours=23)]
        assert daily.loc[day, "high"] == hours["high"].max()
        assert daily.loc[day, "low"] == hours["low"].min()
        assert daily.loc[day, "open"] == hours["open"].iloc[0]
        assert daily.loc[day, "close"] == hours["close"].iloc[-1]
        assert daily.loc[day, "volume"] == hours["volume"].sum()
    assert daily.index[-1] == pd.Timestamp("2018-02-06")  # 2018-02-07 ends at 16:00 in the data: incomplete
    assert four.loc["2017-04-20 08:00", "high"] == hourly.loc["2017-04-20 08:00":"2017-04-20 11:00", "high"].max()
    assert four["volume"].sum() == hourly["volume"].sum()  # the last 4h bar (12:00-16:00) is complete
    weekly = load_ohlcv(sample_dir, "GOOG", "1w")
    assert weekly.index[0] == pd.Timestamp("2004-08-16") and (weekly.index.day_of_week == 0).all()


def test_sample_data_is_idempotent_and_leaves_other_files_alone(tmp_path: Path) -> None:
    first = write_sample_data(tmp_path)
    contents = {f.path: f.path.read_bytes() for f in first}
    mine = write_csv(tmp_path, "MINE_1h.csv", "keep me")
    (tmp_path / "EURUSD_1h.csv").write_text("clobbered")

    second = write_sample_data(tmp_path)

    assert second == first
    assert {f.path: f.path.read_bytes() for f in second} == contents
    assert mine.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*(f.path.name for f in first), "MINE_1h.csv"])


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
