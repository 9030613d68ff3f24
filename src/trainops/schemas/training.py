"""Wire types of strategy training: what ``POST /training/start`` takes, and what a training's status and
performance look like to every client."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trainops.core.epoch import EpochRecord
from trainops.core.operation import OperationStatus


class EarlyStoppingOverride(BaseModel):
    model_config = ConfigDict(extra="forbid")

    patience: int | None = Field(None, ge=1, le=100_000)
    monitor: str | None = None
    min_delta: float | None = Field(None, ge=0.0, allow_inf_nan=False)


class ConfigOverrides(BaseModel):
    """The ``config`` of ``POST /training/start``: changes applied on top of the strategy file."""

    model_config = ConfigDict(extra="forbid")

    model_type: Literal["mlp"] | None = None
    hidden_layers: list[int] | None = None
    epochs: int | None = Field(None, ge=1, le=100_000)
    learning_rate: float | None = Field(None, gt=0.0, allow_inf_nan=False)
    batch_size: int | None = Field(None, ge=1, le=65_536)
    validation_split: float | None = Field(None, gt=0.0, lt=1.0, allow_inf_nan=False)
    early_stopping: EarlyStoppingOverride | None = None
    optimizer: Literal["adam", "sgd", "rmsprop"] | None = None
    dropout_rate: float | None = Field(None, ge=0.0, lt=1.0, allow_inf_nan=False)


class TrainingRequest(BaseModel):
    """What to train: a strategy (by name, or a path on the machine that trains), optionally narrowed to one
    symbol and timeframe, a date range, and config overrides."""

    model_config = ConfigDict(extra="forbid")

    strategy: str | None = Field(None, max_length=1024, description="a strategy name or a .yaml path")
    symbol: str | None = Field(None, max_length=32)
    timeframe: str | None = Field(None, max_length=16)
    config: ConfigOverrides | None = None
    start_date: date | None = None
    end_date: date | None = None
    task_id: str | None = Field(None, max_length=64, description="choose the operation id (makes retries safe)")
    device: str | None = Field(None, max_length=32, description="cuda, cpu, ...; CUDA when available by default")

    @model_validator(mode="after")
    def _dates(self) -> TrainingRequest:
        if self.start_date and self.end_date and self.start_date > self.end_date:
            raise ValueError(f"start_date {self.start_date} is after end_date {self.end_date}")
        return self


class TrainingStarted(BaseModel):
    """The answer to ``POST /training/start``."""

    success: bool = True
    task_id: str
    status: Literal["training_started"] = "training_started"
    message: str
    symbol: str
    timeframe: str
    config: dict[str, Any]
    estimated_duration_minutes: float


TrainingState = Literal["pending", "training", "completed", "failed", "cancelled"]


TRAINING_STATE: dict[OperationStatus, TrainingState] = {
    OperationStatus.PENDING: "pending",
    OperationStatus.RUNNING: "training",
    OperationStatus.COMPLETED: "completed",
    OperationStatus.FAILED: "failed",
    OperationStatus.CANCELLED: "cancelled",
}


class TrainingStatus(BaseModel):
    """The answer to ``GET /training/{task_id}``."""

    task_id: str
    status: TrainingState
    progress: float = Field(description="percent, 0-100")
    phase: str | None = None
    message: str | None = None
    current_epoch: int | None = Field(None, description="1-based count of the epoch under way or last finished")
    total_epochs: int | None = None
    started_at: datetime | None = None
    estimated_completion: datetime | None = None
    current_metrics: EpochRecord | None = Field(None, description="the last finished epoch")
    error: str | None = None
    cancel_reason: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    strategy: str | None = None


class TrainingPerformance(BaseModel):
    """The answer to ``GET /training/{task_id}/performance``."""

    task_id: str
    status: TrainingState
    training_metrics: dict[str, Any]
    test_metrics: dict[str, Any]
    model_info: dict[str, Any]
    data: dict[str, Any] = Field(default_factory=dict)
