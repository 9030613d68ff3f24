"""Storage cost: bytes the SQLite database grows by per 100 epochs of the standard fields.

A real server (uvicorn, one process, fresh SQLite database) is given ``--operations`` operations, then 100 epochs
each of the standard fields (train/val loss and accuracy, learning rate, duration; the server adds the
timestamp), posted as one ``{"epochs": [...]}`` batch per operation. The database is copied with SQLite's online
backup at three points (empty schema, operations registered, epochs written); each copy is VACUUMed and its
file size taken, so free pages, the WAL and page-allocation luck do not count.

* bytes per 100 epochs = (size with epochs - size with the operations alone) / operations. Goal: <= 20 KB.
  This is conservative: it also counts what the operation rows grow by when their runs start.
* dbstat (when SQLite has it): pages and payload bytes of the ``epoch_metrics`` table and every index on it,
  i.e. the epochs alone, without the operation rows.

A second run with custom metrics (stored as JSON beside the standard columns) shows what those cost; it is
informational, not part of the goal.

Run: ``.venv/bin/python bench/storage.py`` (``--quick`` for fewer operations, ``--help`` for sizes).
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from _report import machine, table, verdict
from _server import database_file, trainops_server
from _workload import create_operation, epoch_record, post_epochs

GOAL_BYTES_PER_100_EPOCHS = 20_000
EPOCHS_PER_OPERATION = 100


@dataclass(frozen=True)
class TableUsage:
    """One table or index as dbstat sees it."""

    name: str
    pages: int
    page_bytes: int
    payload_bytes: int


@dataclass(frozen=True)
class StorageResult:
    label: str
    operations: int
    empty_bytes: int
    operations_bytes: int
    epochs_bytes: int
    usage: list[TableUsage]

    @property
    def per_100_epochs(self) -> float:
        return (self.epochs_bytes - self.operations_bytes) / self.operations

    def epoch_table_bytes_per_100_epochs(self) -> tuple[float, float]:
        """(page bytes, payload bytes) of ``epoch_metrics`` per 100 epochs, from dbstat."""
        rows = [u for u in self.usage if u.name == "epoch_metrics" or u.name.startswith("ix_epoch_metrics")]
        pages = sum(u.page_bytes for u in rows) / self.operations
        payload = sum(u.payload_bytes for u in rows) / self.operations
        return pages, payload


def vacuumed_copy(source: Path, destination: Path) -> int:
    """Copy a live database with SQLite's online backup (consistent, WAL included), VACUUM the copy, and
    return its size in bytes."""
    with sqlite3.connect(source) as live, sqlite3.connect(destination) as copy:
        live.backup(copy)
    copy = sqlite3.connect(destination, isolation_level=None)
    try:
        copy.execute("PRAGMA journal_mode=DELETE")
        copy.execute("VACUUM")
    finally:
        copy.close()
    return destination.stat().st_size


def dbstat_usage(database: Path) -> list[TableUsage]:
    """Pages and payload per table and index, or nothing when this SQLite lacks the dbstat table."""
    connection = sqlite3.connect(database)
    try:
        rows = connection.execute(
            "SELECT name, COUNT(*), SUM(pgsize), SUM(payload) FROM dbstat GROUP BY name ORDER BY SUM(pgsize) DESC"
        ).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        connection.close()
    return [TableUsage(name, pages, size, payload) for name, pages, size, payload in rows]


def measure(label: str, operations: int, custom_metrics: int, scratch: Path) -> StorageResult:
    """Fill a fresh server's database and take the three vacuumed sizes."""
    home = scratch / label.replace(" ", "-")
    home.mkdir()
    with trainops_server(home) as server, httpx.Client(base_url=server.url, timeout=60.0) as client:
        database = database_file(server.home)
        empty = vacuumed_copy(database, scratch / f"{home.name}-empty.db")
        operation_ids = [create_operation(client, EPOCHS_PER_OPERATION) for _ in range(operations)]
        with_operations = vacuumed_copy(database, scratch / f"{home.name}-operations.db")
        for index, operation_id in enumerate(operation_ids):
            records = [
                epoch_record(e, EPOCHS_PER_OPERATION, seed=index, custom_metrics=custom_metrics)
                for e in range(EPOCHS_PER_OPERATION)
            ]
            post_epochs(client, operation_id, records)
        final_copy = scratch / f"{home.name}-epochs.db"
        with_epochs = vacuumed_copy(database, final_copy)
    return StorageResult(label, operations, empty, with_operations, with_epochs, dbstat_usage(final_copy))


def _print(results: Sequence[StorageResult]) -> None:
    rows = []
    for r in results:
        table_pages, table_payload = r.epoch_table_bytes_per_100_epochs()
        rows.append(
            (
                r.label,
                r.operations,
                r.empty_bytes,
                r.operations_bytes,
                r.epochs_bytes,
                r.per_100_epochs,
                table_pages if r.usage else "-",
                table_payload if r.usage else "-",
            )
        )
    headers = (
        "epochs of",
        "operations",
        "empty schema B",
        "+operations B",
        "+epochs B",
        "B per 100 epochs",
        "dbstat pages B/100",
        "dbstat payload B/100",
    )
    print(table(headers, rows))
    for r in results:
        if r.usage:
            print(f"\ndbstat, {r.label} ({r.operations} operations x {EPOCHS_PER_OPERATION} epochs):")
            usage_rows = [(u.name, u.pages, u.page_bytes, u.payload_bytes) for u in r.usage]
            print(table(("table or index", "pages", "bytes", "payload bytes"), usage_rows))
    standard = results[0]
    print(
        f"\ngoal: standard fields <= {GOAL_BYTES_PER_100_EPOCHS:,} B per 100 epochs: "
        f"{standard.per_100_epochs:,.0f} B, "
        f"{verdict(standard.per_100_epochs, GOAL_BYTES_PER_100_EPOCHS, higher_is_better=False)}"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--operations", type=int, default=100, help="operations of 100 epochs each (default 100)")
    parser.add_argument(
        "--custom-metrics", type=int, default=4, help="custom metrics per epoch in the second run (default 4; 0: skip)"
    )
    parser.add_argument("--quick", action="store_true", help="20 operations")
    args = parser.parse_args(argv)
    operations = 20 if args.quick else args.operations

    with tempfile.TemporaryDirectory(prefix="trainops-bench-storage-") as scratch:
        sizes = f"{operations} operations x {EPOCHS_PER_OPERATION} epochs"
        print(f"trainops storage: {sizes}, SQLite {sqlite3.sqlite_version}; {machine()}")
        results = [measure("standard fields", operations, 0, Path(scratch))]
        if args.custom_metrics:
            label = f"standard + {args.custom_metrics} custom"
            results.append(measure(label, operations, args.custom_metrics, Path(scratch)))
    _print(results)


if __name__ == "__main__":
    main()
