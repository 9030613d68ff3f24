"""Wire types of an operation's event stream (``GET /operations/{id}/events``, ``TrainOps.events``).

Each event names its kind in ``event`` (also the SSE ``event:`` field) and carries its own ``id`` (the SSE ``id:``
field): an opaque cursor to resume from with ``Last-Event-ID``. Parse any of them with :data:`OPERATION_EVENT`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, TypeAdapter

from trainops.core.diagnosis import Diagnosis
from trainops.core.epoch import EpochRecord
from trainops.core.operation import OperationStatus
from trainops.core.progress import ProgressState


class _Event(BaseModel):
    id: str = Field(description="the stream's cursor after this event: send it as Last-Event-ID to resume")
    operation_id: str


class EpochsEvent(_Event):
    """Epochs stored since the last event, oldest first; a re-sent epoch (its record replaced) comes again."""

    event: Literal["epochs"] = "epochs"
    epochs: list[EpochRecord]
    thinned: bool = Field(
        False,
        description="the stream was asked for points=N and more epochs than N were new (a long history's catch-up, "
        "or a long gap): epochs holds N of them at most, chosen for display (first, last, best epoch and every "
        "metric's extremes); GET /operations/{id}/metrics has them all",
    )


class ProgressEvent(_Event):
    """Where the operation is now (phase, percentage, message)."""

    event: Literal["progress"] = "progress"
    progress: ProgressState


class RecommendationEvent(_Event):
    """The diagnosis, sent when its recommendation changes: the action, the epoch to restore or the rules that
    fired (``signals``, each with its evidence). Counts in the reason's wording alone do not make a change."""

    event: Literal["recommendation"] = "recommendation"
    diagnosis: Diagnosis


class StatusEvent(_Event):
    """The operation's status, sent when it or its cancel request changes."""

    event: Literal["status"] = "status"
    status: OperationStatus
    cancel_requested: bool = False
    cancel_reason: str | None = None
    error: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    epochs_completed: int = 0
    total_epochs: int | None = None


class DiagnosisEvent(_Event):
    """The last event of an operation that ended: its status and the diagnosis over its whole history (``None``
    when it recorded no epochs). The stream closes after it."""

    event: Literal["diagnosis"] = "diagnosis"
    status: OperationStatus
    diagnosis: Diagnosis | None = None


OperationEvent = Annotated[
    EpochsEvent | ProgressEvent | RecommendationEvent | StatusEvent | DiagnosisEvent, Field(discriminator="event")
]
"""One event of an operation's stream; tell the kinds apart by ``event`` (or ``isinstance``)."""

OPERATION_EVENT: TypeAdapter[OperationEvent] = TypeAdapter(OperationEvent)
"""Parses the JSON ``data`` of any event."""
