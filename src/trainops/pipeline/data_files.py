"""Market data files: list, read and write the ``{SYMBOL}_{TIMEFRAME}.csv`` or ``.parquet`` files of a directory.

Files live in one directory with a canonical timeframe in their name (``EURUSD_1h.csv``). Reading one gives an
OHLCV frame in the canonical form of :mod:`trainops.pipeline.data`, which checks it; this module knows only where
the files are, how their timestamps are written and how to pick bars between two dates.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from trainops.core.lru import LRUCache
from trainops.errors import ConflictError, DataError, NotFoundError
from trainops.pipeline.data import (
    SYMBOL_PATTERN,
    TIMEFRAMES,
    naive_utc,
    normalize_symbol,
    parse_timeframe,
    readable_time,
    resample_ohlcv,
    validate_ohlcv,
)
from trainops.schemas.data import DataFile

__all__ = [
    "DateLike",
    "StoredDataFile",
    "available_data",
    "data_file_name",
    "find_data_file",
    "load_ohlcv",
    "one_file_each",
    "open_data_file",
    "write_sample_data",
]

_FILE_NAME = re.compile(
    rf"(?P<symbol>{SYMBOL_PATTERN.pattern})_(?P<timeframe>{'|'.join(TIMEFRAMES)})\.(?P<format>csv|parquet)"
)
_TIMESTAMP_NAMES = ("timestamp", "datetime", "date", "time")
_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}")

DateLike = str | date | datetime | pd.Timestamp
"""A date filter bound: ``"2018-01-31"``, ``"2018-01-31 12:00"``, a ``date``, ``datetime`` or ``pd.Timestamp``."""


# --- reading ------------------------------------------------------------------------------------------------------


def available_data(data_dir: Path, only: Collection[tuple[str, str]] | None = None) -> list[DataFile]:
    """Every ``SYMBOL_TIMEFRAME.csv|.parquet`` file in ``data_dir``, sorted by symbol then timeframe duration.

    Only the timestamp column is read, so listing a directory of large files stays cheap. Files whose names do not
    follow the pattern (or use a non-canonical timeframe such as ``EURUSD_H1.csv``) are ignored. A missing
    directory has no data and gives ``[]``. A file whose timestamps cannot be read is listed with its
    :attr:`~trainops.schemas.data.DataFile.problem`: one damaged file never hides the others.

    Args:
        only: The ``(symbol, timeframe)`` pairs to describe (the others are not read, nor listed).

    Raises:
        DataError: ``data_dir`` is a file.
    """
    return [
        _described(path, symbol, timeframe, fmt)
        for path, symbol, timeframe, fmt in _scan(data_dir)
        if only is None or (symbol, timeframe) in only
    ]


def one_file_each(files: Sequence[DataFile], data_dir: Path) -> dict[tuple[str, str], DataFile]:
    """``files`` (from :func:`available_data`) by ``(symbol, timeframe)``.

    Raises:
        DataError: two files hold one pair (a CSV and a parquet file): which one to train on is not clear.
    """
    held: dict[tuple[str, str], DataFile] = {}
    for item in files:
        other = held.setdefault((item.symbol, item.timeframe), item)
        if other is not item:
            raise _both(other.path, item.path, data_dir)
    return held


def data_names(data_dir: Path) -> list[tuple[str, str]]:
    """The ``(symbol, timeframe)`` pairs that have a file in ``data_dir``, in listing order, from the names alone
    (nothing read)."""
    return list(dict.fromkeys((symbol, timeframe) for _, symbol, timeframe, _ in _scan(data_dir)))


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
        :func:`~trainops.pipeline.data.require_bars` names in its message and
        :func:`~trainops.pipeline.data.resample_ohlcv` carries over.

    Raises:
        DataError: no such file (the message lists the available ones), unreadable or invalid content (see
            :func:`~trainops.pipeline.data.validate_ohlcv`), bad bounds, or no bars between them (the message
            gives the file's own range).
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


@dataclass(frozen=True)
class StoredDataFile:
    """One data file as it sits on disk, for serving it whole: where it is, its format, and its identity.

    ``sha256`` names the content (the download's strong ETag, which a worker's cache sends back to revalidate);
    ``size`` and ``modified`` come from the ``fstat`` of the open file that was hashed, taken before hashing it.
    """

    path: Path
    symbol: str
    timeframe: str
    format: Literal["csv", "parquet"]
    size: int
    modified: float
    sha256: str

    def still_describes(self, handle: BinaryIO) -> bool:
        """Whether the open file ``handle`` still has the size and modification time it had when it was hashed.

        ``False`` once the file was rewritten in place (as ``DataFrame.to_csv`` writes): what is read from it since
        may not be the content ``sha256`` names.
        """
        stat = os.fstat(handle.fileno())
        return (stat.st_size, stat.st_mtime) == (self.size, self.modified)


def data_file_name(symbol: str, timeframe: str, fmt: Literal["csv", "parquet"]) -> str:
    """``EURUSD_1h.csv``: the name a data file has in any data directory (the server's, a worker's cache)."""
    return f"{symbol}_{timeframe}.{fmt}"


def find_data_file(data_dir: Path, symbol: str, timeframe: str) -> StoredDataFile:
    """The file holding ``symbol``'s ``timeframe`` bars in ``data_dir``, identified by its SHA-256; its bars are
    not read (nor checked: :func:`load_ohlcv` does that where they are used).

    The digest is computed once per file version (inode, size, modification time) and kept in a small cache, so
    serving a cached worker's revalidation costs an ``open`` and an ``fstat``. To serve the file, open it with
    :func:`open_data_file`: the path may hold another file by then.

    Raises:
        DataError: a symbol or timeframe that is not one (``../etc``, ``1M``), or a data directory that is a file.
        NotFoundError: no such file; the message lists the data sets there are.
        ConflictError: two files hold the pair (``X_1h.csv`` and ``X_1h.parquet``): a state of the server's disk
            that whoever keeps the data directory must fix, not a bad request.
    """
    symbol = normalize_symbol(symbol)
    timeframe = parse_timeframe(timeframe)
    try:
        path, fmt = _find_file(data_dir, symbol, timeframe)
    except DataError as error:
        if "available" in error.details:
            raise NotFoundError(error.message, details=error.details) from None
        if "paths" in error.details:
            raise ConflictError(error.message, details=error.details) from None
        raise  # a data directory that is a file
    stored, handle = _open_and_identify(path, symbol, timeframe, fmt)
    handle.close()
    return stored


def open_data_file(stored: StoredDataFile) -> tuple[StoredDataFile, BinaryIO]:
    """Open the file :func:`find_data_file` found, for serving it: the description returned is of the very file
    opened (``stored`` again while the path holds the same version, re-hashed when the file was replaced or
    rewritten since), and the handle reads from its start. The caller closes the handle.

    Serve the size and SHA-256 returned here, never ``stored``'s: a file replaced (even atomically, with
    ``os.replace``) between the two calls would otherwise go out under the other file's length and ETag.

    Raises:
        NotFoundError: the file was removed since it was found.
        DataError: it cannot be read.
    """
    return _open_and_identify(stored.path, stored.symbol, stored.timeframe, stored.format)


def _open_and_identify(
    path: Path, symbol: str, timeframe: str, fmt: Literal["csv", "parquet"]
) -> tuple[StoredDataFile, BinaryIO]:
    """One open handle, ``fstat``-ed and hashed through (then rewound), as :meth:`ArtifactStore.open
    <trainops.store.artifacts.ArtifactStore.open>` does: the digest can only be of the file the handle reads."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:  # removed since it was listed: as if it never was
        raise NotFoundError(
            f"the data file {path.name} was removed from the server while it was being opened; ask again, and the "
            "answer lists the data there is",
            details={"path": str(path)},
        ) from None
    except OSError as error:
        raise _unreadable(path, error) from None
    try:
        stat = os.fstat(handle.fileno())
        key = (str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
        digest = _DIGESTS.get(key)
        if digest is None:
            digest = _sha256(handle)
            handle.seek(0)
            _DIGESTS.put(key, digest)
    except OSError as error:
        handle.close()
        raise _unreadable(path, error) from None
    except BaseException:
        handle.close()
        raise
    stored = StoredDataFile(
        path=path,
        symbol=symbol,
        timeframe=timeframe,
        format=fmt,
        size=stat.st_size,
        modified=stat.st_mtime,
        sha256=digest,
    )
    return stored, handle


_DIGESTS: LRUCache[tuple[str, int, int, int], str] = LRUCache(256)
"""(path, inode, size, mtime_ns) -> SHA-256: a file replaced or rewritten gets a new key."""


def _sha256(handle: io.BufferedReader) -> str:
    return hashlib.file_digest(handle, "sha256").hexdigest()


def _unreadable(path: Path, error: OSError) -> DataError:
    return DataError(f"cannot read {path}: {error.strerror}", details={"path": str(path)})


# --- sample data --------------------------------------------------------------------------------------------------


def write_sample_data(data_dir: Path, *, overwrite: bool = False) -> list[DataFile]:
    """Write real market history from the ``backtesting`` package into ``data_dir`` as CSV.

    Files: ``EURUSD_1h`` (5000 hourly bars, 2017-04-19 to 2018-02-07) with ``EURUSD_4h`` and ``EURUSD_1d``
    resampled from it, and ``GOOG_1d`` (2148 daily bars, 2004-08-19 to 2013-03-01) with ``GOOG_1w`` resampled.
    Daily bars are UTC days, so the forex market's Sunday-evening hours (21:00-23:00) form short Sunday bars, as at
    brokers on UTC.

    Writing again is safe: a file that already holds the sample is left as it is, and every other file is left
    alone. A file of the same name holding anything else (a user's own ``EURUSD_1h.csv``) is replaced only with
    ``overwrite``; a ``.parquet`` file of the same symbol and timeframe is never shadowed, since training would then
    refuse both. Nothing is written unless every file can be.

    Returns:
        The sample's files, in :func:`available_data` order.

    Raises:
        DataError: ``data_dir`` cannot be created or written (e.g. it is a file), or a file in the way holds other
            data (the message names each one and what to do).
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
    contents = {
        data_dir / f"{symbol}_{timeframe}.csv": frame.to_csv(index_label="timestamp").encode()
        for (symbol, timeframe), frame in frames.items()
    }
    held = {path for path, content in contents.items() if _holds(path, content)}  # already the sample: kept
    _refuse_files_in_the_way(contents, held, overwrite=overwrite)
    written = []
    for ((symbol, timeframe), frame), (path, content) in zip(frames.items(), contents.items(), strict=True):
        if path not in held:
            _write_bytes(content, path)
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
        raise _both(matches[0][0], matches[1][0], data_dir)
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


def _both(first: Path, second: Path, data_dir: Path) -> DataError:
    return DataError(
        f"both {first.name} and {second.name} exist in {data_dir}; keep one so it is clear which to train on",
        details={"paths": [str(first), str(second)]},
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
    return naive_utc(pd.DatetimeIndex(parsed))


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
    has = f"{path.name} has {len(frame)} bars from {readable_time(first)} to {readable_time(last)}"
    low = _bound(start, "start", path)[0] if start is not None else first
    high, whole_day = _bound(end, "end", path) if end is not None else (last, False)
    stop = high + pd.Timedelta(days=1) if whole_day else high  # exclusive after a date-only end, else inclusive
    if start is not None and end is not None and (low >= stop if whole_day else low > stop):
        raise DataError(
            f"start {readable_time(low)} is after end {readable_time(high)}; swap them ({has})",
            details={"start": low.isoformat(), "end": high.isoformat(), "path": str(path)},
        )
    before_stop = (frame.index < stop) if whole_day else (frame.index <= stop)
    mask = (frame.index >= low) & before_stop
    if not mask.any():
        raise DataError(
            f"no bars between {readable_time(low)} and {readable_time(high)}: {has}; choose dates inside that range",
            details={"start": low.isoformat(), "end": high.isoformat(), "path": str(path)},
        )
    return frame.loc[mask]


def _described(path: Path, symbol: str, timeframe: str, fmt: Literal["csv", "parquet"]) -> DataFile:
    try:
        return _describe(path, symbol, timeframe, fmt)
    except DataError as error:
        return DataFile(
            symbol=symbol,
            timeframe=timeframe,
            path=path,
            format=fmt,
            bars=0,
            start=None,
            end=None,
            problem=error.message,
        )


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


def _ensure_dir(data_dir: Path) -> None:
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        problem = "is a file, not a directory" if data_dir.is_file() else f"cannot be created ({error.strerror})"
        raise DataError(
            f"data directory {data_dir} {problem}; point --data-dir or TRAINOPS_DATA_DIR at a directory",
            details={"data_dir": str(data_dir)},
        ) from None


def _refuse_files_in_the_way(contents: dict[Path, bytes], held: set[Path], *, overwrite: bool) -> None:
    """Refuse, before anything is written, to shadow a parquet file or to replace a CSV holding other data (``held``:
    the files that already hold their sample)."""
    _refuse_any(
        [path.with_suffix(".parquet") for path in contents if path.with_suffix(".parquet").exists()],
        "the same symbol and timeframe as the sample; a sample CSV beside it would make training refuse both",
        "write the sample to another directory with --data-dir",
    )
    if not overwrite:
        _refuse_any(
            [path for path in contents if path.exists() and path not in held],
            "other data, which writing the sample would replace",
            "write the sample to another directory with --data-dir, or replace them with --force",
        )


def _refuse_any(paths: list[Path], holding: str, way_out: str) -> None:
    if paths:
        raise DataError(
            f"{', '.join(path.name for path in paths)} in {paths[0].parent} already hold(s) {holding}; {way_out}",
            details={"paths": [str(path) for path in paths]},
        )


def _holds(path: Path, content: bytes) -> bool:
    """Whether ``path`` is a file holding exactly ``content`` (the size is compared first, without reading)."""
    try:
        return path.is_file() and path.stat().st_size == len(content) and path.read_bytes() == content
    except OSError:
        return False


def _write_bytes(content: bytes, path: Path) -> None:
    """Write through a temporary file so a reader never sees half a file."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_bytes(content)
        os.replace(partial, path)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise DataError(f"cannot write {path}: {error.strerror}", details={"path": str(path)}) from None
