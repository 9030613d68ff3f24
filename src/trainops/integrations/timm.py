"""timm: report a timm-style training loop to trainops, and import a finished run's ``summary.csv``.

timm's ``train.py`` has no callbacks: its loop calls ``train_one_epoch`` and ``validate``, which return dicts
(``{"loss": ...}`` and ``{"loss": ..., "top1": ..., "top5": ...}``), and writes them to ``summary.csv`` with
``timm.utils.update_summary``. :func:`report_epoch` reports the same dicts to trainops at the same place, and
answers whether to stop:

>>> from trainops.callbacks import TrainingCallbacks
>>> from trainops.integrations.timm import report_epoch
>>> with TrainingCallbacks(task="image_classification", config=vars(args), total_epochs=num_epochs) as tracker:
...     for epoch in range(start_epoch, num_epochs):                    # doctest: +SKIP
...         tracker.on_epoch_begin(epoch)
...         train_metrics = train_one_epoch(epoch, model, loader_train, optimizer, train_loss_fn, args)
...         eval_metrics = validate(model, loader_eval, validate_loss_fn, args)
...         if report_epoch(tracker, epoch, train_metrics, eval_metrics, lr=lr):
...             break                                                   # a person, an agent or the diagnosis

Names follow ``summary.csv`` (``train_loss``, ``eval_loss``, ``eval_top1``, ``eval_top5``, ``lr``) and are then
mapped to trainops' canonical ones (``val_loss``, ``val_accuracy``, ``top5_accuracy``, ``learning_rate``), the
originals kept as aliases. **Top-k accuracies are scaled to fractions**: timm reports them in percent (75.3),
trainops' accuracy metrics are fractions (0.753) shown as percentages. Epochs keep timm's numbers (from 0).

This module needs nothing of timm: it reads timm's dicts and files, so any loop shaped like timm's can use it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Unpack

from trainops.callbacks import StopRequest, TrainingCallbacks
from trainops.client.base import TrainOps
from trainops.core.metric_definitions import TaskType
from trainops.integrations.base import TrainingOptions
from trainops.integrations.history import HistoryRow, import_history, locate, parse_row, read_args, read_table

SUMMARY_FILE = "summary.csv"

_TOP_K = re.compile(r"^(?:(?:train|eval)_)?top\d+$")
"""timm's top-k accuracies (``top1``, ``eval_top5``): percentages."""


def summary_row(
    train_metrics: Mapping[str, Any], eval_metrics: Mapping[str, Any] | None = None, lr: float | None = None
) -> dict[str, Any]:
    """One epoch as ``summary.csv`` names it, top-k accuracies as fractions.

    >>> summary_row({"loss": 1.2}, {"loss": 1.4, "top1": 62.5, "top5": 90.0}, lr=0.01)
    {'train_loss': 1.2, 'eval_loss': 1.4, 'eval_top1': 0.625, 'eval_top5': 0.9, 'lr': 0.01}
    """
    row: dict[str, Any] = {f"train_{name}": value for name, value in train_metrics.items()}
    row.update({f"eval_{name}": value for name, value in (eval_metrics or {}).items()})
    if lr is not None:
        row["lr"] = lr
    return {name: fraction(name, value) for name, value in row.items()}


def fraction(name: str, value: Any) -> Any:
    """``value`` divided by 100 when ``name`` is one of timm's top-k accuracies (in percent), else unchanged."""
    if not _TOP_K.match(name):
        return value
    try:
        return float(value) / 100.0
    except (TypeError, ValueError):
        return value  # not a number: TrainingCallbacks skips it with a warning


def report_epoch(
    tracker: TrainingCallbacks,
    epoch: int,
    train_metrics: Mapping[str, Any],
    eval_metrics: Mapping[str, Any] | None = None,
    *,
    lr: float | None = None,
) -> StopRequest | None:
    """Report one epoch of a timm-style loop; returns the stop request when the run should stop, else ``None``.

    Args:
        tracker: The run's :class:`~trainops.callbacks.TrainingCallbacks` (begun: used as a context manager).
        epoch: The epoch, numbered as the loop numbers it (timm's ``train.py`` from 0).
        train_metrics: What ``train_one_epoch`` returned (``{"loss": ...}``).
        eval_metrics: What ``validate`` returned (``{"loss": ..., "top1": ..., "top5": ...}``), if it ran.
        lr: The learning rate (timm's ``train.py`` passes the mean over the parameter groups).
    """
    tracker.on_epoch_end(epoch, summary_row(train_metrics, eval_metrics, lr))
    return tracker.should_stop()


def import_summary(path: str | Path, ops: TrainOps | None = None, **options: Unpack[TrainingOptions]) -> str:
    """Import a finished timm run's ``summary.csv`` into a new completed operation; returns its id.

    Columns are mapped as :func:`report_epoch` maps them (top-k accuracies divided by 100); epochs keep timm's
    numbers. An epoch without evaluation, which ``update_summary`` writes as a shorter row (``epoch``, the
    ``train_*`` values, ``lr``), holds what it has. The task defaults to ``image_classification``; ``args.yaml``
    beside the file (timm's ``train.py`` writes one) gives the config and the planned epochs.

    Args:
        path: The run's ``summary.csv``, or its output directory.
        ops: Where to import; ``trainops.connect()`` by default.
        **options: The keyword arguments of :class:`~trainops.callbacks.TrainingCallbacks`; they win over what
            ``args.yaml`` says.

    Raises:
        FileNotFoundError: there is no ``summary.csv`` there.
        InvalidInputError: the file has no ``epoch`` column, a cell is not a number, or a row has more fields than
            the header names (the header was written for an epoch without evaluation); the message names where.
        TrainOpsError: trainops did not take the operation or an epoch.
    """
    file = locate(path, SUMMARY_FILE)
    rows = []
    for line, row in read_table(file, layout=_short_row):
        parsed = parse_row(file, line, row)
        rows.append(HistoryRow(parsed.epoch, {name: fraction(name, value) for name, value in parsed.metrics.items()}))
    args = read_args(file.parent)
    chosen: TrainingOptions = {"task": TaskType.IMAGE_CLASSIFICATION}
    epochs = args.get("epochs")
    if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0:
        chosen["total_epochs"] = epochs
    chosen.update(options)
    chosen["config"] = {**args, **(options.get("config") or {})}
    return import_history(rows, file, ops, **chosen)


def _short_row(columns: Sequence[str], fields: int) -> list[str] | None:
    """The columns of a ``summary.csv`` row shorter than the header: ``update_summary`` writes each row with that
    epoch's own keys, in the order ``epoch``, ``train_*``, ``eval_*``, ``lr``, so an epoch without evaluation is
    ``epoch``, the ``train_*`` columns and ``lr`` (when the run logs it), with no empty cells. ``None`` for any
    other count: the header does not say what such a row holds."""
    short = ["epoch", *(name for name in columns if name.startswith("train_"))]
    if "lr" in columns:
        short.append("lr")
    return short if fields < len(columns) and fields == len(short) else None
