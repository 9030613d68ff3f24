"""The CSV export of an epoch history (pure): columns, empty cells, non-finite spellings, and a round trip through
``csv`` and pandas that gives back every value, NaN and infinities included."""

from __future__ import annotations

import csv
import io
import math
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from trainops.core.epoch import EpochRecord
from trainops.service import export
from trainops.service.export import CSV_COLUMNS, epochs_csv

START = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
NAN, INF = float("nan"), float("inf")


def history() -> list[EpochRecord]:
    return [
        EpochRecord(epoch=0, step=100, train_loss=0.9, val_loss=1.0, learning_rate=1e-3, duration=1.5, timestamp=START),
        EpochRecord(epoch=1, step=200, train_loss=0.7, val_loss=NAN, timestamp=START + timedelta(seconds=2), f1=0.25),
        EpochRecord(epoch=2, train_loss=INF, val_loss=-INF, val_accuracy=0.1 + 0.2, grad_norm=NAN),
        EpochRecord(
            epoch=5, train_accuracy=1 / 3, timestamp=START + timedelta(microseconds=7), zeta=-0.0, alpha=2e-308
        ),
    ]


def text_of(records: list[EpochRecord]) -> str:
    return "".join(epochs_csv(records))


def same(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_columns_rows_and_cells() -> None:
    rows = list(csv.reader(io.StringIO(text_of(history()))))
    assert rows[0] == [*CSV_COLUMNS, "alpha", "f1", "grad_norm", "zeta"]  # standard first, custom sorted
    assert list(CSV_COLUMNS) == [
        "epoch", "step", "timestamp", "duration", "train_loss", "val_loss", "train_accuracy", "val_accuracy",
        "learning_rate",
    ]  # fmt: skip
    assert [row[0] for row in rows[1:]] == ["0", "1", "2", "5"]  # oldest first, one row per epoch
    assert rows[1] == ["0", "100", "2025-06-10T12:00:00.000000Z", "1.5", "0.9", "1.0", "", "", "0.001", "", "", "", ""]
    assert rows[2][5] == "nan" and rows[2][10] == "0.25"
    assert rows[3][2] == ""  # no timestamp (the store always has one; a record built by hand may not)
    assert rows[3][4:6] == ["inf", "-inf"] and rows[3][7] == repr(0.1 + 0.2) and rows[3][11] == "nan"
    assert rows[4][2] == "2025-06-10T12:00:00.000007Z" and rows[4][12] == "-0.0"


def test_round_trip_through_csv_gives_every_value_back() -> None:
    records = history()
    rows = list(csv.DictReader(io.StringIO(text_of(records))))
    for record, row in zip(records, rows, strict=True):
        assert int(row["epoch"]) == record.epoch
        assert (int(row["step"]) if row["step"] else None) == record.step
        stamp = datetime.fromisoformat(row["timestamp"]) if row["timestamp"] else None
        assert stamp == record.timestamp
        for name in ("duration", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate"):
            value = float(row[name]) if row[name] else None
            assert same(value, record.value(name)), name
        for name in ("alpha", "f1", "grad_norm", "zeta"):
            value = float(row[name]) if row[name] else None
            assert same(value, record.metrics.get(name)), name  # an empty cell is a metric not reported


def test_round_trip_through_pandas() -> None:
    records = history()
    frame = pd.read_csv(io.StringIO(text_of(records)))
    assert list(frame["epoch"]) == [0, 1, 2, 5]
    assert frame["val_loss"].iloc[0] == 1.0 and math.isnan(frame["val_loss"].iloc[1])
    assert frame["train_loss"].iloc[2] == math.inf and frame["val_loss"].iloc[2] == -math.inf
    assert frame["val_accuracy"].iloc[2] == 0.1 + 0.2  # exact: the shortest repr round-trips
    assert frame["train_accuracy"].iloc[3] == 1 / 3 and frame["alpha"].iloc[3] == 2e-308
    assert math.isnan(frame["grad_norm"].iloc[2]) and math.isnan(frame["f1"].iloc[0])  # NaN, and not reported
    stamps = pd.to_datetime(frame["timestamp"], utc=True)
    assert stamps.iloc[1] == pd.Timestamp(records[1].timestamp)


def test_an_empty_history_is_the_header_alone() -> None:
    assert text_of([]) == ",".join(CSV_COLUMNS) + "\n"


def test_long_histories_come_in_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(export, "ROWS_PER_CHUNK", 3)
    records = [EpochRecord(epoch=e, val_loss=e / 10, timestamp=START) for e in range(7)]
    chunks = list(epochs_csv(records))
    assert len(chunks) == 3
    assert chunks[0].count("\n") == 4 and chunks[2].count("\n") == 1  # header + 3, then 3, then 1
    assert "".join(chunks).count("\n") == 8
