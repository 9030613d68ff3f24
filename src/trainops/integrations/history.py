"""A finished run's per-epoch history, read from a framework's CSV file, replayed into a new completed operation.

Ultralytics writes ``results.csv`` and timm ``summary.csv``, one row an epoch, beside an ``args.yaml`` of the run's
settings. Their importers (:func:`trainops.integrations.ultralytics.import_results`,
:func:`trainops.integrations.timm.import_summary`) read those files into :class:`HistoryRow` s and hand them to
:func:`import_history`, which replays them through :class:`~trainops.callbacks.TrainingCallbacks`: names are
normalised exactly as in a live run (so an imported run and a live one read alike), and MLflow mirroring and the
other options work the same.

Unlike a live run, an import is not training that must go on whatever happens: a file that cannot be read, or
trainops refusing the operation or an epoch, is an error.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Unpack

import yaml

from trainops.callbacks import TrainingCallbacks
from trainops.client.base import TrainOps
from trainops.client.connect import connect
from trainops.core.yaml_text import safe_load
from trainops.errors import InvalidInputError, TrainOpsError
from trainops.integrations.base import TrainingOptions


@dataclass(frozen=True)
class HistoryRow:
    """One epoch of a finished run: its number as the framework wrote it, and its metrics by the framework's names."""

    epoch: int
    metrics: dict[str, float] = field(default_factory=dict)


def locate(path: str | Path, file_name: str) -> Path:
    """The CSV file itself, or ``file_name`` inside a run directory.

    Raises:
        FileNotFoundError: neither exists; the message names what was looked for.
    """
    given = Path(path)
    candidate = given / file_name if given.is_dir() else given
    if not candidate.is_file():
        where = f"{given} is a directory without {file_name}" if given.is_dir() else f"{given} does not exist"
        raise FileNotFoundError(f"no {file_name} to import: {where}; pass the file or the run's directory")
    return candidate


Layout = Callable[[Sequence[str], int], Sequence[str] | None]
"""For a row whose field count differs from the header's: the columns it holds, given the header's columns and the
row's field count, or ``None`` when the file's format does not say (the row is then refused)."""


def read_table(path: Path, layout: Layout | None = None) -> list[tuple[int, dict[str, str]]]:
    """The rows of a CSV file with a header, each with its line number; names and values stripped of the padding
    some versions write.

    A row with more or fewer fields than the header has is refused, unless ``layout`` names its columns (timm's
    ``summary.csv`` writes an epoch without evaluation as a shorter row): guessing would put a value under another
    column's name.

    Raises:
        InvalidInputError: the file has no ``epoch`` column, no row, or a row whose fields the header does not
            name; the message names the line.
    """
    with path.open(newline="", encoding="utf-8") as file:
        reader = csv.reader(file, skipinitialspace=True)
        columns = [name.strip() for name in next((row for row in reader if row), [])]
        if "epoch" not in columns:
            raise InvalidInputError(
                f"{path} has no 'epoch' column (columns: {', '.join(columns) or 'none'}): is it the run's CSV file?",
                details={"path": str(path), "columns": columns},
            )
        rows: list[tuple[int, dict[str, str]]] = []
        for cells in reader:
            if not cells:  # a blank line
                continue
            names: Sequence[str] | None = columns
            if len(cells) != len(columns):
                names = layout(columns, len(cells)) if layout is not None else None
            if names is None or len(names) != len(cells):
                raise InvalidInputError(
                    f"{path}, line {reader.line_num} has {len(cells)} fields where the header names {len(columns)} "
                    f"({', '.join(columns)}): which value is which cannot be told; correct the row or the header",
                    details={"path": str(path), "line": reader.line_num, "fields": len(cells), "columns": columns},
                )
            rows.append((reader.line_num, {name: value.strip() for name, value in zip(names, cells, strict=True)}))
    if not rows:
        raise InvalidInputError(f"{path} holds no epoch: nothing to import", details={"path": str(path)})
    return rows


def parse_row(path: Path, line: int, row: Mapping[str, str], skip: frozenset[str] = frozenset()) -> HistoryRow:
    """A row as a :class:`HistoryRow`: ``epoch`` an integer, every other non-empty cell a number.

    Empty cells (a metric missing from that epoch) are left out; ``nan`` and ``inf`` are kept, as evidence.

    Raises:
        InvalidInputError: the epoch is not a whole number, or a cell is not a number; the message names the line
            and the column.
    """
    epoch_text = row.get("epoch", "")
    try:
        epoch_number = float(epoch_text)
    except ValueError:
        epoch_number = math.nan
    if not epoch_number.is_integer() or epoch_number < 0:
        raise InvalidInputError(
            f"{path}, line {line}: epoch {epoch_text!r} is not a whole number",
            details={"path": str(path), "line": line},
        )
    metrics: dict[str, float] = {}
    for name, text in row.items():
        if name == "epoch" or name in skip or not name or not text:
            continue
        try:
            metrics[name] = float(text)
        except ValueError:
            raise InvalidInputError(
                f"{path}, line {line}: {name} is {text!r}, not a number",
                details={"path": str(path), "line": line, "column": name},
            ) from None
    return HistoryRow(int(epoch_number), metrics)


def read_args(directory: Path) -> dict[str, Any]:
    """The run's settings from ``args.yaml`` beside its CSV file (Ultralytics and timm's train.py write one), or
    ``{}`` when there is none or it is not a mapping."""
    file = directory / "args.yaml"
    if not file.is_file():
        return {}
    try:
        loaded = safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError:
        return {}
    return {str(key): value for key, value in loaded.items()} if isinstance(loaded, dict) else {}


def import_history(
    rows: Sequence[HistoryRow], source: Path, ops: TrainOps | None = None, **options: Unpack[TrainingOptions]
) -> str:
    """Replay a finished run's epochs into a new operation, which ends ``completed``; returns its id.

    Args:
        rows: The epochs, in the order they ran (a number seen twice keeps its last row, as a resumed run
            rewrites it).
        source: The file read, recorded as ``metadata.imported_from``.
        ops: Where to import; ``trainops.connect()`` by default.
        **options: The keyword arguments of :class:`~trainops.callbacks.TrainingCallbacks` (``task``,
            ``config``, ``total_epochs``, ``mlflow``, ...).

    Raises:
        TrainOpsError: trainops did not take the operation or one of its epochs (the logged warning says why).
    """
    client = ops if ops is not None else connect()
    try:
        metadata = {"imported_from": str(source), **(options.get("metadata") or {})}
        # stored one by one: every epoch is in before the operation is ended and the result checked
        chosen: TrainingOptions = {**options, "metadata": metadata, "flush_interval": None}
        tracker = TrainingCallbacks(client, **chosen)
        with tracker:  # an interrupted import ends the operation failed, never left running
            if tracker.operation_id is None or not tracker.is_reporting:
                raise TrainOpsError(f"{source} was not imported: trainops did not take the operation (see the warning)")
            for row in rows:
                tracker.on_epoch_end(row.epoch, row.metrics)
        stored = len(client.get_metrics(tracker.operation_id).metrics.epochs)
        expected = len({row.epoch for row in rows})
        if stored != expected:
            raise TrainOpsError(
                f"{source}: {stored} of its {expected} epochs were stored in {tracker.operation_id} (see the warnings)",
                details={"operation_id": tracker.operation_id, "stored": stored, "expected": expected},
            )
        return tracker.operation_id
    finally:
        if ops is None:
            client.close()
