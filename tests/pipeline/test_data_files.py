"""Market data files: reading, listing, the errors a bad file or directory gives, and the sample data."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.pipeline.ohlcv import bars
from trainops.errors import DataError
from trainops.pipeline.data import OHLCV_COLUMNS
from trainops.pipeline.data_files import available_data, load_ohlcv, write_sample_data

CSV_HEADER = "timestamp,open,high,low,close,volume\n"


def write_csv(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text)
    return path


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


# --- listing ------------------------------------------------------------------------------------------------------


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
    stamps = {f.path: f.path.stat().st_mtime_ns for f in first}
    mine = write_csv(tmp_path, "MINE_1h.csv", "keep me")

    second = write_sample_data(tmp_path)

    assert second == first
    assert {f.path: f.path.read_bytes() for f in second} == contents
    assert {f.path: f.path.stat().st_mtime_ns for f in second} == stamps  # already the sample: not rewritten
    assert mine.read_text() == "keep me"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*(f.path.name for f in first), "MINE_1h.csv"])


def test_sample_data_never_replaces_other_data_unasked(tmp_path: Path) -> None:
    first = write_sample_data(tmp_path / "reference")
    mine = write_csv(tmp_path, "EURUSD_1h.csv", "timestamp,open,high,low,close,volume\n")
    (tmp_path / "GOOG_1w.csv").write_bytes(b"\xff not even text")

    with pytest.raises(DataError, match=r"^EURUSD_1h\.csv, GOOG_1w\.csv in .* already hold\(s\) other data.*--force"):
        write_sample_data(tmp_path)

    assert mine.read_text() == "timestamp,open,high,low,close,volume\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["EURUSD_1h.csv", "GOOG_1w.csv", "reference"]  # nothing

    written = write_sample_data(tmp_path, overwrite=True)

    assert [f.path.read_bytes() for f in written] == [f.path.read_bytes() for f in first]


@pytest.mark.parametrize("overwrite", [False, True])
def test_sample_data_never_shadows_a_parquet_file(tmp_path: Path, overwrite: bool) -> None:
    bars("2024-01-01", 30, "D").to_parquet(tmp_path / "GOOG_1d.parquet")

    with pytest.raises(DataError, match=r"^GOOG_1d\.parquet in .* same symbol and timeframe .* --data-dir"):
        write_sample_data(tmp_path, overwrite=overwrite)

    assert [p.name for p in tmp_path.iterdir()] == ["GOOG_1d.parquet"]
