"""Progress of an operation: one state object, with the phase bands every producer shares."""

from __future__ import annotations

import math
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import ConfigDict, Field, ValidationInfo, field_validator, model_validator

from trainops.core.epoch import MAX_EPOCH, MAX_STEP
from trainops.core.json_types import JsonTyped
from trainops.core.payload import check_text, storable


class Phase(StrEnum):
    PREPROCESSING = "preprocessing"
    PREPARATION = "preparation"
    TRAINING = "training"
    EVALUATION = "evaluation"
    FINISHED = "finished"


PHASE_BANDS: dict[Phase, tuple[float, float]] = {
    Phase.PREPROCESSING: (0.0, 5.0),
    Phase.PREPARATION: (5.0, 5.0),
    Phase.TRAINING: (5.0, 95.0),
    Phase.EVALUATION: (95.0, 100.0),
    Phase.FINISHED: (100.0, 100.0),
}
"""Where each phase sits on the 0-100% bar, so every producer's percentage means the same thing."""


def band_percentage(phase: Phase, fraction: float) -> float:
    """The overall percentage for ``fraction`` (0-1) of the way through ``phase``."""
    low, high = PHASE_BANDS[phase]
    if math.isnan(fraction):
        fraction = 0.0
    return round(low + (high - low) * min(max(fraction, 0.0), 1.0), 3)


MAX_MESSAGE_LENGTH = 1024
MAX_STEP_LENGTH = 256


def clipped(text: str, most: int = MAX_MESSAGE_LENGTH) -> str:
    """``text`` cut to ``most`` characters, with an ellipsis where it was cut: what trainops itself says in a
    progress message (a strategy's hundred fuzzy sets listed) must never fail the run it describes.

    >>> clipped("Fuzzifying rsi: low, mid, high", 20)
    'Fuzzifying rsi: low…'
    """
    return text if len(text) <= most else text[: most - 1] + "…"


class ProgressState(JsonTyped):
    """Where an operation is now.

    ``message`` is what a person reads (``Epoch 5/100 · Batch 120/500``); the other fields are what a program
    reads. ``context`` carries anything phase-specific (symbol, timeframe, indicator, ...).
    """

    model_config = ConfigDict(extra="forbid")

    percentage: float = Field(0.0, ge=0.0, le=100.0, allow_inf_nan=False)
    phase: str | None = Field(None, max_length=64)
    current_step: str | None = Field(None, max_length=MAX_STEP_LENGTH)
    message: str | None = Field(None, max_length=MAX_MESSAGE_LENGTH)
    # the bounds of a stored epoch and step: a JavaScript reader gets every count exactly
    items_done: int | None = Field(None, ge=0, le=MAX_STEP)
    items_total: int | None = Field(None, ge=0, le=MAX_STEP)
    epoch: int | None = Field(None, ge=0, le=MAX_EPOCH)
    total_epochs: int | None = Field(None, ge=0, le=MAX_EPOCH)
    batch: int | None = Field(None, ge=0, le=MAX_STEP)
    total_batches: int | None = Field(None, ge=0, le=MAX_STEP)
    context: dict[str, Any] = Field(default_factory=dict)
    updated_at: datetime | None = None

    @field_validator("phase", "current_step", "message")
    @classmethod
    def _storable_text(cls, text: str | None, info: ValidationInfo) -> str | None:
        return None if text is None else check_text(text, str(info.field_name))

    @model_validator(mode="before")
    @classmethod
    def _storable_context(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("context"):
            data = {**data, "context": storable(data["context"], "progress context")}
        return data

    @classmethod
    def training(
        cls,
        epoch: int,
        total_epochs: int,
        *,
        batch: int | None = None,
        total_batches: int | None = None,
    ) -> ProgressState:
        """Progress inside the training band for ``epoch`` (1-based count of the epoch under way).

        >>> ProgressState.training(5, 100, batch=120, total_batches=500).message
        'Epoch 5/100 · Batch 120/500'
        """
        fraction_of_epoch = min(batch / total_batches, 1.0) if batch is not None and total_batches else 1.0
        done = (max(epoch - 1, 0) + fraction_of_epoch) / total_epochs if total_epochs else 0.0
        message = f"Epoch {epoch}/{total_epochs}"
        if batch is not None and total_batches:
            message += f" · Batch {batch}/{total_batches}"
        return cls(
            percentage=band_percentage(Phase.TRAINING, done),
            phase=Phase.TRAINING,
            current_step=f"epoch {epoch}",
            message=message,
            items_done=epoch,
            items_total=total_epochs,
            epoch=epoch,
            total_epochs=total_epochs,
            batch=batch,
            total_batches=total_batches,
        )
