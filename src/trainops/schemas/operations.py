"""Wire types of operations: what clients send to create, report into, cancel, finish and replay an operation,
and the results they read back.

The domain models themselves (:class:`~trainops.core.operation.Operation`, ``EpochRecord``, ``OperationMetrics``,
``Replay``) cross the wire as they are; this module holds the request bodies and answers built around them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from trainops.core.cancellation import CancelRequest
from trainops.core.diagnosis import Diagnosis
from trainops.core.epoch import EpochRecord, Timestamp
from trainops.core.json_types import JsonTyped
from trainops.core.numbers import Metric
from trainops.core.operation import (
    MAX_OPERATION_ID_LENGTH,
    OPERATION_ID_PATTERN,
    OPERATION_TYPE_PATTERN,
    Notes,
    Operation,
    OperationMetadata,
    OperationName,
    OperationStatus,
    Tags,
)
from trainops.core.payload import NOT_BLANK_PATTERN
from trainops.core.policy import Mode, MonitorPolicy

MAX_LIST_LIMIT = 1000
MAX_LIST_OFFSET = 10**12
"""Past any real table, and within every database's integer range."""
MAX_REASON_LENGTH = 2000
MAX_EPOCHS_PER_WRITE = 100_000
MAX_PLANNED_EPOCHS = 10_000_000


class CreateOperationRequest(JsonTyped):
    """Register an operation that an outside training script runs and reports into."""

    model_config = ConfigDict(extra="forbid")

    operation_type: str = Field("training", pattern=OPERATION_TYPE_PATTERN)
    metadata: OperationMetadata = Field(default_factory=lambda: OperationMetadata())
    total_epochs: int | None = Field(None, ge=1, le=MAX_PLANNED_EPOCHS, description="epochs planned")
    name: OperationName | None = None
    tags: Tags | None = None
    notes: Notes | None = None
    operation_id: str | None = Field(
        None,
        max_length=MAX_OPERATION_ID_LENGTH,
        json_schema_extra={"pattern": OPERATION_ID_PATTERN},  # checked by the service, whose message says the form
        description=(
            "the id to give it, of the form op_{operation_type}_YYYYmmdd_HHMMSS_{8 hex} (made by the server when "
            "left out): a client that chooses it can send the request again after an outage or a lost answer; a "
            "second request with an id already taken answers 409"
        ),
        examples=["op_training_20250610_123456_ab12cd34"],
    )
    started_at: Timestamp | None = Field(
        None,
        description=(
            "when the run began, for a run registered after it began (it began while the server was away): the "
            "operation is registered running since then (its created_at too); a time in the future counts as now"
        ),
    )


class EpochBatch(JsonTyped):
    """Several epochs in one request (``{"epochs": [...]}``); a single record may be posted bare."""

    model_config = ConfigDict(extra="forbid")

    epochs: list[EpochRecord] = Field(max_length=MAX_EPOCHS_PER_WRITE)


class CancelRequestBody(JsonTyped):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(
        min_length=1,
        max_length=MAX_REASON_LENGTH,
        description="why the operation should stop",
        json_schema_extra={"pattern": NOT_BLANK_PATTERN},
    )
    requested_by: str = Field("user", min_length=1, max_length=64, description="who asks: user, agent, ...")


MAX_METADATA_FIELDS = 256
"""Metadata fields one update may send."""
MAX_METADATA_BYTES = 8 * 1024 * 1024
"""A run's stored metadata, as compact JSON, at most: what one create may send under the default body limit.
Updates that would grow it past this are refused; each one alone is within the body limit, so without it
repeated updates could grow a run's metadata (and every read and list of it) without end."""
PROTECTED_METADATA = frozenset({"executor", "worker"})
"""Metadata fields only trainops writes: who runs the operation (orphan recovery fails a run of an executor whose
worker is gone, so changing them would let any caller have a live run failed or a dead one kept)."""


class UpdateOperationRequest(JsonTyped):
    """Change what describes an operation (``PATCH /operations/{id}``): its name, tags, notes and metadata fields.

    Fields left out stay as they are; ``name``, ``tags`` or ``notes`` sent as ``null`` are cleared. ``tags``
    replaces them all; ``add_tags`` and ``remove_tags`` change some (not with ``tags``). In ``metadata`` each field
    replaces the stored value of that name (a mapping such as ``parameters`` is replaced whole); a field sent as
    ``null`` is removed. ``executor`` and ``worker`` cannot be changed.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    name: OperationName | None = None
    tags: Tags | None = None
    add_tags: Tags | None = Field(None, description="tags to add after the stored ones")
    remove_tags: Tags | None = Field(None, description="tags to remove (ones the run does not have are ignored)")
    notes: Notes | None = None
    # null is refused (the validator below says why): the document does not offer it
    metadata: Annotated[dict[str, Any], Field(min_length=1, max_length=MAX_METADATA_FIELDS)] | SkipJsonSchema[None] = (
        Field(None, description="the fields to set, e.g. {'mlflow_run_id': '6f1c...', 'task': 'object_detection'}")
    )

    @model_validator(mode="after")
    def _something(self) -> UpdateOperationRequest:
        if not self.model_fields_set:
            raise ValueError(
                'nothing to change: send name, tags, add_tags, remove_tags, notes or metadata, e.g. {"name": "sweep"}'
            )
        if "metadata" in self.model_fields_set and self.metadata is None:
            raise ValueError('metadata is an object of the fields to set, e.g. {"mlflow_run_id": "6f1c..."}')
        return self


class CompleteRequest(JsonTyped):
    model_config = ConfigDict(extra="forbid")

    status: Literal["completed", "failed", "cancelled"] = "completed"
    result: dict[str, Any] | None = None
    error: str | None = Field(None, max_length=100_000)


class StartRequest(JsonTyped):
    model_config = ConfigDict(extra="forbid")

    worker: str | None = Field(None, max_length=256)


class DiagnoseRequest(JsonTyped):
    """A policy to replay over an operation's stored history (``POST /operations/{id}/diagnose``)."""

    model_config = ConfigDict(extra="forbid")

    policy: MonitorPolicy = Field(
        default_factory=lambda: MonitorPolicy(), description="the policy to try; fields left out keep their defaults"
    )
    total_epochs_planned: int | None = Field(
        None,
        ge=1,
        le=MAX_PLANNED_EPOCHS,
        description="the run's planned length; the operation's total_epochs by default",
    )


class OperationResults(BaseModel):
    """What an operation produced: its result summary (or error) and the headline of its metric history."""

    operation_id: str
    operation_type: str
    status: OperationStatus
    created_at: datetime
    started_at: datetime | None
    completed_at: datetime | None
    duration_seconds: float | None
    result: dict[str, Any] | None
    error: str | None
    cancel_request: CancelRequest | None
    epochs_completed: int
    total_epochs_planned: int | None
    best_epoch: int | None
    best_val_loss: Metric | None
    final_epoch: EpochRecord | None
    diagnosis: Diagnosis | None = Field(None, description="the diagnosis at the end, when epochs were recorded")


JobState = Literal["PENDING", "RUNNING", "STOPPED", "SUCCEEDED", "FAILED"]
"""A job's state as its executor sees it: Ray's job states, which the local executor's workers map onto."""


class ExecutorJob(BaseModel):
    """What the executor running an operation knows of its job, which the operation itself may not say yet: a
    Ray job waiting for resources (``PENDING``), or one that failed before its worker reported anything."""

    executor: str = Field(description="'local' or 'ray'")
    job_id: str = Field(description="the Ray job's submission id (the operation id), or the local worker's host:pid")
    status: JobState
    message: str | None = Field(None, description="the executor's own words, e.g. Ray's reason a job failed")
    start_time: datetime | None = None
    end_time: datetime | None = None
    exit_code: int | None = Field(None, description="the worker's (Ray: the entrypoint's) exit code once it ended")
    read_at: datetime | None = Field(
        None,
        description="when the executor last read the job's state (Ray); older than a few seconds when the cluster "
        "has stopped answering, and this is the last state it told",
    )


class OperationDetail(Operation):
    """``GET /operations/{id}``: the operation, and what its executor knows of its job (``job``), when this server
    runs trainings on that executor and it knows the job."""

    job: ExecutorJob | None = None


class DeletedOperation(BaseModel):
    """``DELETE /operations/{id}?purge=true``: an ended run removed, and what went with it."""

    operation_id: str
    deleted: Literal[True] = True
    status: OperationStatus = Field(description="how the run had ended: completed, failed or cancelled")
    epochs: int = Field(description="epoch rows removed (the metric history)")
    steps: int = Field(description="points of the per-step series removed")
    artifacts: int = Field(description="artifact files removed")
    artifact_bytes: int = Field(description="their size in bytes")
    model_versions: int = Field(
        description="model versions the run wrote that no named model uses, removed with it (0 or 1)"
    )
    worker_log: bool = Field(description="whether the log of the worker process that ran it was removed")
    models_kept: list[str] = Field(
        description="named models made from the run: they stay and now say source_deleted: true"
    )
    model_version_kept: str | None = Field(
        None,
        description="what the run's result names as its model_version and why it was left in place (only the "
        "run's own version folder, {strategy}/{series}_vN written by it, that no named model uses is removed); "
        "null when it was removed, is already gone, or the result names none",
    )


class BestValue(BaseModel):
    """The best value so far of the metric a run is judged by (its monitor under the default policy: the task's
    primary metric once reported, else ``val_loss``), as the diagnosis finds it: finite values only, the earliest
    epoch among equals."""

    metric: str = Field(description="the monitor, e.g. val_loss, or mAP50 for an object_detection run")
    mode: Mode = Field(description="min when lower is better, max when higher is")
    value: float
    epoch: int


class ListedOperation(Operation):
    """An operation as ``GET /operations?include=best`` lists it."""

    best: BestValue | None = Field(
        None,
        description="with include=best: the best value of the run's primary metric and its epoch; null before "
        "the run reported a finite value of it",
    )


class ListedOperationPage(BaseModel):
    """``GET /operations``: one page of operations, newest first unless sorted otherwise, with the counts of
    everything that matches, and the cursor of the next page."""

    items: list[ListedOperation]
    total: int = Field(description="operations matching the filters")
    active: int = Field(description="matching operations still pending or running")
    limit: int
    offset: int
    next_cursor: str | None = Field(
        None, description="pass as cursor (with the same filters and sort) for the next page; null on the last"
    )
