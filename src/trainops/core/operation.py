"""Operations: a unit of tracked work (a training run, an evaluation, ...) and its lifecycle."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, computed_field, field_validator, model_validator

from trainops.core.cancellation import CancelRequest
from trainops.core.metric_definitions import TASK_NAMES, TaskType, parse_task
from trainops.core.payload import storable
from trainops.core.progress import ProgressState
from trainops.errors import InvalidInputError

OPERATION_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
_OPERATION_ID = re.compile(r"^op_[a-z][a-z0-9_]{0,31}_\d{8}_\d{6}_[0-9a-f]{8}$")


class OperationStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Whether the operation has ended; a terminal operation accepts no more writes."""
        return self in TERMINAL_STATUSES


TERMINAL_STATUSES = frozenset({OperationStatus.COMPLETED, OperationStatus.FAILED, OperationStatus.CANCELLED})
ACTIVE_STATUSES = frozenset({OperationStatus.PENDING, OperationStatus.RUNNING})


def new_operation_id(operation_type: str, now: datetime | None = None) -> str:
    """A sortable, unique id such as ``op_training_20250610_123456_ab12cd34``."""
    moment = now or datetime.now(UTC)
    return f"op_{operation_type}_{moment:%Y%m%d_%H%M%S}_{secrets.token_hex(4)}"


def looks_like_operation_id(value: str) -> bool:
    return bool(_OPERATION_ID.match(value))


class OperationMetadata(BaseModel):
    """What the operation is about. Known keys are typed; anything else a caller adds is kept as is."""

    model_config = ConfigDict(extra="allow")

    symbol: str | None = None
    timeframe: str | None = None
    strategy: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    executor: str = Field("external", description="who runs it: 'external' (a script), 'local', 'ray'")
    worker: str | None = Field(None, description="host:pid (or Ray node) running the job")
    device: str | None = None
    task: TaskType | None = Field(
        None,
        description="what the run learns (object_detection, image_classification, ...): its primary metric "
        "(mAP50, val_accuracy, ...) is then the diagnosis's default monitor; see GET /metrics/definitions",
    )

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any, info: ValidationInfo) -> Any:
        # refused here, not when a later read fails to encode it: see core/payload.py
        if not isinstance(data, dict):
            return data
        data = storable(data, "metadata")
        task = data.get("task")
        if info.context == STORED and task is not None and task not in TASK_NAMES:
            # a row written before `task` was a known key (any value was kept then): still readable
            data = {**data, "task": None, "unrecognized_task": task}
        return data

    @field_validator("task", mode="before")
    @classmethod
    def _known_task(cls, value: Any) -> Any:
        # trainops' own message, which lists the tasks, rather than pydantic's
        if value is None or isinstance(value, TaskType) or not isinstance(value, str):
            return value
        try:
            return parse_task(value)
        except InvalidInputError as error:
            raise ValueError(error.message) from None


STORED = {"stored": True}
"""The validation context of metadata read back from the database (``model_validate(row, context=STORED)``)."""


class Operation(BaseModel):
    """A tracked operation and everything known about it."""

    operation_id: str
    operation_type: str
    status: OperationStatus
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    updated_at: datetime
    progress: ProgressState = Field(default_factory=ProgressState)
    metadata: OperationMetadata = Field(default_factory=lambda: OperationMetadata())
    result: dict[str, Any] | None = None
    error: str | None = None
    cancel_request: CancelRequest | None = None
    total_epochs: int | None = None
    epochs_completed: int = 0
    last_epoch: int | None = None
    last_heartbeat: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cancel_requested(self) -> bool:
        return self.cancel_request is not None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cancel_reason(self) -> str | None:
        return self.cancel_request.reason if self.cancel_request else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES


class WriteAck(BaseModel):
    """The answer to every write a trainer makes: it learns of a stop request without asking separately."""

    operation_id: str
    status: OperationStatus
    cancel_requested: bool
    cancel_reason: str | None = None
    accepted: int = Field(0, description="records written by this request (epochs, or 1 for progress)")


class OperationPage(BaseModel):
    """One page of a filtered operation list, newest first, with the counts a dashboard shows."""

    items: list[Operation]
    total: int = Field(description="operations matching the filters")
    active: int = Field(description="matching operations still pending or running")
    limit: int
    offset: int
