"""Request bodies of the REST API (responses are the domain models themselves)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trainops.core.epoch import EpochRecord
from trainops.core.operation import OPERATION_TYPE_PATTERN, OperationMetadata
from trainops.core.policy import MonitorPolicy
from trainops.service.operations import MAX_PLANNED_EPOCHS


class CreateOperationRequest(BaseModel):
    """Register an operation that an outside training script runs and reports into."""

    model_config = ConfigDict(extra="forbid")

    operation_type: str = Field("training", pattern=OPERATION_TYPE_PATTERN)
    metadata: OperationMetadata = Field(default_factory=lambda: OperationMetadata())
    total_epochs: int | None = Field(None, ge=1, le=10_000_000, description="epochs planned")


class EpochBatch(BaseModel):
    """Several epochs in one request (``{"epochs": [...]}``); a single record may be posted bare."""

    model_config = ConfigDict(extra="forbid")

    epochs: list[EpochRecord] = Field(max_length=100_000)


class CancelRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000, description="why the operation should stop")
    requested_by: str = Field("user", min_length=1, max_length=64, description="who asks: user, agent, ...")


class CompleteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["completed", "failed", "cancelled"] = "completed"
    result: dict[str, Any] | None = None
    error: str | None = Field(None, max_length=100_000)


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    worker: str | None = Field(None, max_length=256)


class DiagnoseRequest(BaseModel):
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
