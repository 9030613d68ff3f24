"""What the metric history says about a run: the types of a diagnosis."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from trainops.core.epoch import EpochRecord
from trainops.core.forecast import Forecast
from trainops.core.metric_definitions import TieredDefinition
from trainops.core.numbers import Metric

Evidence = dict[str, float | int | str | bool | None]


class TrendDirection(StrEnum):
    IMPROVING = "improving"
    FLAT = "flat"
    WORSENING = "worsening"
    UNKNOWN = "unknown"


class Action(StrEnum):
    CONTINUE = "continue"
    STOP = "stop"
    STOP_AND_RESTORE_BEST = "stop_and_restore_best"


class SignalRule(StrEnum):
    """The rule behind a :class:`Signal`. The values are part of the JSON contract: clients match on them."""

    NON_FINITE = "non_finite"
    """NaN or infinity in a watched metric's recent epochs: the run diverged."""
    NON_FINITE_RECOVERED = "non_finite_recovered"
    """NaN or infinity only further back: the run recovered (a warning, not divergence)."""
    DIVERGENCE_THRESHOLD = "divergence_threshold"
    """The monitored value is past ``divergence_threshold``."""
    LOSS_BLOWUP = "loss_blowup"
    """The monitored loss is more than ``divergence_factor`` times its best."""
    TRAIN_LOSS_RISING = "train_loss_rising"
    """Training loss rising significantly over the window."""
    OVERFITTING = "overfitting"
    """Validation loss rising since its best while training loss falls."""
    PLATEAU = "plateau"
    """``patience`` epochs without improvement, flat since the best."""
    NO_IMPROVEMENT = "no_improvement"
    """``patience`` epochs without improvement, drifting since the best."""
    PROJECTED_IMPROVEMENT = "projected_improvement"
    """What continuing to the end of the run is projected to gain on the best."""


class Trend(BaseModel):
    """The monitored metric's direction over the last ``window`` epochs, from a least-squares fit."""

    metric: str
    direction: TrendDirection
    percent_change: float | None = Field(
        None, description="fitted change over the window, in percent of the fitted start (signed)"
    )
    slope: float | None = Field(None, description="fitted change per epoch, in the metric's units")
    within_noise: bool | None = Field(
        None,
        description="the fitted change cannot be told from the noise around the line (|t| below 2): a flat trend "
        "whatever its percent_change; null when there is no fit",
    )
    window: int
    from_epoch: int | None = None
    to_epoch: int | None = None


class Signal(BaseModel):
    """One rule that fired, with the parameters it used and the numbers that made it fire."""

    rule: SignalRule
    severity: Literal["info", "warning", "critical"]
    message: str
    parameters: Evidence = Field(default_factory=dict)
    evidence: Evidence = Field(default_factory=dict)


class Recommendation(BaseModel):
    action: Action
    reason: str
    restore_epoch: int | None = Field(None, description="the epoch whose weights to keep, when stopping")
    extend_by: int | None = Field(
        None,
        description="a run still improving at its planned end: how many epochs past it are projected to improve "
        "the best by more than min_improvement_pct (see extend_forecast); null otherwise",
    )
    extend_forecast: Forecast | None = Field(
        None, description="the forecast of the best by the end of that extension (planned end + extend_by)"
    )


class Diagnosis(BaseModel):
    """The verdict on a metric history; produced by :func:`trainops.core.analysis.analyze`."""

    monitor: str
    mode: Literal["min", "max"]
    best_epoch: int | None = None
    best_value: Metric | None = None
    best_val_loss: Metric | None = None
    epochs_since_improvement: int = 0
    is_plateaued: bool = False
    is_overfitting: bool = False
    overfitting_since_epoch: int | None = None
    is_diverging: bool = False
    trend: Trend
    signals: list[Signal] = Field(default_factory=list)
    projection: Signal | None = Field(
        None,
        description=(
            "what continuing to the end of the run is projected to gain (rule projected_improvement), whichever way "
            "it went; it is also among the signals when it says stop"
        ),
    )
    forecast: Forecast | None = Field(
        None,
        description="how good the monitored metric is projected to get by the planned end of the run (with no "
        "planned length, as many epochs again as it has run): a median and its 20-80% band; null below 4 epochs",
    )
    recommendation: Recommendation
    epochs_analyzed: int = 0


class TrainingMetrics(Diagnosis):
    """The metrics block of an operation: its epochs (oldest first) and the diagnosis over all of them."""

    epochs: list[EpochRecord] = Field(default_factory=list)
    thinned: bool = Field(
        False,
        description="epochs holds only some of the epochs asked for (points=N: thinned for display, the first, the "
        "last, the best and every metric's extremes kept); the stored history and the diagnosis are whole",
    )
    epochs_stored: int = Field(0, description="how many epochs the operation's stored history holds")
    total_epochs_planned: int | None = None
    total_epochs_completed: int = 0
    definitions: dict[str, TieredDefinition] = Field(
        default_factory=dict,
        description="each metric the run has reported (in any epoch, whatever since_epoch says) with its tier "
        "(primary, standard or custom), label, format and direction: the task's primary metric first",
    )


class OperationMetrics(BaseModel):
    """``GET /operations/{id}/metrics``'s data: which operation, and its metrics block."""

    operation_id: str
    operation_type: str
    metrics: TrainingMetrics
