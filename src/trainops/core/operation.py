"""Operations: a unit of tracked work (a training run, an evaluation, ...) and its lifecycle."""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    computed_field,
    field_validator,
    model_validator,
)

from trainops.core.cancellation import CancelRequest
from trainops.core.metric_definitions import TASK_NAMES, TaskType, parse_task
from trainops.core.payload import check_text, storable
from trainops.core.progress import ProgressState
from trainops.errors import InvalidInputError, NotFoundError

OPERATION_TYPE_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
OPERATION_ID_PATTERN = r"^op_[a-z][a-z0-9_]{0,31}_\d{8}_\d{6}_[0-9a-f]{8}$"
"""What an operation id looks like: ``op_{type}_{YYYYmmdd}_{HHMMSS}_{8 hex}``."""
_OPERATION_ID = re.compile(OPERATION_ID_PATTERN)
MAX_OPERATION_ID_LENGTH = 64
"""The longest id an operation can have (a generated one is at most 61 characters)."""


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
    return bool(_OPERATION_ID.fullmatch(value))  # not match: its "$" lets a final "\n" through


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


class _Unset:
    """The value of a field left out of an update, where ``None`` clears the field."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()
"""Left out: ``update_operation(op_id, name=UNSET)`` keeps the name, ``name=None`` clears it."""

MAX_NAME_LENGTH = 128
MAX_TAG_LENGTH = 64
MAX_TAGS = 32
MAX_NOTES_LENGTH = 10_000
TAG_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:/=+@-]*$"
_TAG = re.compile(TAG_PATTERN)

_NOT_ON_A_LINE = r"\u0000-\u001f\u007f-\u009f\u2028\u2029\u200b\u200e\u200f\u202a-\u202e\u2060-\u206f\ufeff"
"""What a name may not hold: control characters, line and paragraph separators, and the invisible marks that
reorder or hide text (bidirectional overrides, zero-width spaces). The zero-width joiner and non-joiner (U+200D,
U+200C) are allowed: emoji sequences and Persian or Indic words are written with them."""
_SPACE = r"\u0020\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000"
"""The spaces ``str.strip()`` removes that a name may hold inside it (the others are refused anyway)."""
NAME_PATTERN = f"^[^{_NOT_ON_A_LINE}]*[^{_NOT_ON_A_LINE}{_SPACE}][^{_NOT_ON_A_LINE}]*$"
"""A run's name as the OpenAPI document states it (Python's ``re`` and ECMA-262 read it alike): one line with
something besides spaces."""
_REFUSED_IN_A_NAME = re.compile(f"[{_NOT_ON_A_LINE}]")


def check_name(value: str) -> str:
    """A run's name, stripped of surrounding spaces: 1-128 characters, no line breaks or control characters.

    A control character is refused wherever it is, at either end too (``str.strip`` would remove U+001C-U+001F and
    line breaks there), as :data:`NAME_PATTERN` says.

    >>> check_name("  lr sweep #3 ")
    'lr sweep #3'
    >>> check_name("lr sweep\x1f")
    Traceback (most recent call last):
    ...
    ValueError: a name is one line of text; it contains the control character U+001F: remove it
    """
    text = check_text(value, "the name")
    control = _REFUSED_IN_A_NAME.search(text)
    if control:
        raise ValueError(
            f"a name is one line of text; it contains the control character U+{ord(control.group()):04X}: remove it"
        )
    name = text.strip()
    if not 1 <= len(name) <= MAX_NAME_LENGTH:
        got = f"{len(name)}" if name else ("only spaces" if text else "none")
        raise ValueError(
            f"a name has 1 to {MAX_NAME_LENGTH} characters (spaces at its ends do not count), got {got}; "
            "use a short title such as 'resnet18 lr=3e-4' (send null to clear it)"
        )
    return name


def check_tag(value: str) -> str:
    """One tag: 1-64 characters, a letter or digit first, then letters, digits and ``_ . : / = + @ -``.

    >>> check_tag("lr=3e-4")
    'lr=3e-4'
    """
    tag = value.strip()
    if not 1 <= len(tag) <= MAX_TAG_LENGTH or not _TAG.fullmatch(tag):
        raise ValueError(
            f"tag {value[:80]!r} is invalid: a tag has 1 to {MAX_TAG_LENGTH} characters, starts with a letter or "
            "digit and holds only ASCII letters, digits and _ . : / = + @ - (e.g. 'baseline', 'lr=3e-4')"
        )
    return tag


def check_tags(values: Sequence[str]) -> list[str]:
    """Tags checked one by one, duplicates dropped (the first kept: order is the caller's), at most 32.

    >>> check_tags(["b", "a", "b"])
    ['b', 'a']
    """
    if isinstance(values, str):
        raise ValueError(f"tags are a list of strings, e.g. [{values[:40]!r}], not one string")
    tags = list(dict.fromkeys(check_tag(value) for value in values))
    if len(tags) > MAX_TAGS:
        raise ValueError(f"{len(tags)} tags; a run has at most {MAX_TAGS}")
    return tags


def check_notes(value: str) -> str:
    """Free text about a run (several lines welcome), at most 10,000 characters."""
    notes = check_text(value, "the notes")
    if len(notes) > MAX_NOTES_LENGTH:
        raise ValueError(f"the notes are {len(notes):,} characters; keep them under {MAX_NOTES_LENGTH:,}")
    return notes


def _check_tag_list(values: list[str]) -> list[str]:
    return check_tags(values)


# The limits are stated in the JSON schema (OpenAPI) and checked by the check_* functions above, not by pydantic's
# own constraints: so a bad value is refused with the same message in-process and over HTTP.
OperationName = Annotated[
    str,
    AfterValidator(check_name),
    Field(
        description=f"a short title for the run, 1-{MAX_NAME_LENGTH} characters on one line",
        examples=["resnet18 lr=3e-4"],
        json_schema_extra={"minLength": 1, "maxLength": MAX_NAME_LENGTH, "pattern": NAME_PATTERN},
    ),
]
Tag = Annotated[
    str,
    Field(
        description="a label to find runs by: ASCII letters, digits and _ . : / = + @ -",
        json_schema_extra={"minLength": 1, "maxLength": MAX_TAG_LENGTH, "pattern": TAG_PATTERN},
    ),
]
Tags = Annotated[
    list[Tag],
    Field(
        description=f"labels to find runs by, at most {MAX_TAGS}; duplicates dropped",
        json_schema_extra={"maxItems": MAX_TAGS},
    ),
    AfterValidator(_check_tag_list),
]
Notes = Annotated[
    str,
    Field(description="free text about the run", json_schema_extra={"maxLength": MAX_NOTES_LENGTH}),
    AfterValidator(check_notes),
]


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
    name: str | None = Field(None, description="a short title given by whoever runs or reviews it")
    tags: list[str] = Field(default_factory=list, description="labels to find the run by, in the order given")
    notes: str | None = Field(None, description="free text about the run")
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

    @property
    def last_heard_at(self) -> datetime | None:
        """When the run last wrote anything (an epoch, progress, a heartbeat) or started; ``None`` if it never did."""
        return self.last_heartbeat or self.started_at


class WriteAck(BaseModel):
    """The answer to every write a trainer makes: it learns of a stop request without asking separately."""

    operation_id: str
    status: OperationStatus
    cancel_requested: bool
    cancel_reason: str | None = None
    accepted: int = Field(0, description="records written by this request (epochs, or 1 for progress)")


class OperationPage(BaseModel):
    """One page of a filtered, sorted operation list, with the counts a dashboard shows."""

    items: list[Operation]
    total: int = Field(description="operations matching the filters")
    active: int = Field(description="matching operations still pending or running")
    limit: int
    offset: int
    next_cursor: str | None = Field(
        None, description="pass as cursor for the next page (same filters and sort); null on the last page"
    )


def ended_after_cancel(cancel_reason: str, how: str) -> str:
    """The error of an operation whose job died after its cancel was asked (``how`` it died): it ends
    ``cancelled``, not ``failed``, since it was told to stop; this says it did not stop by itself."""
    return (
        f"its job ended after the cancel ({cancel_reason}) before the training ended itself: {how[:1].lower()}{how[1:]}"
    )


def operation_not_found(operation_id: str) -> NotFoundError:
    """The error for an id that names no operation, as every client raises it (an id of megabytes cut short)."""
    shown = operation_id if len(operation_id) <= 100 else f"{operation_id[:100]}..."
    return NotFoundError(
        f"no operation {shown!r}; list operations with `trainops ops list` or GET /api/v1/operations",
        details={"operation_id": shown},
    )
