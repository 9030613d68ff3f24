"""Wire types of strategy training: what ``POST /training/start`` takes, and what a training's status,
result and performance look like to every client."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from trainops.core.epoch import EpochRecord
from trainops.core.json_types import JsonTyped
from trainops.core.numbers import Metric
from trainops.core.operation import Notes, OperationName, OperationStatus, Tags

TRAINING = "training"
"""The operation type of a strategy training started by trainops."""


class EarlyStoppingOverride(JsonTyped):
    model_config = ConfigDict(extra="forbid")

    patience: int | None = Field(None, ge=1, le=100_000)
    monitor: str | None = None
    min_delta: float | None = Field(None, ge=0.0, allow_inf_nan=False)


class ConfigOverrides(JsonTyped):
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


MAX_RESOURCE = 1024.0
"""More CPUs or GPUs than one training job could be given anywhere: a typo, not a request."""


class Resources(JsonTyped):
    """What one training job needs from the machine that runs it: ``{"cpus": 1, "gpus": 1}``.

    On Ray they are the job's ``entrypoint_num_cpus`` / ``entrypoint_num_gpus`` (fractions share a GPU); the job
    waits, pending, until the cluster has them free. The local executor refuses more than this machine has.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cpus: float | None = Field(
        None,
        gt=0.0,
        le=MAX_RESOURCE,
        allow_inf_nan=False,
        description="CPU cores, more than 0 (a job takes some), e.g. 2",
    )
    gpus: float | None = Field(
        None, ge=0.0, le=MAX_RESOURCE, allow_inf_nan=False, description="GPUs, e.g. 1 (0.5 shares one on Ray)"
    )


class TrainingRequest(JsonTyped):
    """What to train: a strategy (by name, or a path on the machine that trains), optionally narrowed to one
    symbol and timeframe, a date range, config overrides, and the resources its job needs."""

    model_config = ConfigDict(extra="forbid")

    strategy: str | None = Field(None, min_length=1, max_length=1024, description="a strategy name or a .yaml path")
    symbol: str | None = Field(None, min_length=1, max_length=32)
    timeframe: str | None = Field(None, min_length=1, max_length=16)
    config: ConfigOverrides | None = None
    start_date: date | None = None
    end_date: date | None = None
    task_id: str | None = Field(None, max_length=64, description="choose the operation id (makes retries safe)")
    device: str | None = Field(
        None, min_length=1, max_length=32, description="cuda, cpu, ...; CUDA when available by default"
    )
    resources: Resources | None = Field(
        None, description='what the job needs, e.g. {"cpus": 1, "gpus": 1}: a Ray job waits until they are free'
    )
    name: OperationName | None = Field(None, description="a short title for the run, to find it by")
    tags: Tags | None = Field(None, description="labels to find the run by, e.g. ['baseline', 'lr=3e-4']")
    notes: Notes | None = Field(None, description="free text about the run")

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


# -- the result of a strategy training ---------------------------------------------------------------------------


class _StoredResult(BaseModel):
    """Base of the parts of a strategy training's result.

    Results are stored (in the operations table, in ``metrics.json``) and read back by name, by this version and by
    later ones. So every field has a default (a result written before a field existed still reads), and keys this
    version does not know are kept and written back out (``extra="allow"``), never dropped.
    """

    model_config = ConfigDict(extra="allow")


class StrategyTrainingMetrics(_StoredResult):
    """How training went: the last epoch's figures, the best epoch, and why the run ended.

    Epochs are numbered from 0, as the epoch history is; ``best_value`` is ``monitor`` at ``best_epoch``. The
    ``final_*`` figures are those of the last finished epoch (``None`` when none finished) and may be NaN or
    infinite when the run diverged.
    """

    final_train_loss: Metric | None = None
    final_val_loss: Metric | None = None
    final_train_accuracy: Metric | None = None
    final_val_accuracy: Metric | None = None
    kept_train_accuracy: Metric | None = Field(
        None,
        description="the training accuracy of the weights the model keeps: best_epoch's when restored_best_weights, "
        "else the last epoch's",
    )
    kept_val_accuracy: Metric | None = Field(None, description="the validation accuracy of the weights kept, likewise")
    best_epoch: int | None = None
    best_value: Metric | None = None
    monitor: str | None = None
    epochs_completed: int = 0
    epochs_planned: int | None = None
    early_stopped: bool = False
    stopped_reason: str | None = Field(None, description="why the run ended before its last planned epoch")
    restored_best_weights: bool = False
    diverged: str | None = Field(None, description="why the run was judged diverged, if it was")
    training_time_minutes: float | None = None
    samples_per_second: float | None = None


class ClassMetrics(BaseModel):
    """How the model does on one class of the test split.

    ``accuracy`` is the share of this class's samples classified correctly (equal to its recall; torchmetrics'
    per-class accuracy), the number a trader reads as "how often a real BUY was called BUY".
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    precision: Metric
    recall: Metric
    f1: Metric
    support: int
    accuracy: Metric


class StrategyTestMetrics(_StoredResult):
    """How the model scored on the held-out test split (fractions 0-1).

    ``precision``, ``recall`` and ``f1_score`` are macro averages (every class weighs the same); the ``*_weighted``
    ones weigh classes by their support. ``confusion_matrix[i][j]`` counts samples of true class ``i`` predicted as
    ``j``, in the order of ``per_class``. ``support`` is the number of test samples.
    """

    test_loss: Metric | None = None
    test_accuracy: Metric | None = None
    precision: Metric | None = None
    recall: Metric | None = None
    f1_score: Metric | None = None
    precision_weighted: Metric | None = None
    recall_weighted: Metric | None = None
    f1_weighted: Metric | None = None
    confusion_matrix: list[list[int]] = Field(default_factory=list)
    per_class: dict[str, ClassMetrics] = Field(default_factory=dict)
    support: int = 0
    baseline_accuracy: Metric | None = Field(
        None,
        exclude_if=lambda value: value is None,  # written when known: stored results read back alike
        description="the test accuracy of always predicting baseline_class, the training split's most frequent "
        "class: what test_accuracy must beat before the model has learned anything",
    )
    baseline_class: str | None = Field(
        None, exclude_if=lambda value: value is None, description="the training split's most frequent class"
    )


class StrategyModelInfo(_StoredResult):
    """The trained model: its architecture and size, where it trained, and where its version was written."""

    model_type: str | None = None
    architecture: str | None = None
    parameters_count: int | None = None
    model_size_mb: float | None = None
    input_size: int | None = None
    device: str | None = None
    model_path: str | None = Field(
        None,
        exclude_if=lambda path: path is None,
        description="the model version's directory; absent when the training kept its model in memory only",
    )


class SplitRows(_StoredResult):
    """Labelled rows in each split."""

    train: int = 0
    validation: int = 0
    test: int = 0


class ClassShare(_StoredResult):
    """How many labelled rows of one class, and their share of all labelled rows."""

    count: int = 0
    fraction: float = 0.0


class DataSummary(_StoredResult):
    """The rows the model learned from: features, rows per split and symbol, labels, and the time span."""

    features: int = 0
    rows: SplitRows = Field(default_factory=SplitRows)
    rows_per_symbol: dict[str, int] = Field(default_factory=dict)
    dropped_rows: int = Field(0, description="rows left out for missing features (warm-up) or labels")
    purged_rows: int = Field(
        0,
        exclude_if=lambda rows: not rows,  # written only when there are some: stored results read back alike
        description="rows left out at the boundaries between the splits: their label was decided by a bar of a "
        "later split (the zigzag confirms a pivot bars after it), which would leak that split's prices into the "
        "targets",
    )
    class_balance: dict[str, ClassShare] = Field(default_factory=dict)
    start: str | None = Field(None, description="the first labelled bar, ISO 8601")
    end: str | None = Field(None, description="the last labelled bar, ISO 8601")
    constant_features: list[str] = Field(
        default_factory=list,
        exclude_if=lambda features: not features,  # written only when there are some: stored results read back alike
        description="features with one value over every training row (a fuzzy set no bar reaches, an indicator "
        "that never moves): the model learns nothing from them; widen the set or drop it",
    )


class CancelledBy(_StoredResult):
    """The stop request that ended a training before its last planned epoch."""

    reason: str = ""
    requested_by: str = "user"


class StrategyResult(_StoredResult):
    """The result of a strategy training: what ``GET /operations/{id}`` returns as a training's ``result``.

    A training stopped during training still has one (its history, best weights and test scores), with
    ``cancelled`` saying who stopped it. ``model_version`` (relative to the models directory) and
    ``model_info.model_path`` are present when the model was written as a version, absent otherwise.

    Read a stored result with :func:`strategy_result`, which tells a strategy result from any other.
    """

    strategy: str | None = None
    symbols: list[str] = Field(default_factory=list)
    timeframes: list[str] = Field(default_factory=list)
    training_metrics: StrategyTrainingMetrics = Field(default_factory=StrategyTrainingMetrics)
    test_metrics: StrategyTestMetrics = Field(default_factory=StrategyTestMetrics)
    model_info: StrategyModelInfo = Field(default_factory=StrategyModelInfo)
    data: DataSummary = Field(default_factory=DataSummary)
    cancelled: CancelledBy | None = None
    duration_seconds: float | None = None
    timings: dict[str, float] = Field(default_factory=dict, description="seconds per phase of the job")
    model_version: str | None = Field(None, exclude_if=lambda version: version is None)


def strategy_result(result: Mapping[str, Any] | None) -> StrategyResult | None:
    """The typed view of an operation's ``result`` when a strategy training wrote it, else ``None``.

    Any script may store any result; one holding ``training_metrics`` and ``test_metrics`` objects that read as a
    strategy training's is one.

    >>> strategy_result({"test_accuracy": 0.9}) is None
    True
    >>> typed = strategy_result({"training_metrics": {"best_epoch": 4}, "test_metrics": {"f1_score": 0.5}})
    >>> typed.training_metrics.best_epoch, typed.test_metrics.f1_score
    (4, 0.5)
    """
    if not result or not all(isinstance(result.get(key), Mapping) for key in ("training_metrics", "test_metrics")):
        return None
    try:
        return StrategyResult.model_validate(result)
    except ValidationError:
        return None


class TrainingPerformance(BaseModel):
    """The answer to ``GET /training/{task_id}/performance``."""

    task_id: str
    status: TrainingState
    training_metrics: StrategyTrainingMetrics
    test_metrics: StrategyTestMetrics
    model_info: StrategyModelInfo
    data: DataSummary = Field(default_factory=DataSummary)

    @classmethod
    def of(cls, task_id: str, status: TrainingState, result: StrategyResult | Mapping[str, Any]) -> TrainingPerformance:
        """The performance part of a training's result (a stored one is read as a :class:`StrategyResult`).

        Raises:
            ValueError: a stored ``result`` that does not read as a strategy training's; the message names the
                first field that does not.
        """
        if isinstance(result, StrategyResult):
            typed = result
        else:
            try:
                typed = StrategyResult.model_validate(result)
            except ValidationError as error:
                problem = error.errors()[0]
                where = ".".join(str(part) for part in problem["loc"]) or "result"
                raise ValueError(f"{where}: {problem['msg']}") from None
        return cls(
            task_id=task_id,
            status=status,
            training_metrics=typed.training_metrics,
            test_metrics=typed.test_metrics,
            model_info=typed.model_info,
            data=typed.data,
        )
