"""The diagnosis rules: small pure functions over a metric history, and the helpers every rule shares.

Each rule looks at ``(epoch, value)`` points and returns a :class:`Signal` with the parameters it used and the
numbers that made it fire, or ``None``. :func:`trainops.core.analysis.analyze` runs them and decides. The projection
rule, larger than the others, has a module of its own (:mod:`trainops.core.projection`) built on the helpers here
(:func:`find_best`, :func:`last_window`, :class:`Best`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trainops.core.diagnosis import Signal, SignalRule, Trend, TrendDirection
from trainops.core.policy import Mode, MonitorPolicy
from trainops.core.stats import SIGNIFICANT_T, fit_line, percent_change

Point = tuple[int, float]
"""(epoch, value)"""

MIN_EPOCHS_AFTER_BEST = 3
"""Validation epochs after its best before a rise can count as overfitting: two points always fit a line."""


TREND_T = SIGNIFICANT_T
"""The |t| a trend's slope must reach to read as improving or worsening rather than flat, however many points it
has: a calibrated reading, not a test at a stated level. The stall-backed overrule and the hold on an unmoved
metric (:mod:`trainops.core.analysis`) were calibrated on it; read at Student's t for the window's points instead,
runs walked epoch by epoch on the corpus lost more (mean regret 4.90% against 5.83%, ``bench/diagnosis.py
--savings``). The rules that stop a run on a slope alone (``train_loss_rising``, ``overfitting``) test it at
Student's t (:meth:`~trainops.core.stats.LineFit.is_significant`)."""


def _r(value: float | None, digits: int = 6) -> float | None:
    """Evidence numbers, rounded for reading; non-finite ones (a perfect fit's t-statistic) become None."""
    return None if value is None or not math.isfinite(value) else round(value, digits) + 0.0  # no -0.0


def _fmt(value: float) -> str:
    return f"{value + 0.0:.4g}"  # + 0.0: a level of -0.0 (a mean of zeros) reads 0


def _span(points: Sequence[Point]) -> str:
    return f"epochs {points[0][0]}-{points[-1][0]}"


@dataclass(frozen=True, slots=True)
class Best:
    epoch: int
    value: float
    since: int
    """Points reported after the best one (Keras' ``wait``)."""


def is_improvement(value: float, reference: float, mode: Mode, min_delta: float) -> bool:
    """Whether ``value`` beats ``reference`` by more than ``min_delta`` (shared by every rule that compares)."""
    if mode == "min":
        return value < reference - min_delta
    return value > reference + min_delta


def find_best(points: Sequence[Point], mode: Mode, min_delta: float) -> Best | None:
    """The best finite point, counting only improvements larger than ``min_delta`` (Keras semantics).

    >>> find_best([(0, 1.0), (1, 0.5), (2, 0.6), (3, 0.7)], "min", 0.0)
    Best(epoch=1, value=0.5, since=2)
    """
    best_epoch, best_value, since = -1, math.nan, 0
    found = False
    for epoch, value in points:
        if not math.isfinite(value):
            since += 1
        elif not found or is_improvement(value, best_value, mode, min_delta):
            best_epoch, best_value, since, found = epoch, value, 0, True
        else:
            since += 1
    return Best(best_epoch, best_value, since) if found else None


def unmoved(points: Sequence[Point], tolerance: float = 0.0) -> Point | None:
    """The first finite point, when every finite value so far is within ``tolerance`` of it (equal, by default): a
    metric that has not left where it started (a detector's mAP still at 0). ``None`` once it has moved, or without
    two finite points.

    >>> unmoved([(0, 0.0), (1, 0.0), (2, float("nan")), (3, 0.0)]), unmoved([(0, 0.0), (1, 0.01)])
    ((0, 0.0), None)
    """
    finite = [point for point in points if math.isfinite(point[1])]
    if len(finite) < 2 or any(abs(value - finite[0][1]) > tolerance for _, value in finite):
        return None
    return finite[0]


def last_window(points: Sequence[Point], window: int) -> list[Point]:
    """The last ``window`` finite points (scanning back from the end: histories can be long)."""
    recent: list[Point] = []
    for point in reversed(points):
        if math.isfinite(point[1]):
            recent.append(point)
            if len(recent) == window:
                break
    recent.reverse()
    return recent


def trend(metric: str, points: Sequence[Point], policy: MonitorPolicy, mode: Mode) -> Trend:
    """Direction of ``metric`` over the window: a least-squares line, flat unless its change is both larger
    than ``flat_tolerance_pct`` and clear of the noise around it (|t| at least :data:`TREND_T`)."""
    recent = last_window(points, policy.window)
    fit = fit_line([e for e, _ in recent], [v for _, v in recent])
    if fit is None:
        return Trend(metric=metric, direction=TrendDirection.UNKNOWN, window=policy.window)
    first, last = recent[0][0], recent[-1][0]
    change = percent_change(fit.at(first), fit.at(last))
    if change is None or abs(change) < policy.flat_tolerance_pct or abs(fit.t_stat) < TREND_T:
        direction = TrendDirection.FLAT
    elif (change < 0) == (mode == "min"):
        direction = TrendDirection.IMPROVING
    else:
        direction = TrendDirection.WORSENING
    return Trend(
        metric=metric,
        direction=direction,
        percent_change=_r(change, 3),
        slope=_r(fit.slope, 9),
        within_noise=abs(fit.t_stat) < TREND_T,
        window=policy.window,
        from_epoch=first,
        to_epoch=last,
    )


def non_finite(series: Mapping[str, Sequence[Point]], window: int = 10) -> Signal | None:
    """NaN or infinity in a watched series (Lightning's ``check_finite``).

    A series whose latest value is not finite, or that was not finite more than once within its last ``window``
    points, has diverged (critical). One non-finite value the series has since recovered from (a skipped step
    under mixed precision, one bad batch) is a warning that keeps the evidence but does not count as diverging:
    nor would one bad epoch long ago block every later verdict.
    """
    bad = {name: [epoch for epoch, value in points if not math.isfinite(value)] for name, points in series.items()}
    bad = {name: epochs for name, epochs in bad.items() if epochs}
    if not bad:
        return None
    recent = {name: epochs for name, epochs in bad.items() if _diverged(series[name], window)}
    first_epoch = min(epochs[0] for epochs in bad.values())
    evidence: dict[str, float | int | str] = {
        "first_epoch": first_epoch,
        "metrics": ", ".join(sorted(recent or bad)),
        "non_finite_epochs": len({epoch for epochs in bad.values() for epoch in epochs}),
    }
    if recent:
        # the epoch the named metrics went bad within the window, not a bad epoch of another one long before
        since = min(epoch for name in recent for epoch, value in series[name][-window:] if not math.isfinite(value))
        evidence["since_epoch"] = since
        return Signal(
            rule=SignalRule.NON_FINITE,
            severity="critical",
            message=f"{evidence['metrics']} became non-finite (NaN or infinity) at epoch {since}",
            parameters={"check_finite": True, "window": window},
            evidence=evidence,
        )
    last_bad = max(epochs[-1] for epochs in bad.values())
    evidence["last_epoch"] = last_bad
    return Signal(
        rule=SignalRule.NON_FINITE_RECOVERED,
        severity="warning",
        message=(
            f"{evidence['metrics']} was non-finite at {evidence['non_finite_epochs']} epoch(s), last at epoch "
            f"{last_bad}, and has been finite since"
        ),
        parameters={"check_finite": True, "window": window},
        evidence=evidence,
    )


def _diverged(points: Sequence[Point], window: int) -> bool:
    """Whether a series' latest value is not finite, or more than one of its last ``window`` are not."""
    latest = points[-window:]
    return bool(latest) and (not math.isfinite(latest[-1][1]) or sum(not math.isfinite(v) for _, v in latest) > 1)


def divergence_threshold(metric: str, latest: Point, policy: MonitorPolicy, mode: Mode) -> Signal | None:
    """The latest value is past the absolute ``divergence_threshold`` (Lightning semantics)."""
    threshold = policy.divergence_threshold
    if threshold is None:
        return None
    epoch, value = latest
    crossed = value > threshold if mode == "min" else value < threshold
    if not crossed:
        return None
    side = "above" if mode == "min" else "below"
    return Signal(
        rule=SignalRule.DIVERGENCE_THRESHOLD,
        severity="critical",
        message=f"{metric} is {_fmt(value)} at epoch {epoch}, {side} the divergence threshold {_fmt(threshold)}",
        parameters={"divergence_threshold": threshold, "mode": mode},
        evidence={"epoch": epoch, "value": _r(value)},
    )


def blowup(metric: str, recent: Sequence[Point], best: Best, policy: MonitorPolicy, mode: Mode) -> Signal | None:
    """The latest ``confirm_epochs`` values (the end of ``recent``) are each more than ``divergence_factor`` times
    the best and have undone more than half of the fall from the first value to the best, on a log scale (losses
    only: ``min`` mode, best > 0): a blow-up that lasts, not one spiking epoch, and that gives back the training's
    progress, not a wobble of a loss already orders of magnitude below where it began (1e-8 to 1e-6 is a hundred
    times its best, and still nothing)."""
    if mode != "min" or best.value <= 0:
        return None
    streak = list(recent[-policy.confirm_epochs :])
    first = next((value for _, value in recent if math.isfinite(value)), best.value)
    halfway = math.sqrt(first * best.value) if first > best.value else best.value
    # NaN compares False here: a streak gone non-finite stays a blow-up.
    if len(streak) < policy.confirm_epochs or any(
        value / best.value <= policy.divergence_factor or value <= halfway for _, value in streak
    ):
        return None
    epoch, value = streak[-1]
    ratio = value / best.value
    return Signal(
        rule=SignalRule.LOSS_BLOWUP,
        severity="critical",
        message=(
            f"{metric} is {_fmt(value)} at epoch {epoch}, {ratio:.1f}x its best {_fmt(best.value)} (epoch {best.epoch})"
            + (f", above {policy.divergence_factor:g}x since epoch {streak[0][0]}" if len(streak) > 1 else "")
        ),
        parameters={"divergence_factor": policy.divergence_factor, "confirm_epochs": policy.confirm_epochs},
        evidence={
            "epoch": epoch,
            "value": _r(value),
            "best_epoch": best.epoch,
            "best_value": _r(best.value),
            "ratio": _r(ratio, 3),
            "since_epoch": streak[0][0],
            "first_value": _r(first),
            "halfway_value": _r(halfway),
        },
    )


WARMUP_RISE = 1.01
"""A learning rate that ends the window more than this multiple of where it began is being raised (a warm-up, a
one-cycle's rise, a warm restart); the projection reads a rise this large after a fall as a warm restart."""


def trend_text(found: Trend, policy: MonitorPolicy) -> str:
    """A trend in words: "val_loss is improving (-3.2% over epochs 10-19)". A large change the fit cannot tell from
    the noise is flat, and says so rather than read "flat (+420%)".

    >>> noisy = Trend(metric="val_loss", direction="flat", percent_change=423.3, window=10, from_epoch=20, to_epoch=29)
    >>> trend_text(noisy, MonitorPolicy())
    'val_loss is flat (no significant trend: +423.3% fitted over epochs 20-29, within its noise)'
    """
    change = found.percent_change
    where = f"over epochs {found.from_epoch}-{found.to_epoch}"
    if change is None:
        return f"{found.metric} is {found.direction.value} (no measurable change {where})"
    if found.direction is TrendDirection.FLAT and abs(change) >= policy.flat_tolerance_pct:
        return f"{found.metric} is flat (no significant trend: {change:+.1f}% fitted {where}, within its noise)"
    return f"{found.metric} is {found.direction.value} ({change:+.1f}% {where})"


def train_loss_rising(points: Sequence[Point], policy: MonitorPolicy, rates: Sequence[Point] = ()) -> Signal | None:
    """Training loss rising over the window, beyond ``rising_tolerance_pct`` and beyond its noise: the
    optimiser is no longer descending (learning rate too high, bad data, numerical trouble).

    Not while the learning rate (``rates``, when the run reports it) is being raised over the same epochs: a
    warm-up, a one-cycle's rise or a warm restart asks for bigger steps, and the loss rising with them is the
    schedule at work, not the optimiser failing (Ultralytics' warm-up does this on every small data set).
    """
    recent = last_window(points, policy.window)
    fit = fit_line([e for e, _ in recent], [v for _, v in recent])
    if fit is None or fit.slope <= 0 or not fit.is_significant:
        return None
    change = percent_change(fit.at(recent[0][0]), fit.at(recent[-1][0]))
    if change is None or change <= policy.rising_tolerance_pct or _raised(rates, recent[0][0], recent[-1][0]):
        return None
    return Signal(
        rule=SignalRule.TRAIN_LOSS_RISING,
        severity="critical",
        message=f"train_loss rose {change:.1f}% over {_span(recent)} (least-squares fit)",
        parameters={"window": policy.window, "rising_tolerance_pct": policy.rising_tolerance_pct},
        evidence={
            "from_epoch": recent[0][0],
            "to_epoch": recent[-1][0],
            "percent_change": _r(change, 3),
            "slope": _r(fit.slope, 9),
            "t_stat": _r(fit.t_stat, 3),
        },
    )


def _raised(rates: Sequence[Point], first: int, last: int) -> bool:
    """Whether the learning rate ended the epochs ``first``-``last`` above where it began them."""
    within = [value for epoch, value in rates if first <= epoch <= last and math.isfinite(value)]
    return len(within) >= 2 and within[-1] > within[0] * WARMUP_RISE


def overfitting(train: Sequence[Point], val: Sequence[Point], policy: MonitorPolicy, min_delta: float) -> Signal | None:
    """Training loss falling while validation loss rises, measured from validation's best epoch to now.

    Both directions come from least-squares slopes over that span, so one noisy epoch neither makes nor breaks
    the verdict: validation's line over the epochs after its best must rise significantly (given its noise) and,
    from the best epoch to now, by more than ``flat_tolerance_pct``, while training falls by more than that
    tolerance. The onset is the first epoch after validation loss was at its best. Measuring from the best (not
    only over the last ``window``) catches slow overfitting too, where validation creeps up a fraction of a percent
    per epoch for fifty epochs. The best point itself is left out of validation's line: the lowest of noisy draws,
    it would tilt a flat, noisy validation loss into a rise.
    """
    train_by_epoch = dict(train)
    paired = [(epoch, train_by_epoch[epoch], value) for epoch, value in val if epoch in train_by_epoch]
    paired = [p for p in paired if math.isfinite(p[1]) and math.isfinite(p[2])]
    best = find_best([(e, v) for e, _, v in paired], "min", min_delta)
    if best is None or best.since < MIN_EPOCHS_AFTER_BEST:
        return None
    span = [p for p in paired if p[0] >= best.epoch]
    epochs = [p[0] for p in span]
    train_fit = fit_line(epochs, [p[1] for p in span])
    # Validation's line starts after its best: the best of noisy draws is the lowest by selection, and a line
    # through it (or a rise measured from it) would find a rise in a validation loss that is only noise.
    val_fit = fit_line(epochs[1:], [p[2] for p in span[1:]])
    if train_fit is None or val_fit is None:
        return None
    last_epoch = epochs[-1]
    val_rise = percent_change(val_fit.at(best.epoch), val_fit.at(last_epoch))
    # Training loss often decays exponentially, where a fitted line overshoots: report the measured change.
    train_fall = percent_change(span[0][1], span[-1][1])
    if val_rise is None or train_fall is None:
        return None
    tolerance = policy.flat_tolerance_pct
    val_rising = val_fit.slope > 0 and val_fit.is_significant and val_rise >= tolerance
    train_falling = train_fit.slope < 0 and train_fall <= -tolerance
    if not (val_rising and train_falling):
        return None
    onset = span[1][0]
    return Signal(
        rule=SignalRule.OVERFITTING,
        severity="warning",
        message=(
            f"val_loss rose {val_rise:.1f}% over epochs {onset}-{last_epoch} while train_loss fell {-train_fall:.1f}%"
        ),
        parameters={"flat_tolerance_pct": tolerance, "min_delta": min_delta},
        evidence={
            "since_epoch": onset,
            "best_val_epoch": best.epoch,
            "best_val_loss": _r(best.value),
            "latest_val_loss": _r(span[-1][2]),
            "val_change_pct": _r(val_rise, 3),
            "train_change_pct": _r(train_fall, 3),
            "val_slope": _r(val_fit.slope, 9),
            "train_slope": _r(train_fit.slope, 9),
            "val_t_stat": _r(val_fit.t_stat, 3),
        },
    )


def no_improvement(metric: str, best: Best, policy: MonitorPolicy, current_trend: Trend) -> Signal | None:
    """``patience`` epochs without an improvement larger than ``min_delta`` (Keras/Lightning early stopping).

    ``current_trend`` is the metric's trend since its best epoch: a flat one makes this a plateau; otherwise the
    metric is drifting (``no_improvement``).
    """
    if best.since < policy.patience:
        return None
    flat = current_trend.direction in (TrendDirection.FLAT, TrendDirection.UNKNOWN)
    change = current_trend.percent_change
    span = (
        "" if current_trend.from_epoch is None else f" over epochs {current_trend.from_epoch}-{current_trend.to_epoch}"
    )
    since_then = "" if change is None else f"; {current_trend.direction.value}{span} ({change:+.1f}%)"
    return Signal(
        rule=SignalRule.PLATEAU if flat else SignalRule.NO_IMPROVEMENT,
        severity="warning",
        message=(
            f"{metric} has not improved by more than {_fmt(policy.min_delta)} for {best.since} epochs "
            f"(patience {policy.patience}); best {_fmt(best.value)} at epoch {best.epoch}{since_then}"
        ),
        parameters={"patience": policy.patience, "min_delta": policy.min_delta},
        evidence={
            "best_epoch": best.epoch,
            "best_value": _r(best.value),
            "epochs_since_improvement": best.since,
            "trend": current_trend.direction.value,
            "trend_percent_change": current_trend.percent_change,
        },
    )
