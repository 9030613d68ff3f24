"""Market data for the strategy pipeline: OHLCV files, validation, resampling and multi-timeframe alignment.

A bar is labelled by its open time and its values are only known at its close, so a higher-timeframe bar that
opens at T and lasts D may feed a base bar opening at t and lasting d only when T + D <= t + d. Resampling keeps
only complete bars for the same reason: a bar still forming would show values its period has not finished.

An OHLCV frame is a ``pd.DataFrame`` with a sorted, unique, tz-naive ``DatetimeIndex`` named ``timestamp`` (bar
open times in UTC, nanosecond unit) and float64 columns ``open, high, low, close, volume``. Files live in one
directory as ``{SYMBOL}_{TIMEFRAME}.csv`` or ``.parquet`` with a canonical timeframe (``EURUSD_1h.csv``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from trainops.errors import DataError
from trainops.schemas.data import DataFile

__all__ = [
    "OHLCV_COLUMNS",
    "TIMEFRAMES",
    "DataFile",
    "DateLike",
    "align_to_base",
    "available_data",
    "load_ohlcv",
    "normalize_symbol",
    "parse_timeframe",
    "require_bars",
    "resample_ohlcv",
    "timeframe_delta",
    "validate_ohlcv",
    "write_sample_data",
]

OHLCV_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
"""The columns of an OHLCV frame, in order."""

TIMEFRAMES: dict[str, pd.Timedelta] = {
    "1m": pd.Timedelta(minutes=1),
    "5m": pd.Timedelta(minutes=5),
    "15m": pd.Timedelta(minutes=15),
    "30m": pd.Timedelta(minutes=30),
    "1h": pd.Timedelta(hours=1),
    "2h": pd.Timedelta(hours=2),
    "4h": pd.Timedelta(hours=4),
    "1d": pd.Timedelta(days=1),
    "1w": pd.Timedelta(weeks=1),
}
"""Canonical timeframes, shortest first, with the duration of one bar. Weekly bars open on Monday 00:00 UTC."""

_ALIASES: dict[str, str] = {
    **{f"{n}min": f"{n}m" for n in (1, 5, 15, 30)},
    **{f"m{n}": f"{n}m" for n in (1, 5, 15, 30)},
    "60m": "1h",
    "60min": "1h",
    "h1": "1h",
    "1hr": "1h",
    "1hour": "1h",
    "hourly": "1h",
    "120m": "2h",
    "h2": "2h",
    "240m": "4h",
    "h4": "4h",
    "d": "1d",
    "d1": "1d",
    "1day": "1d",
    "day": "1d",
    "daily": "1d",
    "w": "1w",
    "w1": "1w",
    "1week": "1w",
    "week": "1w",
    "weekly": "1w",
}

_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,31}")
_FILE_NAME = re.compile(
    rf"(?P<symbol>{_SYMBOL.pattern})_(?P<timeframe>{'|'.join(TIMEFRAMES)})\.(?P<format>csv|parquet)"
)
_TIMESTAMP_NAMES = ("timestamp", "datetime", "date", "time")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")

DateLike = str | date | datetime | pd.Timestamp
"""A date filter bound: ``"2018-01-31"``, ``"2018-01-31 12:00"``, a ``date``, ``datetime`` or ``pd.Timestamp``."""


# --- timeframes and symbols -------------------------------------------------------------------------------------


def parse_timeframe(text: str) -> str:
    """The canonical timeframe for ``text``, accepting case variants and common aliases.

    ``"1H"``, ``"60m"``, ``"H1"`` and ``"hourly"`` all mean ``"1h"``; ``"D1"``, ``"1D"`` and ``"daily"`` mean
    ``"1d"``. ``"1M"`` is refused because it means a month in some tools and a minute in others.

    Raises:
        DataError: ``text`` names no supported timeframe; the message lists the valid ones.

    Example:
        >>> parse_timeframe("H4"), parse_timeframe("Daily")
        ('4h', '1d')
    """
    cleaned = str(text).strip()
    if cleaned == "1M":
        raise DataError(
            "timeframe '1M' is ambiguous (one minute or one month?); write 1m for one minute "
            f"(months are not supported). Valid timeframes: {', '.join(TIMEFRAMES)}",
            details={"timeframe": text, "valid": list(TIMEFRAMES)},
        )
    lowered = cleaned.lower()
    canonical = lowered if lowered in TIMEFRAMES else _ALIASES.get(lowered)
    if canonical is None:
        raise DataError(
            f"unknown timeframe {text!r}; use one of {', '.join(TIMEFRAMES)} (aliases such as H1, 60m, D1 and "
            "daily work too)",
            details={"timeframe": text, "valid": list(TIMEFRAMES)},
        )
    return canonical


def timeframe_delta(timeframe: str) -> pd.Timedelta:
    """The duration of one bar of ``timeframe`` (any spelling :func:`parse_timeframe` accepts)."""
    return TIMEFRAMES[parse_timeframe(timeframe)]


def normalize_symbol(symbol: str) -> str:
    """``symbol`` upper-cased, refused unless it is safe to use in a file name.

    Raises:
        DataError: the symbol has characters other than letters, digits and ``._-``, does not start with a
            letter or digit (so ``..`` and ``../etc`` can never leave the data directory), or exceeds 32 characters.
    """
    cleaned = str(symbol).strip().upper()
    if not _SYMBOL.fullmatch(cleaned):
        raise DataError(
            f"invalid symbol {symbol!r}: a symbol is 1-32 letters, digits, '.', '_' or '-' and starts with a letter "
            "or digit (e.g. EURUSD, BRK.B)",
            details={"symbol": symbol},
        )
    return cleaned


# --- files --------------------------------------------------------------------------------------------------------


def available_data(data_dir: Path) -> list[DataFile]:
    """Every ``SYMBOL_TIMEFRAME.csv|.parquet`` file in ``data_dir``, sorted by symbol then timeframe duration.

    Only the timestamp column is read, so listing a directory of large files stays cheap. Files whose names do not
    follow the pattern (or use a non-canonical timeframe such as ``EURUSD_H1.csv``) are ignored. A missing
    directory has no data and gives ``[]``.

    Raises:
        DataError: ``data_dir`` is a file, or a data file's timestamps cannot be read (the message names it).
    """
    return [_describe(path, symbol, timeframe, fmt) for path, symbol, timeframe, fmt in _scan(data_dir)]


def load_ohlcv(
    data_dir: Path,
    symbol: str,
    timeframe: str,
    start: DateLike | None = None,
    end: DateLike | None = None,
) -> pd.DataFrame:
    """Read and validate ``{data_dir}/{SYMBOL}_{TIMEFRAME}.csv`` (or ``.parquet``), optionally between two dates.

    The timestamp column may be named ``timestamp``, ``datetime``, ``date`` or ``time`` (separate ``date`` and
    ``time`` columns are joined) or be an unnamed first column; column names are case-insensitive and columns other
    than OHLCV are dropped. Naive timestamps are taken as UTC; tz-aware ones are converted to UTC.

    Both bounds are inclusive. A date without a time (``"2018-01-31"`` or a ``date``) as ``end`` includes that
    whole day; a datetime or ``pd.Timestamp`` is an exact instant.

    Returns:
        An OHLCV frame; ``frame.attrs`` holds ``symbol`` and ``source`` (``"EURUSD 1h"``), which
        :func:`require_bars` names in its message and :func:`resample_ohlcv` carries over.

    Raises:
        DataError: no such file (the message lists the available ones), unreadable or invalid content (see
            :func:`validate_ohlcv`), bad bounds, or no bars between them (the message gives the file's own range).
    """
    symbol = normalize_symbol(symbol)
    timeframe = parse_timeframe(timeframe)
    path, fmt = _find_file(data_dir, symbol, timeframe)
    label = f"{symbol} {timeframe}"
    raw = _read_raw(path, fmt)
    if raw.empty:
        raise DataError(f"{path} has no bars; write OHLCV rows into it or delete it", details={"path": str(path)})
    stamps = _parse_timestamps(raw, path)
    values = raw.drop(columns=_timestamp_columns([str(column) for column in raw.columns]))
    frame = validate_ohlcv(values.set_axis(stamps, axis=0), str(path))
    frame = _between(frame, start, end, path)
    frame.attrs.update(symbol=symbol, source=label)
    return frame


def validate_ohlcv(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check that ``frame`` is usable OHLCV data and return it in the canonical form.

    Column names are matched case-insensitively and extra columns dropped; values become float64 and the index a
    tz-naive UTC ``DatetimeIndex`` named ``timestamp`` (tz-aware indexes are converted).

    Args:
        frame: Bars indexed by their open time.
        source: Where the data came from (a path, ``"EURUSD 1h"``), named in every message.

    Raises:
        DataError: the index is not datetimes; a column is missing (the message lists what was found) or not
            numeric; values are NaN or infinite (how many rows, the first timestamp); timestamps are out of order
            (the first such pair) or repeated (the first duplicate); ``high < low`` on some row.
    """
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(
            f"{source}: the index must be bar open times (a DatetimeIndex), not {type(frame.index).__name__}; "
            "set it with frame.set_index(pd.to_datetime(frame['timestamp']))",
            details={"source": source},
        )
    index = _naive_utc(frame.index)
    found = {str(column).strip().lower(): column for column in frame.columns}
    missing = [column for column in OHLCV_COLUMNS if column not in found]
    if missing:
        raise DataError(
            f"{source} is missing column(s) {', '.join(missing)}; found: "
            f"{', '.join(str(column) for column in frame.columns) or 'none'}. An OHLCV file needs "
            f"{', '.join(OHLCV_COLUMNS)} (names are case-insensitive)",
            details={"source": source, "missing": missing, "found": [str(column) for column in frame.columns]},
        )
    columns = {name: _numeric(frame[found[name]], name, index, source) for name in OHLCV_COLUMNS}
    data = pd.DataFrame(columns, index=index)
    _check_finite(data, source)
    _check_order(index, source)
    low_high = data["high"].to_numpy() < data["low"].to_numpy()
    if low_high.any():
        first = int(np.argmax(low_high))
        raise DataError(
            f"{source}: high is below low on {int(low_high.sum())} row(s), first at {_when(index[first])} "
            f"(high {data['high'].iloc[first]}, low {data['low'].iloc[first]}); fix or drop those rows",
            details={"source": source, "rows": int(low_high.sum()), "first": index[first].isoformat()},
        )
    return data


def require_bars(frame: pd.DataFrame, needed: int, what: str, *, source: str | None = None) -> None:
    """Refuse ``frame`` unless it has at least ``needed`` bars: the pipeline's warm-up check.

    Args:
        frame: OHLCV (or feature) frame indexed by time.
        needed: Smallest usable number of bars.
        what: What needs them, read after "needed for", e.g. ``"the indicators (warm-up 33 + 27 to train on)"``.
        source: The data's name in the message; defaults to ``frame.attrs["source"]`` set by :func:`load_ohlcv`.

    Raises:
        DataError: e.g. "EURUSD 1d has 40 bars between 2017-04-19 and 2017-06-13; at least 60 are needed for the
            indicators (warm-up 33 + 27 to train on). Load a wider date range or a shorter timeframe."
    """
    bars = len(frame)
    if bars >= needed:
        return
    name = source or str(frame.attrs.get("source", "the data"))
    span = f" between {_when(frame.index[0])} and {_when(frame.index[-1])}" if bars else ""
    raise DataError(
        f"{name} has {bars} bar(s){span}; at least {needed} are needed for {what}. "
        "Load a wider date range or a shorter timeframe",
        details={"source": name, "bars": bars, "needed": needed},
    )


# --- resampling ---------------------------------------------------------------------------------------------------


def resample_ohlcv(frame: pd.DataFrame, timeframe: str, *, source_timeframe: str | None = None) -> pd.DataFrame:
    """Aggregate bars to a longer ``timeframe`` (open first, high max, low min, close last, volume sum).

    Bars are labelled by their open time on a fixed grid (multiples of the duration since midnight UTC; Monday for
    weeks). Periods without source bars (weekends, holidays) produce no bar.

    Only complete bars are kept: the last period is dropped unless the source data reaches its end, i.e. the last
    source bar's close (its open plus ``source_timeframe``) is at or after the period's close. Earlier periods are
    complete because later source data exists. So a daily bar from hourly data needs the 23:00 bar (or any later
    one): a session that ends before midnight UTC leaves the final day out, which is conservative, never
    look-ahead. The first bar is kept even if the data starts mid-period: without an exchange calendar a late
    first bar looks the same as a session open, and a historic bar cannot change later.

    Args:
        frame: OHLCV frame.
        timeframe: Target timeframe, at least as long as the source's.
        source_timeframe: The source bars' timeframe; inferred as the shortest step between timestamps if omitted.

    Raises:
        DataError: the frame is invalid (:func:`validate_ohlcv`), the target is shorter than the source, or the
            source timeframe cannot be inferred from fewer than two bars.

    Example:
        >>> hours = pd.date_range("2024-01-01", periods=48, freq="h")
        >>> hourly = pd.DataFrame({c: 1.0 for c in OHLCV_COLUMNS}, index=hours)
        >>> len(resample_ohlcv(hourly, "1d")), len(resample_ohlcv(hourly.iloc[:-1], "1d"))
        (2, 1)
    """
    target = parse_timeframe(timeframe)
    data = validate_ohlcv(frame, str(frame.attrs.get("source", "the data")))
    index = pd.DatetimeIndex(data.index)
    if data.empty and source_timeframe is None:
        return data
    step = timeframe_delta(source_timeframe) if source_timeframe else _inferred_step(index, target)
    length = TIMEFRAMES[target]
    if step > length:
        raise DataError(
            f"cannot resample {_duration(step)} bars to {target}: resampling only aggregates into longer "
            "timeframes; load a file with shorter bars",
            details={"source_step": str(step), "timeframe": target},
        )
    if data.empty:
        return data
    starts = _period_starts(index, target)
    grouped = data.groupby(starts, sort=True)
    out = pd.DataFrame(
        {
            "open": grouped["open"].first(),
            "high": grouped["high"].max(),
            "low": grouped["low"].min(),
            "close": grouped["close"].last(),
            "volume": grouped["volume"].sum(),
        }
    )
    out.index = pd.DatetimeIndex(out.index, name="timestamp").as_unit("ns")
    if index[-1] + step < out.index[-1] + length:
        out = out.iloc[:-1]
    if "symbol" in frame.attrs:
        out.attrs.update(symbol=frame.attrs["symbol"], source=f"{frame.attrs['symbol']} {target}")
    return out


# --- alignment ----------------------------------------------------------------------------------------------------


def align_to_base(
    frame: pd.DataFrame, timeframe: str, base_index: pd.DatetimeIndex, base_timeframe: str
) -> pd.DataFrame:
    """Values computed on higher-timeframe bars, placed on base bars without look-ahead.

    A base bar opening at t closes at t + d; the higher bar opening at T (duration D) is usable for it only if it
    had closed by then: T + D <= t + d. Each base bar gets the row of the latest such higher bar, NaN before the
    first. Integer and boolean columns therefore come back as float or object when NaN rows exist.

    Args:
        frame: Rows indexed by the higher bars' open times (sorted, unique), e.g. a rolling mean of 4h closes.
        timeframe: The higher bars' timeframe.
        base_index: Open times of the base bars (any order; tz-aware ones are compared in UTC).
        base_timeframe: The base bars' timeframe.

    Returns:
        ``frame``'s columns indexed by ``base_index``. Runs in O((n + m) log m): one binary search per base bar.

    Raises:
        DataError: ``frame`` is not indexed by sorted, unique datetimes, or a timeframe is unknown.

    Example:
        >>> four_hourly = pd.DataFrame({"x": [1.0]}, index=pd.DatetimeIndex(["2024-01-01 00:00"]))
        >>> hours = pd.date_range("2024-01-01 02:00", periods=3, freq="h")
        >>> align_to_base(four_hourly, "4h", hours, "1h")["x"].tolist()  # 4h bar closes at 04:00 = close of 03:00
        [nan, 1.0, 1.0]
    """
    higher = timeframe_delta(timeframe)
    base = timeframe_delta(base_timeframe)
    if not isinstance(frame.index, pd.DatetimeIndex):
        raise DataError(
            f"align_to_base needs {parse_timeframe(timeframe)} values indexed by bar open times (a DatetimeIndex), "
            f"not {type(frame.index).__name__}",
        )
    opens = _naive_utc(frame.index)
    _check_order(opens, f"the {parse_timeframe(timeframe)} values")
    closes = opens.asi8 + higher.value
    base_closes = _naive_utc(pd.DatetimeIndex(base_index)).asi8 + base.value
    positions = np.searchsorted(closes, base_closes, side="right") - 1
    aligned = frame.reset_index(drop=True).reindex(positions)  # position -1 is not a label: a NaN row
    aligned.index = base_index
    return aligned


# --- sample data --------------------------------------------------------------------------------------------------


def write_sample_data(data_dir: Path) -> list[DataFile]:
    """Write real market history from the ``backtesting`` package into ``data_dir`` as CSV.

    Files: ``EURUSD_1h`` (5000 hourly bars, 2017-04-19 to 2018-02-07) with ``EURUSD_4h`` and ``EURUSD_1d``
    resampled from it, and ``GOOG_1d`` (2148 daily bars, 2004-08-19 to 2013-03-01) with ``GOOG_1w`` resampled.
    Writing again overwrites these files (each atomically) and leaves every other file alone. Daily bars are UTC
    days, so the forex market's Sunday-evening hours (21:00-23:00) form short Sunday bars, as at brokers on UTC.

    Returns:
        The written files, in :func:`available_data` order.

    Raises:
        DataError: ``data_dir`` cannot be created or written (e.g. it is a file).
    """
    # Imported here: backtesting pulls in bokeh (~0.4 s), a cost only this function should pay.
    from backtesting.test import EURUSD, GOOG

    _ensure_dir(data_dir)
    eurusd = validate_ohlcv(EURUSD, "backtesting.test.EURUSD")
    goog = validate_ohlcv(GOOG, "backtesting.test.GOOG")
    frames = {
        ("EURUSD", "1h"): eurusd,
        ("EURUSD", "4h"): resample_ohlcv(eurusd, "4h", source_timeframe="1h"),
        ("EURUSD", "1d"): resample_ohlcv(eurusd, "1d", source_timeframe="1h"),
        ("GOOG", "1d"): goog,
        ("GOOG", "1w"): resample_ohlcv(goog, "1w", source_timeframe="1d"),
    }
    written = []
    for (symbol, timeframe), frame in frames.items():
        path = data_dir / f"{symbol}_{timeframe}.csv"
        _write_csv(frame, path)
        written.append(
            DataFile(
                symbol=symbol,
                timeframe=timeframe,
                path=path,
                format="csv",
                bars=len(frame),
                start=frame.index[0].to_pydatetime(),
                end=frame.index[-1].to_pydatetime(),
            )
        )
    return written


# --- helpers ------------------------------------------------------------------------------------------------------


def _scan(data_dir: Path) -> list[tuple[Path, str, str, Literal["csv", "parquet"]]]:
    """Data file names in ``data_dir`` (nothing read), in listing order."""
    if data_dir.exists() and not data_dir.is_dir():
        raise DataError(
            f"data directory {data_dir} is a file, not a directory; point --data-dir or TRAINOPS_DATA_DIR at a "
            "directory of SYMBOL_TIMEFRAME.csv files",
            details={"data_dir": str(data_dir)},
        )
    if not data_dir.is_dir():
        return []
    found: list[tuple[Path, str, str, Literal["csv", "parquet"]]] = []
    for path in data_dir.iterdir():
        match = _FILE_NAME.fullmatch(path.name)
        if match and path.is_file():
            fmt: Literal["csv", "parquet"] = "csv" if match["format"] == "csv" else "parquet"
            found.append((path, match["symbol"], match["timeframe"], fmt))
    return sorted(found, key=lambda item: (item[1], TIMEFRAMES[item[2]], item[3]))


def _find_file(data_dir: Path, symbol: str, timeframe: str) -> tuple[Path, Literal["csv", "parquet"]]:
    files = _scan(data_dir)
    matches = [(path, fmt) for path, sym, tf, fmt in files if sym == symbol and tf == timeframe]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise DataError(
            f"both {matches[0][0].name} and {matches[1][0].name} exist in {data_dir}; keep one so it is clear "
            "which to train on",
            details={"paths": [str(path) for path, _ in matches]},
        )
    wanted = f"{data_dir / f'{symbol}_{timeframe}'}.csv (or .parquet)"
    if not files:
        raise DataError(
            f"no market data for {symbol} {timeframe}: {wanted} does not exist and {data_dir} holds no data files. "
            f"Run `trainops data sample --data-dir {data_dir}` for sample data (EURUSD, GOOG), or put "
            "SYMBOL_TIMEFRAME.csv files there",
            details={"path": wanted, "available": []},
        )
    names = list(dict.fromkeys(f"{sym}_{tf}" for _, sym, tf, _ in files))
    raise DataError(
        f"no market data for {symbol} {timeframe}: {wanted} does not exist. Available: {', '.join(names)}",
        details={"path": wanted, "available": names},
    )


def _read_raw(path: Path, fmt: Literal["csv", "parquet"], columns: Sequence[str] | None = None) -> pd.DataFrame:
    """The file's table with the index (if the file stored one) as a column; only ``columns`` if given."""
    try:
        if fmt == "csv":
            return pd.read_csv(path, usecols=list(columns) if columns is not None else None)
        if columns is not None:
            return pq.read_table(path, columns=list(columns)).to_pandas(ignore_metadata=True)  # type: ignore[no-any-return]
        raw = pd.read_parquet(path)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise DataError(
            f"cannot read {path}: {error}; it should be a {fmt.upper()} file of OHLCV bars with a timestamp column",
            details={"path": str(path)},
        ) from None
    if not isinstance(raw.index, pd.RangeIndex):
        raw = raw.reset_index(names=str(raw.index.name or "timestamp"))
    return raw


def _header(path: Path, fmt: Literal["csv", "parquet"]) -> list[str]:
    try:
        if fmt == "csv":
            return [str(column) for column in pd.read_csv(path, nrows=0).columns]
        return [str(name) for name in pq.read_schema(path).names]
    except (OSError, ValueError, pd.errors.ParserError) as error:
        raise DataError(f"cannot read {path}: {error}", details={"path": str(path)}) from None


def _timestamp_columns(columns: list[str]) -> list[str]:
    """The column(s) holding bar times: a named one, separate date and time, or an unnamed first column."""
    lowered = {column.strip().lower(): column for column in columns}
    if "date" in lowered and "time" in lowered and not {"timestamp", "datetime"} & lowered.keys():
        return [lowered["date"], lowered["time"]]
    for name in _TIMESTAMP_NAMES:
        if name in lowered:
            return [lowered[name]]
    if columns and (columns[0].startswith("Unnamed: 0") or columns[0] in ("", "__index_level_0__")):
        return [columns[0]]
    return []


def _no_timestamp_column(path: Path, found: list[str]) -> DataError:
    return DataError(
        f"{path} has no timestamp column; name one timestamp, datetime, date or time (or leave the first column "
        f"unnamed). Found: {', '.join(found) or 'no columns'}",
        details={"path": str(path), "found": found},
    )


def _parse_timestamps(raw: pd.DataFrame, path: Path) -> pd.DatetimeIndex:
    found = [str(column) for column in raw.columns]
    columns = _timestamp_columns(found)
    if not columns:
        raise _no_timestamp_column(path, found)
    if len(columns) == 2:
        values = raw[columns[0]].astype(str) + " " + raw[columns[1]].astype(str)
    else:
        values = raw[columns[0]]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            raise DataError(
                f"{path}: column {columns[0]!r} holds numbers, not dates (epoch numbers are ambiguous: seconds or "
                "milliseconds?); write ISO dates such as 2018-01-31 14:00",
                details={"path": str(path), "column": columns[0]},
            )
    parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
    if parsed.isna().any():
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="mixed")
    bad = parsed.isna().to_numpy()
    if bad.any():
        row = int(np.argmax(bad))
        raise DataError(
            f"{path}: {int(bad.sum())} row(s) have no readable timestamp, first data row {row + 1} "
            f"({values.iloc[row]!r}); write dates such as 2018-01-31 or 2018-01-31 14:00",
            details={"path": str(path), "rows": int(bad.sum()), "first_row": row + 1},
        )
    return _naive_utc(pd.DatetimeIndex(parsed))


def _naive_utc(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """``index`` in UTC without a time zone, nanosecond unit, named ``timestamp``."""
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.as_unit("ns").rename("timestamp")


def _numeric(column: pd.Series, name: str, index: pd.DatetimeIndex, source: str) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    converted = pd.to_numeric(column, errors="coerce")
    bad = (converted.isna() & column.notna()).to_numpy()
    if bad.any() or pd.api.types.is_bool_dtype(column):
        row = int(np.argmax(bad))
        raise DataError(
            f"{source}: column {name} is not numeric (e.g. {column.iloc[row]!r} at {_when(index[row])}); "
            "write plain numbers",
            details={"source": source, "column": name},
        )
    return converted.to_numpy(dtype="float64", na_value=np.nan)


def _check_finite(data: pd.DataFrame, source: str) -> None:
    bad = ~np.isfinite(data.to_numpy()).all(axis=1)
    if bad.any():
        row = int(np.argmax(bad))
        columns = [str(c) for c in data.columns if not np.isfinite(data[c].iloc[row])]
        raise DataError(
            f"{source}: {int(bad.sum())} row(s) have NaN or infinite values, first at {_when(data.index[row])} "
            f"(in {', '.join(columns)}); fill or drop those rows",
            details={"source": source, "rows": int(bad.sum()), "first": data.index[row].isoformat()},
        )


def _check_order(index: pd.DatetimeIndex, source: str) -> None:
    steps = np.diff(index.asi8)
    backwards = steps < 0
    if backwards.any():
        row = int(np.argmax(backwards))
        raise DataError(
            f"{source}: timestamps are not sorted: {_when(index[row + 1])} comes after {_when(index[row])}; "
            "sort the rows by timestamp",
            details={"source": source, "first": index[row].isoformat(), "then": index[row + 1].isoformat()},
        )
    repeated = steps == 0
    if repeated.any():
        row = int(np.argmax(repeated))
        raise DataError(
            f"{source}: duplicate timestamp {_when(index[row])} ({int(repeated.sum())} repeat(s)); keep one bar per "
            "timestamp",
            details={"source": source, "first": index[row].isoformat(), "repeats": int(repeated.sum())},
        )


def _bound(value: DateLike, name: str, path: Path) -> tuple[pd.Timestamp, bool]:
    """The bound as a naive UTC timestamp, and whether it was a date without a time (an ``end`` covers that day)."""
    whole_day = (isinstance(value, date) and not isinstance(value, datetime)) or (
        isinstance(value, str) and _DATE_ONLY.fullmatch(value.strip()) is not None
    )
    try:
        stamp = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError):
        raise DataError(
            f"{name} {value!r} is not a date; use YYYY-MM-DD or 'YYYY-MM-DD HH:MM'",
            details={name: str(value), "path": str(path)},
        ) from None
    if pd.isna(stamp):
        raise DataError(f"{name} is empty; give a date such as 2018-01-31 or leave it out", details={name: str(value)})
    if stamp.tz is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp, whole_day


def _between(frame: pd.DataFrame, start: DateLike | None, end: DateLike | None, path: Path) -> pd.DataFrame:
    if start is None and end is None:
        return frame
    first, last = frame.index[0], frame.index[-1]
    has = f"{path.name} has {len(frame)} bars from {_when(first)} to {_when(last)}"
    low = _bound(start, "start", path)[0] if start is not None else first
    high, whole_day = _bound(end, "end", path) if end is not None else (last, False)
    stop = high + pd.Timedelta(days=1) if whole_day else high  # exclusive after a date-only end, else inclusive
    if start is not None and end is not None and (low >= stop if whole_day else low > stop):
        raise DataError(
            f"start {_when(low)} is after end {_when(high)}; swap them ({has})",
            details={"start": low.isoformat(), "end": high.isoformat(), "path": str(path)},
        )
    before_stop = (frame.index < stop) if whole_day else (frame.index <= stop)
    mask = (frame.index >= low) & before_stop
    if not mask.any():
        raise DataError(
            f"no bars between {_when(low)} and {_when(high)}: {has}; choose dates inside that range",
            details={"start": low.isoformat(), "end": high.isoformat(), "path": str(path)},
        )
    return frame.loc[mask]


def _describe(path: Path, symbol: str, timeframe: str, fmt: Literal["csv", "parquet"]) -> DataFile:
    header = _header(path, fmt)
    columns = _timestamp_columns(header)
    if not columns:
        raise _no_timestamp_column(path, header)
    raw = _read_raw(path, fmt, columns)
    stamps = _parse_timestamps(raw, path) if len(raw) else pd.DatetimeIndex([])
    return DataFile(
        symbol=symbol,
        timeframe=timeframe,
        path=path,
        format=fmt,
        bars=len(stamps),
        start=stamps.min().to_pydatetime() if len(stamps) else None,
        end=stamps.max().to_pydatetime() if len(stamps) else None,
    )


def _period_starts(index: pd.DatetimeIndex, timeframe: str) -> pd.DatetimeIndex:
    if timeframe == "1w":
        midnight = index.normalize()
        return midnight - pd.to_timedelta(midnight.day_of_week, unit="D")
    return index.floor(TIMEFRAMES[timeframe])


def _inferred_step(index: pd.DatetimeIndex, target: str) -> pd.Timedelta:
    steps = np.diff(index.asi8)
    if len(steps) == 0:
        raise DataError(
            f"cannot tell the bar length of {len(index)} bar(s) to resample them to {target}; pass source_timeframe",
            details={"bars": len(index)},
        )
    return pd.Timedelta(int(steps.min()), unit="ns")


def _ensure_dir(data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        problem = "is a file, not a directory" if data_dir.is_file() else f"cannot be created ({error.strerror})"
        raise DataError(
            f"data directory {data_dir} {problem}; point --data-dir or TRAINOPS_DATA_DIR at a directory",
            details={"data_dir": str(data_dir)},
        ) from None


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    """Write through a temporary file so a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        frame.to_csv(partial, index_label="timestamp")
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DataError(f"cannot write {path}: {error.strerror}", details={"path": str(path)}) from None


def _when(stamp: pd.Timestamp) -> str:
    """A timestamp as people write it: the date alone at midnight, else date and minutes."""
    if stamp == stamp.normalize():
        return stamp.strftime("%Y-%m-%d")
    return stamp.strftime("%Y-%m-%d %H:%M" if stamp.second == 0 else "%Y-%m-%d %H:%M:%S")


def _duration(delta: pd.Timedelta) -> str:
    for name, length in TIMEFRAMES.items():
        if length == delta:
            return name
    return str(delta)
