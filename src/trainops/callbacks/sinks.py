"""Where TrainingCallbacks send what a training reports, besides trainops itself: the console, MLflow, ...

A sink is told when training begins, each epoch, each artifact and the end. Sinks are called through
:class:`GuardedSink`, so one that fails (MLflow down, a full disk) logs one warning and is skipped from then on;
the training never sees its error.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TextIO, runtime_checkable

from trainops.core.epoch import EpochRecord
from trainops.core.operation import OperationStatus

logger = logging.getLogger("trainops.callbacks")


@dataclass
class RunInfo:
    """What a sink knows of the run when training begins."""

    operation_id: str | None
    """The trainops operation, or ``None`` when trainops itself could not be reached (the sink still works)."""
    task: str | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    total_epochs: int | None = None


@runtime_checkable
class Sink(Protocol):
    """A destination for a training's reports. Every method may raise: the caller guards it."""

    name: str

    def begin(self, run: RunInfo) -> Mapping[str, Any] | None:
        """Training begins; answer metadata worth recording on the operation (e.g. the MLflow run id), or None."""

    def epoch(self, record: EpochRecord) -> None:
        """One finished epoch, its metrics under canonical names."""

    def artifact(self, path: Path, artifact_path: str | None) -> None:
        """A file the training produced."""

    def end(self, status: OperationStatus, final_metrics: Mapping[str, float], error: str | None) -> None:
        """Training ended: completed, failed (with ``error``) or cancelled. Drain anything queued."""


class GuardedSink:
    """Calls a sink so that its failures never reach the training: the first one is logged as a warning and the
    sink is switched off for the rest of the run (what it had not sent is dropped)."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self.failed: str | None = None

    def call(self, method: str, *args: Any) -> Any:
        if self.failed is not None:
            return None
        try:
            return getattr(self.sink, method)(*args)
        except Exception as error:  # a tracking sink must never break the training
            self.failed = f"{type(error).__name__}: {error}"
            logger.warning(
                "trainops: reporting to %s failed in %s (%s); training goes on without it",
                self.sink.name,
                method,
                self.failed,
            )
            return None


class ConsoleSink:
    """One line per epoch on the console: ``epoch 3  train_loss 0.4123  val_loss 0.5012  f1 0.71``."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def begin(self, run: RunInfo) -> None:
        where = f" as {run.operation_id}" if run.operation_id else ""
        self._print(f"trainops: training{where}" + (f" for {run.total_epochs} epochs" if run.total_epochs else ""))

    def epoch(self, record: EpochRecord) -> None:
        values = "  ".join(f"{name} {value:.4g}" for name, value in _values(record).items())
        self._print(f"epoch {record.epoch}  {values}".rstrip())

    def artifact(self, path: Path, artifact_path: str | None) -> None:
        self._print(f"artifact {path.name}" + (f" -> {artifact_path}" if artifact_path else ""))

    def end(self, status: OperationStatus, final_metrics: Mapping[str, float], error: str | None) -> None:
        self._print(f"trainops: training {status.value}" + (f": {error}" if error else ""))

    def _print(self, line: str) -> None:
        print(line, file=self.stream or sys.stderr, flush=True)


def _values(record: EpochRecord) -> dict[str, float]:
    """Every metric of an epoch, standard fields first."""
    values = {name: record.value(name) for name in record.metric_names()}
    return {name: value for name, value in values.items() if value is not None}
