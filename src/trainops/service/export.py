"""An operation's epoch history as a CSV file: every stored epoch, never thinned, one row each, oldest first.

The columns are fixed, then open: ``epoch, step, timestamp, duration`` and the five standard metrics
(:data:`CSV_COLUMNS`), then every custom metric any epoch reported, sorted by name. A value an epoch did not report
is an empty cell; NaN and infinities are written ``nan``, ``inf`` and ``-inf`` (what ``float()``, ``csv`` readers
and ``pandas.read_csv`` read back as the same values), finite numbers in Python's shortest round-trip form, times
in ISO 8601 UTC to the microsecond (one format throughout, so that readers parse the column alike).
``pandas.read_csv(io.StringIO(text))`` gives the history back value for value (pandas 3; pandas 2's default float
parser rounds some values, ``float_precision="round_trip"`` reads them exactly), an empty cell and ``nan`` both as
NaN (a ``csv`` reader tells them apart). The custom columns are those the exported epochs reported: exports of
different ranges (``since_epoch``) can have different columns.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from datetime import UTC
from typing import Literal

from trainops.core.epoch import STANDARD_METRICS, EpochRecord

ExportFormat = Literal["csv", "json"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = ("csv", "json")

CSV_COLUMNS: tuple[str, ...] = ("epoch", "step", "timestamp", "duration", *STANDARD_METRICS)
"""The columns every export starts with, in this order; the run's custom metrics follow, sorted."""

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"

ROWS_PER_CHUNK = 2000
"""Rows formatted at a time: a long history streams out in chunks of some 100-200 KB."""


def custom_metric_names(records: Sequence[EpochRecord]) -> list[str]:
    """Every custom metric (those of ``EpochRecord.metrics``) any of ``records`` reports, sorted."""
    names: set[str] = set()
    for record in records:
        if record.metrics:
            names.update(record.metrics)
    return sorted(names)


def epochs_csv(records: Sequence[EpochRecord]) -> Iterator[str]:
    """``records`` as CSV text, in chunks of :data:`ROWS_PER_CHUNK` rows (the header first, with the first rows).

    >>> from datetime import datetime
    >>> moment = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
    >>> print("".join(epochs_csv([EpochRecord(epoch=0, val_loss=float("nan"), timestamp=moment, f1=0.5)])), end="")
    epoch,step,timestamp,duration,train_loss,val_loss,train_accuracy,val_accuracy,learning_rate,f1
    0,,2025-06-10T12:00:00.000000Z,,,nan,,,,0.5
    """
    custom = custom_metric_names(records)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *custom])
    for start in range(0, max(len(records), 1), ROWS_PER_CHUNK):
        # csv writes None as an empty cell and floats as repr() does: shortest round trip, nan, inf, -inf
        writer.writerows(_row(record, custom) for record in records[start : start + ROWS_PER_CHUNK])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()


def _row(record: EpochRecord, custom: list[str]) -> list[object]:
    stamp = record.timestamp
    metrics = record.metrics
    return [
        record.epoch,
        record.step,
        stamp.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z") if stamp is not None else None,
        record.duration,
        record.train_loss,
        record.val_loss,
        record.train_accuracy,
        record.val_accuracy,
        record.learning_rate,
        *[metrics.get(name) for name in custom],
    ]
