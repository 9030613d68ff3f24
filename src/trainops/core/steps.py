"""The per-step (batch) series: one point per global step, and how a long run's series is thinned to a cap.

A run may report thousands of batches per epoch; storing each forever would make the series of one run larger
than every epoch history together, and a chart cannot show more points than it has pixels anyway. So each run
keeps at most ``max_points`` (``TRAINOPS_MAX_STEP_POINTS``, 1,000 by default), chosen by :func:`thin_steps`:
the whole run stays covered, evenly, the newest points stay dense until the next thinning, and the first and the
latest step are always kept.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from trainops.core.epoch import (
    MAX_EPOCH,
    MAX_STEP,
    EpochRecord,
    Timestamp,
    check_metric_names,
    collect_custom_metrics,
    custom_metrics_schema,
)
from trainops.core.json_types import JsonTyped
from trainops.core.numbers import Metric

STEP_FIELDS = frozenset({"step", "epoch", "timestamp", "metrics"})
"""The fields of :class:`StepRecord`: names its metrics may not take."""


def _check_step_metric_names(metrics: dict[str, float]) -> dict[str, float]:
    return check_metric_names(metrics, STEP_FIELDS)


class StepRecord(JsonTyped):
    """One point of the per-step series: the metrics of one batch (or optimizer step).

    Any metric name goes (``loss``, ``train_loss``, ``lr``, ``grad_norm``, ...); unknown top-level fields are
    moved into ``metrics``, so ``{"step": 1200, "loss": 0.31}`` works. Values may be NaN or infinite. Points of
    one operation are keyed by ``step``: re-sending a step replaces it.
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=custom_metrics_schema(STEP_FIELDS))

    MAX_METRICS: ClassVar[int] = EpochRecord.MAX_CUSTOM_METRICS

    step: int = Field(ge=0, le=MAX_STEP, description="the framework's global step (optimizer steps or batches so far)")
    epoch: int | None = Field(None, ge=0, le=MAX_EPOCH, description="the epoch this step belongs to")
    metrics: Annotated[dict[str, Metric], Field(max_length=MAX_METRICS), AfterValidator(_check_step_metric_names)] = (
        Field(default_factory=dict)
    )
    timestamp: Timestamp | None = Field(None, description="when the step ended; the time it was stored by default")

    @model_validator(mode="before")
    @classmethod
    def _collect_metrics(cls, data: Any) -> Any:
        return collect_custom_metrics(data, STEP_FIELDS)


class StepSeries(BaseModel):
    """An operation's per-step series, oldest first, as stored: at most ``max_points`` points per run."""

    operation_id: str
    points: list[StepRecord] = Field(default_factory=list, description="oldest first")
    max_points: int = Field(description="the most points a run keeps (TRAINOPS_MAX_STEP_POINTS)")
    thinned: bool = Field(
        description="whether the run outgrew max_points, so older steps are kept at an even spacing, not all"
    )


@dataclass(frozen=True, slots=True)
class Thinning:
    """What :func:`thin_steps` keeps: the steps, oldest first, and the grid spacing they are on."""

    kept: list[int]
    stride: int


_ORIGIN_LEVEL = 64
"""The level of the origin itself (a difference of 0 is divisible by every stride); steps differ by < 2**54."""


_MAX_STRIDE_LEVEL = 62


def _level(difference: int) -> int:
    """The largest ``k`` such that ``2**k`` divides ``difference``: a step is on the grid of every stride up to
    ``2**k`` from the origin."""
    return _ORIGIN_LEVEL if difference == 0 else (difference & -difference).bit_length() - 1


def thin_steps(steps: Sequence[int], max_points: int, *, origin: int | None = None, stride: int = 1) -> Thinning:
    """Which steps a series keeps once it holds more than ``max_points``.

    The kept points are the lowest step, the latest step, and the steps on a grid from ``origin`` whose spacing
    is the smallest power of two (at least ``stride``, the spacing of the previous thinning) that leaves at most
    half of ``max_points``. Points stored since the previous thinning are dense; thinning puts them on the grid
    of the older ones, so the run is covered evenly and a point, once kept, stays until the spacing doubles.
    Keeping half leaves room for as many new points before the next thinning: each point costs O(1) amortised.

    Args:
        steps: The stored steps and the new ones, ascending and distinct.
        max_points: The cap (at least 2).
        origin: The grid's origin: the first step the run ever stored; the lowest of ``steps`` by default.
        stride: The spacing of the previous thinning (a power of two; 1 if none): the spacing never shrinks, or
            older stretches would end up sparser than newer ones.

    Returns:
        ``steps`` unchanged (and ``stride``) when there are at most ``max_points``.

    Raises:
        ValueError: ``max_points`` below 2 or ``stride`` not a power of two.

    >>> thin_steps(range(10), 8).kept
    [0, 4, 8, 9]
    >>> thin_steps(range(10), 10).kept
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
    """
    if max_points < 2:
        raise ValueError(f"a series keeps at least 2 points (the first and the latest), not {max_points}")
    if stride < 1 or stride & (stride - 1):
        raise ValueError(f"the stride is a power of two, not {stride}")
    if len(steps) <= max_points:
        return Thinning(list(steps), stride)
    target = max(max_points // 2, 2)
    lowest, latest = steps[0], steps[-1]
    anchor = lowest if origin is None else origin
    inner = steps[1:-1]
    per_level = [0] * (_ORIGIN_LEVEL + 1)
    for step in inner:
        per_level[_level(step - anchor)] += 1
    level = stride.bit_length() - 1
    on_grid = sum(per_level[level:])
    while 2 + on_grid > target:  # ends: past the origin's level nothing inner is on the grid, and target >= 2
        on_grid -= per_level[level]
        level += 1
    kept = [lowest, *(step for step in inner if _level(step - anchor) >= level), latest]
    # Past level 54 only the origin is on the grid (steps differ by less than 2**54): a stride that fits the
    # database's 64-bit integers says the same.
    return Thinning(kept, 1 << min(level, _MAX_STRIDE_LEVEL))
