"""A sink that remembers what a training reported, to count what each framework's callback sent."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from trainops.callbacks import RunInfo
from trainops.core.epoch import EpochRecord
from trainops.core.operation import OperationStatus


class RecordingSink:
    name = "recording"

    def __init__(self) -> None:
        self.epochs: list[int] = []  # every epoch report, in order (a re-sent epoch appears twice)
        self.status: OperationStatus | None = None
        self.final_metrics: dict[str, float] = {}

    def begin(self, run: RunInfo) -> Mapping[str, Any] | None:
        return None

    def epoch(self, record: EpochRecord) -> None:
        self.epochs.append(record.epoch)

    def artifact(self, path: Path, artifact_path: str | None) -> None:
        pass

    def end(self, status: OperationStatus, final_metrics: Mapping[str, float], error: str | None) -> None:
        self.status, self.final_metrics = status, dict(final_metrics)
