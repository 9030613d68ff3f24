"""Runs side by side: which one is better, and why.

A pure function over operations and their metric histories (each diagnosed with the same policy), so an agent's
``compare_runs`` answer is the same whichever transport fetched the histories, and the logic is testable
without a server.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from pydantic import BaseModel, Field

from trainops.core.diagnosis import Action, TrainingMetrics, TrendDirection
from trainops.core.numbers import Metric
from trainops.core.operation import Operation, OperationStatus
from trainops.errors import InvalidInputError


class RunSummary(BaseModel):
    """One run as :func:`compare_runs` sees it: its best, its end, and the diagnosis' verdicts."""

    operation_id: str
    status: OperationStatus
    strategy: str | None = None
    symbol: str | None = None
    timeframe: str | None = None
    epochs_run: int = Field(description="epochs recorded in the history")
    epochs_planned: int | None = None
    best_epoch: int | None = Field(None, description="the epoch with the best monitored value")
    best_value: Metric | None = None
    epochs_to_best: int | None = Field(None, description="epochs recorded up to and including the best one")
    final_epoch: int | None = None
    final_metrics: dict[str, Metric] = Field(default_factory=dict, description="every metric of the last epoch")
    is_overfitting: bool = False
    is_plateaued: bool = False
    is_diverging: bool = False
    trend: TrendDirection = TrendDirection.UNKNOWN
    trend_percent_change: float | None = None
    recommendation: Action = Action.CONTINUE
    recommendation_reason: str = ""


class RunComparison(BaseModel):
    """The runs in the order asked, the ranking (best first) and the verdict with its reason."""

    monitor: str
    mode: Literal["min", "max"]
    runs: list[RunSummary]
    ranking: list[str] = Field(description="operation ids, best first; runs without the monitored metric last")
    best_run: str | None = Field(None, description="None when no run reported the monitored metric")
    reason: str


def summarize_run(operation: Operation, metrics: TrainingMetrics) -> RunSummary:
    """One run's summary from its operation and its whole metric history."""
    epochs = metrics.epochs
    last = epochs[-1] if epochs else None
    epochs_to_best = None
    if metrics.best_epoch is not None:
        epochs_to_best = next(
            (position for position, record in enumerate(epochs, 1) if record.epoch == metrics.best_epoch), None
        )
    return RunSummary(
        operation_id=operation.operation_id,
        status=operation.status,
        strategy=operation.metadata.strategy,
        symbol=operation.metadata.symbol,
        timeframe=operation.metadata.timeframe,
        epochs_run=len(epochs),
        epochs_planned=operation.total_epochs,
        best_epoch=metrics.best_epoch,
        best_value=metrics.best_value,
        epochs_to_best=epochs_to_best,
        final_epoch=last.epoch if last else None,
        final_metrics={name: value for name in last.metric_names() if (value := last.value(name)) is not None}
        if last
        else {},
        is_overfitting=metrics.is_overfitting,
        is_plateaued=metrics.is_plateaued,
        is_diverging=metrics.is_diverging,
        trend=metrics.trend.direction,
        trend_percent_change=metrics.trend.percent_change,
        recommendation=metrics.recommendation.action,
        recommendation_reason=metrics.recommendation.reason,
    )


def compare_runs(runs: Sequence[tuple[Operation, TrainingMetrics]], *, min_delta: float = 0.0) -> RunComparison:
    """Rank runs by the best value of the monitored metric, and say which is better and why.

    The best value is what early stopping keeps (the weights of the best epoch), so it is the fair measure of
    a run even when it overfit or diverged afterwards; those verdicts come along as caveats. Best values within
    ``min_delta`` of each other are a tie, broken by health (not diverging, then not overfitting), then by fewer
    epochs to reach the best.

    Args:
        runs: Two or more ``(operation, metrics)`` pairs, the metrics over the whole history and diagnosed with
            one policy (same monitor and mode).
        min_delta: Differences up to this (in the metric's units) count as a tie.

    Raises:
        InvalidInputError: fewer than two distinct runs, or histories diagnosed with different monitors.

    Example:
        >>> from trainops.core.epoch import EpochRecord
        >>> from trainops.core.analysis import analyze
        >>> from datetime import UTC, datetime
        >>> def run(op_id, losses):
        ...     now = datetime.now(UTC)
        ...     operation = Operation(operation_id=op_id, operation_type="training", status="completed",
        ...                           created_at=now, updated_at=now)
        ...     history = [EpochRecord(epoch=e, val_loss=v) for e, v in enumerate(losses)]
        ...     return operation, TrainingMetrics(**analyze(history).model_dump(), epochs=history)
        >>> comparison = compare_runs([run("a", [0.9, 0.7, 0.6]), run("b", [0.9, 0.5, 0.55])])
        >>> comparison.best_run, comparison.ranking
        ('b', ['b', 'a'])
    """
    ids = [operation.operation_id for operation, _ in runs]
    if len(set(ids)) < 2:
        raise InvalidInputError(
            f"comparing needs two or more different operation ids, got {ids}; list them with list_operations"
        )
    monitors = {(metrics.monitor, metrics.mode) for _, metrics in runs}
    if len(monitors) > 1:
        raise InvalidInputError(f"the runs were diagnosed with different monitors {sorted(monitors)}; use one policy")
    monitor, mode = monitors.pop()
    summaries = [summarize_run(operation, metrics) for operation, metrics in runs]
    ranked = _rank(summaries, mode, min_delta)
    return RunComparison(
        monitor=monitor,
        mode=mode,
        runs=summaries,
        ranking=[summary.operation_id for summary in ranked],
        best_run=ranked[0].operation_id if _has_best(ranked[0]) else None,
        reason=_reason(ranked, monitor, mode, min_delta),
    )


def _has_best(summary: RunSummary) -> bool:
    return summary.best_value is not None and math.isfinite(summary.best_value)


def _rank(summaries: Sequence[RunSummary], mode: Literal["min", "max"], min_delta: float) -> list[RunSummary]:
    sign = 1.0 if mode == "min" else -1.0
    scored = sorted((s for s in summaries if _has_best(s)), key=lambda s: sign * (s.best_value or 0.0))
    unscored = [s for s in summaries if not _has_best(s)]
    if not scored:
        return unscored
    leader = scored[0].best_value or 0.0
    tied = [s for s in scored if abs((s.best_value or 0.0) - leader) <= min_delta]
    rest = scored[len(tied) :]
    tied.sort(key=_tie_break)
    return tied + rest + unscored


def _tie_break(summary: RunSummary) -> tuple[bool, bool, int]:
    return summary.is_diverging, summary.is_overfitting, summary.epochs_to_best or summary.epochs_run


def _value(value: float | None) -> str:
    return "none" if value is None else f"{value:.4g}"


def _reason(ranked: Sequence[RunSummary], monitor: str, mode: str, min_delta: float) -> str:
    best = ranked[0]
    if not _has_best(best):
        return f"None of the runs reported {monitor} yet: nothing to compare; check again after a few epochs."
    runner_up = ranked[1]
    better = "lower" if mode == "min" else "higher"
    at = f"best {monitor} {_value(best.best_value)} at epoch {best.best_epoch}"
    if not _has_best(runner_up):
        verdict = f"{best.operation_id} is the only run with {monitor} ({at})."
    else:
        gap = abs((best.best_value or 0.0) - (runner_up.best_value or 0.0))
        other = f"{_value(runner_up.best_value)} at epoch {runner_up.best_epoch} for {runner_up.operation_id}"
        if gap <= min_delta:
            why = _tie_reason(best, runner_up)
            verdict = (
                f"{best.operation_id} and {runner_up.operation_id} tie on {monitor} ({_value(best.best_value)} vs "
                f"{_value(runner_up.best_value)}, within min_delta {min_delta:g}); {best.operation_id} is preferred "
                f"because {why}."
            )
        else:
            base = abs(runner_up.best_value or 0.0)
            percent = f", {100.0 * gap / base:.1f}% {better}" if base > 0 else ""
            verdict = f"{best.operation_id} is better: {at} vs {other} ({better} is better{percent})."
    return " ".join([verdict, *_caveats(best, ranked)])


def _tie_reason(best: RunSummary, other: RunSummary) -> str:
    if best.is_diverging != other.is_diverging:
        return f"{other.operation_id} is diverging"
    if best.is_overfitting != other.is_overfitting:
        return f"{other.operation_id} is overfitting"
    mine, theirs = best.epochs_to_best or best.epochs_run, other.epochs_to_best or other.epochs_run
    if mine != theirs:
        return f"it reached its best in fewer epochs ({mine} vs {theirs})"
    return "it was listed first"


def _caveats(best: RunSummary, ranked: Sequence[RunSummary]) -> list[str]:
    notes = []
    troubles = [
        word
        for word, flag in (
            ("diverging", best.is_diverging),
            ("overfitting", best.is_overfitting),
            ("plateaued", best.is_plateaued),
        )
        if flag
    ]
    if troubles:
        notes.append(
            f"{best.operation_id} is {' and '.join(troubles)} after its best epoch: use the weights of epoch "
            f"{best.best_epoch}, not the last ones."
        )
    running = [s.operation_id for s in ranked if s.status in (OperationStatus.PENDING, OperationStatus.RUNNING)]
    if running:
        notes.append(f"Still running: {', '.join(running)}; the comparison can change as they train.")
    missing = [s.operation_id for s in ranked if not _has_best(s)]
    if missing:
        notes.append(f"No best value for {', '.join(missing)} (the monitored metric was never reported finite).")
    return notes
