"""OHLCV frames for the strategy pipeline: timeframes, symbols, validation, resampling and multi-timeframe alignment.

A bar is labelled by its open time and its values are only known at its close, so a higher-timeframe bar that
opens at T and lasts D may feed a base bar opening at t and lasting d only when T + D <= t + d. Resampling keeps
only complete bars for the same reason: a bar still forming would show values its period has not finished.

An OHLCV frame is a ``pd.DataFrame`` with a sorted, unique, tz-naive ``DatetimeIndex`` named ``timestamp`` (bar
open times in UTC, nanosecond unit) and float64 columns ``open, high, low, close, volume``. Everything here works
on frames in memory; the files they are read from and written to are :mod:`trainops.pipeline.data_files`'.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from trainops.errors import DataError

__all__ = [
    "OHLCV_COLUMNS",
    "SYMBOL_PATTERN",
    "TIMEFRAMES",
    "align_to_base",
    "naive_utc",
    "normalize_symbol",
    "parse_timeframe",
    "readable_time",
    "require_bars",
    "resample_ohlcv",
    "timeframe_delta",
    "validate_ohlcv",
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

SYMBOL_PATTERN = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,31}")
"""A symbol as :func:`normalize_symbol` returns it: safe in a file name, never ``..`` or a path."""

SYMBOL_TEXT_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$"
"""A symbol as a request may spell it (any case), for the OpenAPI document."""


def _any_case(word: str) -> str:
    return "".join(f"[{char.lower()}{char.upper()}]" if char.isalpha() else re.escape(char) for char in word)


TIMEFRAME_TEXT_PATTERN = (
    "^(?:"
    + "|".join(
        # "1M" is refused (a month or a minute?): only "1m" spells one minute
        word if word == "1m" else _any_case(word)
        for word in sorted([*TIMEFRAMES, *_ALIASES], key=lambda word: (-len(word), word))
    )
    + ")$"
)
"""Every spelling :func:`parse_timeframe` accepts, for the OpenAPI document."""


# --- timeframes and symbols ---------------------------------------------------------------------------------------


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
    if not SYMBOL_PATTERN.fullmatch(cleaned):
        raise DataError(
            f"invalid symbol {symbol!r}: a symbol is 1-32 letters, digits, '.', '_' or '-' and starts with a letter "
            "or digit (e.g. EURUSD, BRK.B)",
            details={"symbol": symbol},
        )
    return cleaned


# --- validation ---------------------------------------------------------------------------------------------------


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
    index = naive_utc(frame.index)
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
            f"{source}: high is below low on {int(low_high.sum())} row(s), first at {readable_time(index[first])} "
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
        source: The data's name in the message; defaults to ``frame.attrs["source"]`` set by
            :func:`~trainops.pipeline.data_files.load_ohlcv`.

    Raises:
        DataError: e.g. "EURUSD 1d has 40 bars between 2017-04-19 and 2017-06-13; at least 60 are needed for the
            indicators (warm-up 33 + 27 to train on). Load a wider date range or a shorter timeframe."
    """
    bars = len(frame)
    if bars >= needed:
        return
    name = source or str(frame.attrs.get("source", "the data"))
    span = f" between {readable_time(frame.index[0])} and {readable_time(frame.index[-1])}" if bars else ""
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
    opens = naive_utc(frame.index)
    _check_order(opens, f"the {parse_timeframe(timeframe)} values")
    closes = opens.asi8 + higher.value
    base_closes = naive_utc(pd.DatetimeIndex(base_index)).asi8 + base.value
    positions = np.searchsorted(closes, base_closes, side="right") - 1
    aligned = frame.reset_index(drop=True).reindex(positions)  # position -1 is not a label: a NaN row
    aligned.index = base_index
    return aligned


# --- timestamps ---------------------------------------------------------------------------------------------------


def naive_utc(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """``index`` in UTC without a time zone, nanosecond unit, named ``timestamp``."""
    if index.tz is not None:
        index = index.tz_convert("UTC").tz_localize(None)
    return index.as_unit("ns").rename("timestamp")


def readable_time(stamp: pd.Timestamp) -> str:
    """A timestamp as people write it: the date alone at midnight, else date and minutes."""
    if stamp == stamp.normalize():
        return stamp.strftime("%Y-%m-%d")
    return stamp.strftime("%Y-%m-%d %H:%M" if stamp.second == 0 else "%Y-%m-%d %H:%M:%S")


# --- helpers ------------------------------------------------------------------------------------------------------


def _numeric(column: pd.Series, name: str, index: pd.DatetimeIndex, source: str) -> np.ndarray:
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype="float64", na_value=np.nan)
    converted = pd.to_numeric(column, errors="coerce")
    bad = (converted.isna() & column.notna()).to_numpy()
    if bad.any() or pd.api.types.is_bool_dtype(column):
        row = int(np.argmax(bad))
        raise DataError(
            f"{source}: column {name} is not numeric (e.g. {column.iloc[row]!r} at {readable_time(index[row])}); "
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
            f"{source}: {int(bad.sum())} row(s) have NaN or infinite values, first at {readable_time(data.index[row])} "
            f"(in {', '.join(columns)}); fill or drop those rows",
            details={"source": source, "rows": int(bad.sum()), "first": data.index[row].isoformat()},
        )


def _check_order(index: pd.DatetimeIndex, source: str) -> None:
    steps = np.diff(index.asi8)
    backwards = steps < 0
    if backwards.any():
        row = int(np.argmax(backwards))
        raise DataError(
            f"{source}: timestamps are not sorted: {readable_time(index[row + 1])} comes after "
            f"{readable_time(index[row])}; sort the rows by timestamp",
            details={"source": source, "first": index[row].isoformat(), "then": index[row + 1].isoformat()},
        )
    repeated = steps == 0
    if repeated.any():
        row = int(np.argmax(repeated))
        raise DataError(
            f"{source}: duplicate timestamp {readable_time(index[row])} ({int(repeated.sum())} repeat(s)); keep one "
            "bar per timestamp",
            details={"source": source, "first": index[row].isoformat(), "repeats": int(repeated.sum())},
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


def _duration(delta: pd.Timedelta) -> str:
    for name, length in TIMEFRAMES.items():
        if length == delta:
            return name
    return str(delta)
