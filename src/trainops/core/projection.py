"""The projection rule: what continuing to the end of a run is likely to gain on its best, and whether that is
worth it.

:func:`projection` extends the monitored metric's recent trend over the epochs left, slowing as it has been slowing,
and allows for the luck of a noisy metric; :func:`projected_improvement` turns the result into a
``projected_improvement`` signal, the one ``stop_rule="projection"`` stops on. ``docs/diagnosis.md`` explains the
arithmetic and how its constants were calibrated (``bench/diagnosis.py --calibrate``).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from trainops.core.diagnosis import Signal, SignalRule
from trainops.core.metric_definitions import definition_of
from trainops.core.policy import Mode, MonitorPolicy
from trainops.core.rules import WARMUP_RISE, Best, Point, _fmt, _r
from trainops.core.stats import fit_line

PROJECTION_WINDOW_FRACTION = 0.5
"""The projection fits its trend over the last half of the epochs seen (at least :data:`PROJECTION_MIN_WINDOW`
and ``policy.window``): long enough to see through noise, recent enough to follow a curve that bends. Calibrated
with ``bench/diagnosis.py --calibrate``, as is the minimum."""

PROJECTION_MIN_WINDOW = 15
"""The fewest epochs the projection fits its trend over (when the run has that many): a noisy accuracy or mAP
needs more than the ten a loss's trend does (``policy.window``, which the other rules keep)."""

UNCOMPARED_DECAY = 0.5
"""A fall that follows a flat or rising stretch, with no earlier fall to measure its slowing against, is assumed
to halve each window rather than to go on at full speed; so is a fall the window cannot tell from noise (its slope's
|t| below ``stats.SIGNIFICANT_T``), however it compares with the window before. Calibrated with
``bench/diagnosis.py --calibrate``."""


RATE_PACE_EPOCHS = 3
"""The learning rate's pace is read over this many latest epochs: long enough to see a smooth schedule's fall, short
enough that a step further back is not taken for one."""


Horizon = Literal["planned", "assumed"]


@dataclass(frozen=True, slots=True)
class Projection:
    """Where the monitored metric is headed over the epochs left, and what that would gain on its best.

    Values are in the metric's units; gains are improvements (positive is better in either mode).
    """

    epochs_left: int
    horizon: Horizon
    """``planned``: the epochs left of the planned run; ``assumed``: no planned length, so as many epochs again as
    the run has done (at least ``patience``)."""
    from_epoch: int
    to_epoch: int
    level: float
    """Where the metric is now: the line through the window's recent half, at the latest epoch."""
    slope: float
    """Fitted change per epoch over the window (signed as the metric)."""
    decay: float
    """The trend's pace in this window relative to the window before, per unit of learning rate when the run reports
    it: 1 is not slowing, 0.5 is halving."""
    rate_change: float
    """The mean learning rate of the window before over this window's (1 when unknown): the decay is measured per
    unit of learning rate, so a step down in the rate does not read as the curve flattening."""
    rate_pace: float
    """The learning rate's change per epoch over its latest epochs, carried into the epochs left (1 when it is not
    falling, unknown, or the run has shown a warm restart; 0 once it has reached zero)."""
    trend_gain: float
    noise: float
    """The residual standard deviation around the line through the window's recent half."""
    noise_gain: float
    projected_best: float
    gain: float
    """``projected_best`` against the best so far, in the metric's units (positive: a new best)."""
    improvement_pct: float
    """``gain`` in percent of the best (negative: no new best)."""


def projection(
    points: Sequence[Point],
    best: Best,
    epochs_left: int,
    horizon: Horizon,
    policy: MonitorPolicy,
    mode: Mode,
    rates: Sequence[Point] = (),
) -> Projection | None:
    """Project the best value the next ``epochs_left`` epochs can reach; ``None`` below three finite points.

    A careful person's reading of a curve, as arithmetic:

    1. The trend: a least-squares line over the last half of the epochs seen (at least
       :data:`PROJECTION_MIN_WINDOW` and ``policy.window``).
    2. Its slowing: the slope against the slope of the window before it. A curve whose fall halved from one
       window to the next is extended as a geometric series that keeps halving, so an exponential or power-law
       approach to a floor is not extrapolated as a straight line. A young run with no window before it compares
       its window's two halves instead. A fall too weak to tell from the noise (its slope not significant) halves
       each window at least: a noisy curve's chance tilt is not extended over every epoch left. A rising or flat
       trend adds nothing.
    3. The learning rate, when the run reports it (``rates``): the slowing is measured per unit of learning rate,
       and the rate's own fall over its latest epochs is carried forward. A step down in the rate slows the fall
       without the curve having flattened; a cosine or exponential schedule that goes on lowering the rate goes
       on slowing it. A run that has restarted its rate (a warm restart) may do so again: its fall is not carried
       forward.
    4. Luck: a noisy metric can post a new best without any trend, more likely the more epochs are left. The
       expected best of ``n`` noisy draws lies about ``sqrt(2 ln n)`` standard deviations below their level;
       ``policy.noise_allowance`` says how much of that counts. The noise is the spread around the line through
       the window's recent half, which a bend or a step further back does not inflate.

    The projected best is the level now (the line through the window's recent half, at the latest epoch), minus
    the trend's gain, minus the luck's; its improvement on the best so far, in percent of the best, is what
    :func:`projected_improvement` judges.

    >>> from trainops.core.rules import find_best
    >>> losses = [(e, 1.0 / (e + 1)) for e in range(20)]
    >>> p = projection(losses, find_best(losses, "min", 0.0), 80, "planned", MonitorPolicy(), "min")
    >>> round(p.improvement_pct), p.decay < 1  # 1 / 100 at the planned end would be 80%
    (69, True)
    """
    sign = 1.0 if mode == "min" else -1.0  # judged as "lower is better" below
    finite = [(epoch, sign * value) for epoch, value in points if math.isfinite(value)]
    width = max(policy.window, PROJECTION_MIN_WINDOW, round(PROJECTION_WINDOW_FRACTION * len(finite)))
    recent, earlier = finite[-width:], finite[-2 * width : -width]
    fit = fit_line([e for e, _ in recent], [v for _, v in recent])
    if fit is None:
        return None
    # Curves bend: the whole window's line misses where the metric is now; the line through its recent half does
    # not, and the spread around that line is the noise (a step or a bend in the older half would inflate it).
    half = recent[len(recent) // 2 :]
    near = fit_line([e for e, _ in half], [v for _, v in half]) or fit
    level = near.at(recent[-1][0])
    noise = near.residual_std
    cadence = (recent[-1][0] - recent[0][0]) / (len(recent) - 1)  # epochs per evaluation: 1 when every epoch is
    decay, trend_gain = 1.0, 0.0
    rate_change, rate_pace = 1.0, 1.0
    if fit.slope < 0 and epochs_left > 0:
        rate = {epoch: value for epoch, value in rates if epoch <= recent[-1][0]}
        before = fit_line([e for e, _ in earlier], [v for _, v in earlier])
        if before is not None:
            rate_change = _rate_change(rate, earlier, recent)
            decay = min(1.0, fit.slope / before.slope * rate_change) if before.slope < 0 else UNCOMPARED_DECAY
        elif near.slope >= 0:
            decay = 0.0  # a young run whose recent half has stopped falling: the fall is over
        else:
            decay = _decay_within(recent)
        if not fit.is_significant:
            decay = min(decay, UNCOMPARED_DECAY)  # a fall the window cannot tell from noise is not kept up
        rate_pace = _rate_pace(rate)
        per_epoch = decay ** (1.0 / (len(recent) * cadence)) * rate_pace  # the decay is per window, in epochs
        steps = epochs_left if per_epoch >= 1.0 else per_epoch * (1.0 - per_epoch**epochs_left) / (1.0 - per_epoch)
        trend_gain = -fit.slope * steps
    evaluations_left = epochs_left / cadence  # the draws luck gets: a run validating every k epochs gets 1 in k
    noise_gain = policy.noise_allowance * noise * math.sqrt(2.0 * math.log(evaluations_left + 1))
    projected = level - trend_gain - noise_gain
    if mode == "min" and all(value >= 0 for _, value in finite):
        projected = max(projected, 0.0)  # a loss that has never been negative will not become so
    top = ceiling(policy.monitor, points, mode)
    if top is not None:
        projected = max(projected, -top)  # nor will a fraction pass 1
    best_value = sign * best.value
    gain = best_value - projected
    if epochs_left == 0:
        gain = 0.0  # no epochs, no new best: whatever the fitted line says about the one just seen
    improvement = percent_of_best(gain, best_value)
    return Projection(
        epochs_left=epochs_left,
        horizon=horizon,
        from_epoch=recent[0][0],
        to_epoch=recent[-1][0],
        level=sign * level,
        slope=sign * fit.slope,
        decay=decay,
        rate_change=rate_change,
        rate_pace=rate_pace,
        trend_gain=trend_gain,
        noise=noise,
        noise_gain=noise_gain,
        projected_best=sign * projected,
        gain=gain,
        improvement_pct=improvement,
    )


def ceiling(metric: str, points: Sequence[Point], mode: Mode) -> float | None:
    """The best value ``metric`` can reach, when it has one: 1 for a score trainops defines as a fraction (an
    accuracy, an mAP, an F1: ``format="percent"``) maximised, whose every finite value so far is within [0, 1];
    ``None`` otherwise (a loss, a custom metric, a loop that reports an accuracy in percent).

    >>> ceiling("val_accuracy", [(0, 0.5), (1, 0.75)], "max"), ceiling("val_accuracy", [(0, 50.0)], "max")
    (1.0, None)
    >>> print(ceiling("val_loss", [(0, 0.5)], "min"), ceiling("reward", [(0, 0.5)], "max"))
    None None
    """
    if mode != "max" or definition_of(metric)[1].format != "percent":
        return None
    if not all(0.0 <= value <= 1.0 for _, value in points if math.isfinite(value)):
        return None
    return 1.0


def _rate_change(rate: dict[int, float], earlier: Sequence[Point], recent: Sequence[Point]) -> float:
    """The mean learning rate over the ``earlier`` epochs against the ``recent`` ones; 1 unless every one of them
    has a finite, positive rate."""
    before = [rate.get(epoch, math.nan) for epoch, _ in earlier]
    now = [rate.get(epoch, math.nan) for epoch, _ in recent]
    if not all(math.isfinite(v) and v > 0 for v in (*before, *now)):
        return 1.0
    return (math.fsum(before) / len(before)) / (math.fsum(now) / len(now))


def _rate_pace(rate: dict[int, float]) -> float:
    """The learning rate's change per epoch over its latest :data:`RATE_PACE_EPOCHS` epochs, when it has fallen at
    each of them (0 once it has reached zero: no rate, no fall) and has never been raised after a fall (a warm
    restart, which may come again); otherwise 1. A warm-up from zero is a rise before any fall, not a restart.

    A step (0.1 to 0.01, then held) is not a pace: carried forward it would say the rate keeps falling ten-fold
    every few epochs, and stop a run as its loss takes its biggest fall; a smooth schedule (cosine, exponential)
    lowers the rate at every epoch.

    >>> _rate_pace({0: 0.1, 1: 0.1, 2: 0.01, 3: 0.01, 4: 0.01}), round(_rate_pace({e: 0.5**e for e in range(5)}), 3)
    (1.0, 0.5)
    """
    values = [value for _, value in sorted(rate.items()) if math.isfinite(value)]
    if len(values) <= RATE_PACE_EPOCHS:
        return 1.0
    fell = False
    for earlier, later in pairwise(values):
        if later > earlier * WARMUP_RISE and fell:
            return 1.0  # a warm restart
        fell = fell or later < earlier
    latest = values[-1 - RATE_PACE_EPOCHS :]
    if not all(later < earlier for earlier, later in pairwise(latest)):
        return 0.0 if latest[-1] == 0.0 < latest[0] else 1.0  # held after a step (or at zero: no rate, no fall)
    first, last = latest[0], latest[-1]
    return (last / first) ** (1.0 / RATE_PACE_EPOCHS) if 0.0 <= last < first else 1.0


def _decay_within(recent: Sequence[Point]) -> float:
    """How a window's fall slows when no window came before it (a young run): its second half's slope against its
    first half's, squared to a whole window's worth. A drop followed by a flat stretch slows to nothing."""
    half = len(recent) // 2
    first = fit_line([e for e, _ in recent[:half]], [v for _, v in recent[:half]])
    second = fit_line([e for e, _ in recent[half:]], [v for _, v in recent[half:]])
    if first is None or second is None:
        return 1.0  # too few epochs to tell
    if first.slope >= 0:
        return UNCOMPARED_DECAY  # the fall has only just begun
    return max(0.0, min(1.0, second.slope / first.slope)) ** 2


def percent_of_best(gain: float, best: float) -> float:
    """``gain`` in percent of ``best``, at any scale (a loss of 1e-14 too: no floor but zero's)."""
    return gain / max(abs(best), sys.float_info.min) * 100.0


def worth_gaining(gain: float, improvement_pct: float, policy: MonitorPolicy) -> bool:
    """Whether a projected gain on the best (in the metric's units, and in percent of the best) is worth the epochs:
    more than ``policy.min_improvement_pct``, and more than ``policy.min_delta``: a smaller one would not be an
    improvement (Keras' meaning), and a curve that creeps on within ``min_delta`` of its best, which the best does
    not follow, is not worth continuing for the distance it has already covered."""
    return improvement_pct > policy.min_improvement_pct and gain > policy.min_delta


def worth_continuing(projected: Projection, policy: MonitorPolicy) -> bool:
    """The projection rule's test (:func:`worth_gaining`) on a projection."""
    return worth_gaining(projected.gain, projected.improvement_pct, policy)


def _pct(value: float) -> str:
    """A percentage to one decimal, or to two significant digits below 0.05 (0.014%, not 0.0%)."""
    return f"{value:.1f}%" if value >= 0.05 else f"{value:.2g}%"


def projected_improvement(metric: str, projected: Projection, best: Best, policy: MonitorPolicy) -> Signal:
    """Whether continuing is worth it: the projected improvement against ``policy.min_improvement_pct``.

    Always returns a signal, so the projection's evidence is there to read whichever way it went: ``info`` when
    continuing is worth it, ``warning`` when it is not (the recommendation then says stop).
    """
    worth = worth_continuing(projected, policy)
    left = projected.epochs_left
    where = f"best {_fmt(best.value)} at epoch {best.epoch}"
    if left == 0:
        message = f"the run has reached its planned length; {where}"
    elif projected.improvement_pct <= 0:
        message = (
            f"continuing {left} more epoch(s) is not projected to beat the best {metric} "
            f"({_fmt(projected.level)} now against {where})"
        )
    elif projected.projected_best == 0.0 and best.value > 0:
        # the trend carried on reaches the floor of a loss: "improve by 100%" would promise a perfect model
        message = (
            f"continuing {left} more epoch(s) is projected to improve {metric} by far more than the "
            f"{policy.min_improvement_pct:g}% it needs (its recent fall, carried on, would reach 0 before the end); "
            f"{where}"
        )
    elif not worth and projected.improvement_pct > policy.min_improvement_pct:
        message = (
            f"continuing {left} more epoch(s) is projected to improve {metric} by at most {_fmt(projected.gain)}, "
            f"no more than min_delta ({_fmt(policy.min_delta)}): no improvement that counts; {where}"
        )
    else:
        bound = "about" if worth else "at most"
        message = (
            f"continuing {left} more epoch(s) is projected to improve {metric} by {bound} "
            f"{_pct(projected.improvement_pct)} (needs more than {policy.min_improvement_pct:g}%); {where}"
        )
    if projected.horizon == "assumed" and left:
        message += " (no planned length: assumed to run as long again)"
    return Signal(
        rule=SignalRule.PROJECTED_IMPROVEMENT,
        severity="info" if worth else "warning",
        message=message,
        parameters={
            "min_improvement_pct": policy.min_improvement_pct,
            "min_delta": policy.min_delta,
            "noise_allowance": policy.noise_allowance,
            "window": policy.window,
            "window_fraction": PROJECTION_WINDOW_FRACTION,
            "min_window": PROJECTION_MIN_WINDOW,
            "horizon": projected.horizon,
        },
        evidence={
            "epochs_left": left,
            "best_epoch": best.epoch,
            "best_value": _r(best.value),
            "from_epoch": projected.from_epoch,
            "to_epoch": projected.to_epoch,
            "level": _r(projected.level),
            "slope": _r(projected.slope, 9),
            "decay_per_window": _r(projected.decay, 4),
            "learning_rate_change": _r(projected.rate_change, 4),
            "learning_rate_pace": _r(projected.rate_pace, 4),
            "trend_gain": _r(projected.trend_gain),
            "noise": _r(projected.noise),
            "noise_gain": _r(projected.noise_gain),
            "projected_best": _r(projected.projected_best),
            "projected_gain": _r(projected.gain),
            "projected_improvement_pct": _r(projected.improvement_pct, 3),
            "worth_continuing": worth,
        },
    )
