"""The forecast: how good a run will get by its planned end, with a calibrated band.

:func:`forecast` fits three monotone learning-curve families (power law, exponential, log-power: the families of
Domhan et al. 2015) to the recent two thirds of the monitored metric's history, extends them to the planned end,
averages them weighted by how well each fits, and turns the projected gain on the best so far into a median and a 20-80%
band whose constants were calibrated on the calibration half of the curve corpus (``bench/forecast.py
--calibrate``). ``docs/diagnosis.md`` explains the arithmetic and shows how well the band holds on the held-out half.

Pure Python, on purpose: the core stays free of numpy (``import trainops`` must not load it), and a forecast over
500 epochs costs well under a millisecond: each family is fitted over a small grid of its one nonlinear parameter,
the linear ones in closed form, to at most :data:`MAX_BINS` averaged points.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

from trainops.core.numbers import Metric
from trainops.core.policy import Mode

Point = tuple[int, float]
"""(epoch, value)"""

ForecastMethod = Literal["ensemble", "best_so_far", "unmoved"]

ForecastEvidence = dict[str, float | int | str | bool | None]
"""The same shape as a signal's evidence: flat, JSON-ready numbers and words."""

MIN_POINTS = 4
"""Below this many finite values there is no forecast: three points fit any of the families exactly, so neither
the trend nor the noise can be told apart."""

MAX_BINS = 20
"""The families are fitted to at most this many points: a longer history is averaged over consecutive epochs into
this many bins (weighted by how many epochs each holds), which keeps a 500-epoch forecast well under a millisecond
and takes out some of the noise before the fit. Calibrated with ``bench/forecast.py --calibrate``."""

FIT_FRACTION = 0.67
"""The share of the history, its most recent part, that the families are fitted to: a curve bends, and its early
fall says little about its end. Calibrated with ``bench/forecast.py --calibrate``."""

MIN_DISTANCE = 0.1
"""No family is projected closer to the floor than this fraction of the best's distance from it (a gain of at most
log 10 on the best so far): a fit that runs into the floor (an exponential fitted to a steep early fall) is capped
rather than projected onto it. Calibrated with ``bench/forecast.py --calibrate``."""

# The projected gain g (a log-ratio, see `forecast`) comes with an uncertainty scale s; the forecast's quantiles are
# max(0, g + Z * s). Z20 leaves 20% of the calibration half's final bests worse than best_value_q80 (a min metric),
# Z80 leaves 20% better than best_value_q20, and Z50 minimises the absolute error of the median there (held at or
# above Z20: the median is never worse than q80). `bench/forecast.py --calibrate` sets them.
Z20 = 0.05652
Z50 = 0.05652
Z80 = 0.205

UNMOVED_GAIN = 0.2517
"""The optimistic end of the band of a metric that has not left its first value (a detector's mAP50 at 0 before its
first box, an accuracy at one class's share): the gain (a log-ratio of the distance to the bound, as above) that 20%
of the calibration half's such cases went past by their planned end. No curve can be fitted to a flat line, and most
such metrics stay where they are (the median), but some take off. ``bench/forecast.py --calibrate`` sets it."""


class Forecast(BaseModel):
    """How good the monitored metric is projected to get by the planned end of the run.

    ``best_value`` is the median of the projected best (best so far included: it is never worse than that), with
    ``best_value_q20`` and ``best_value_q80`` its 20% and 80% quantiles, so that on the held-out half of the corpus
    the run's final best falls between them in about 60% of cases. For a ``min`` metric ``best_value_q20`` is the
    optimistic end; for a ``max`` metric, ``best_value_q80``.

    Over half of the corpus' cases never beat their best so far, so a final best is often exactly the best so far,
    and most bands of a run past its best have no width. With the calibrated constants the median coincides with
    the band's cautious end (``best_value_q80`` for a ``min`` metric): the point that minimises the median's
    error on the calibration half lies no further out than the 20% quantile.
    """

    best_value: Metric = Field(description="the projected best of the monitored metric by the planned end (median)")
    best_value_q20: Metric = Field(description="the 20% quantile of the projected best")
    best_value_q80: Metric = Field(description="the 80% quantile of the projected best")
    best_epoch: int = Field(description="the epoch the projected best is expected by")
    method: ForecastMethod = Field(
        description="how it was projected: ensemble (the fitted curve families); unmoved (the metric has not left its "
        "first value: no curve to fit, so the median is where it is and the band reaches as far as such metrics "
        "went in the corpus); or best_so_far (no epochs left, or the metric already at its bound)"
    )
    evidence: ForecastEvidence = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CurveFit:
    """One family fitted as ``c + a * g(x)`` (``g`` falls from its start toward 0, so ``a > 0`` is improving)."""

    family: str
    shape: float
    """The family's nonlinear parameter: the power law's exponent, the exponential's time constant in epochs, the
    log-power's midpoint in epochs."""
    a: float
    c: float
    sse: float
    basis: Callable[[float], float]

    def at(self, x: float) -> float:
        return self.c + self.a * self.basis(x)


def _power(alpha: float) -> Callable[[float], float]:
    return lambda x: x**-alpha


def _exponential(tau: float) -> Callable[[float], float]:
    return lambda x: math.exp(-x / tau)


def _log_power(mid: float) -> Callable[[float], float]:
    return lambda x: 1.0 / (1.0 + (x / mid) ** LOG_POWER_STEEPNESS)


POWER_EXPONENTS = (0.1, 0.2, 0.35, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
"""The power law's exponents tried before refining around the best."""
TIME_CONSTANTS = (0.03, 0.06, 0.1, 0.17, 0.25, 0.4, 0.6, 1.0, 1.6, 2.5)
"""The exponential's time constants tried, as fractions of the epochs seen."""
MIDPOINTS = (0.03, 0.06, 0.1, 0.17, 0.25, 0.4, 0.6, 1.0, 1.6)
"""The log-power's midpoints tried, as fractions of the epochs seen."""
LOG_POWER_STEEPNESS = 2.0
"""The log-power's exponent, held fixed so that each family has one nonlinear parameter (Domhan et al. fit it)."""
REFINE_STEPS = 8
"""Golden-section steps that refine each family's best grid shape between its neighbours (in log scale)."""

Family = tuple[str, Sequence[float], Callable[[float], Callable[[float], float]]]
"""(name, the shapes to try, the basis ``g`` of a shape)"""


def _families(span: float) -> list[Family]:
    return [
        ("power_law", POWER_EXPONENTS, _power),
        ("exponential", [f * span for f in TIME_CONSTANTS], _exponential),
        ("log_power", [f * span for f in MIDPOINTS], _log_power),
    ]


def _fit(family: Family, xs: Sequence[float], ys: Sequence[float], ws: Sequence[float], floor: float) -> CurveFit:
    """The least-squares ``c + a * g(x)`` of one family: the best of its grid of shapes, refined by golden-section
    search between that shape's neighbours. For each shape ``a`` and ``c`` are a weighted straight-line fit of ``y``
    on ``g(x)`` (variable projection), with ``c`` held at the floor when the line would pass it. A rising fit
    (``a < 0``) is refused: if every shape rises, the family is the flat line at the weighted mean."""
    name, grid, basis = family
    total = sum(ws)
    mean_y = sum(w * y for w, y in zip(ws, ys, strict=True)) / total
    syy = sum(w * (y - mean_y) * (y - mean_y) for w, y in zip(ws, ys, strict=True))
    flat = CurveFit(name, math.nan, 0.0, mean_y, syy, lambda x: 0.0)

    def at(shape: float) -> CurveFit:
        return _fit_shape(name, shape, basis(shape), xs, ys, ws, floor, mean_y, syy, total) or flat

    tried = [at(shape) for shape in grid]
    k = min(range(len(tried)), key=lambda i: tried[i].sse)
    if tried[k] is flat:
        return flat
    # Golden-section search over log(shape) between the neighbours of the best grid shape.
    lo = math.log(grid[max(k - 1, 0)])
    hi = math.log(grid[min(k + 1, len(grid) - 1)])
    best = tried[k]
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    left, right = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fit_left, fit_right = at(math.exp(left)), at(math.exp(right))
    for _ in range(REFINE_STEPS):
        if fit_left.sse <= fit_right.sse:
            hi, right, fit_right = right, left, fit_left
            left = hi - ratio * (hi - lo)
            fit_left = at(math.exp(left))
        else:
            lo, left, fit_left = left, right, fit_right
            right = lo + ratio * (hi - lo)
            fit_right = at(math.exp(right))
    return min((best, fit_left, fit_right), key=lambda fit: fit.sse)


def _fit_shape(
    name: str,
    shape: float,
    g: Callable[[float], float],
    xs: Sequence[float],
    ys: Sequence[float],
    ws: Sequence[float],
    floor: float,
    mean_y: float,
    syy: float,
    total: float,
) -> CurveFit | None:
    """``c + a * g(x)`` by weighted least squares for one shape; ``None`` when it would not fall."""
    gs = [g(x) for x in xs]
    mean_g = sum(w * v for w, v in zip(ws, gs, strict=True)) / total
    sgg = sgy = 0.0
    for w, v, y in zip(ws, gs, ys, strict=True):
        dv = v - mean_g
        sgg += w * dv * dv
        sgy += w * dv * (y - mean_y)
    if sgg <= 0.0 or sgy <= 0.0:
        return None
    a = sgy / sgg
    c = mean_y - a * mean_g
    sse = syy - a * sgy
    if c < floor:
        # The best curve through the points would level off past a bound the metric cannot pass (a loss below
        # zero): the least squares with the asymptote held at that bound instead.
        a = sum(w * v * (y - floor) for w, v, y in zip(ws, gs, ys, strict=True)) / sum(
            w * v * v for w, v in zip(ws, gs, strict=True)
        )
        if a <= 0.0:
            return None
        c = floor
        sse = sum(w * (y - c - a * v) * (y - c - a * v) for w, v, y in zip(ws, gs, ys, strict=True))
    return CurveFit(name, shape, a, c, max(sse, 0.0), g)


def _bins(xs: Sequence[float], ys: Sequence[float]) -> tuple[list[float], list[float], list[float]]:
    """Consecutive points averaged into at most :data:`MAX_BINS` bins: (x, y, weight) of each."""
    n = len(xs)
    if n <= MAX_BINS:
        return list(xs), list(ys), [1.0] * n
    bx: list[float] = []
    by: list[float] = []
    bw: list[float] = []
    for k in range(MAX_BINS):
        lo, hi = k * n // MAX_BINS, (k + 1) * n // MAX_BINS
        count = hi - lo
        bx.append(sum(xs[lo:hi]) / count)
        by.append(sum(ys[lo:hi]) / count)
        bw.append(float(count))
    return bx, by, bw


def _floor(values: Sequence[float], mode: Mode, fraction: bool | None = None) -> float:
    """The bound the metric cannot pass, as "lower is better" (``-inf`` when none is known): zero for a loss that
    has never been negative; for a ``max`` metric that is a fraction (an accuracy), a ceiling of 1. ``values``
    are the metric's own (not signed)."""
    if mode == "min":
        return 0.0 if all(value >= 0.0 for value in values) else -math.inf
    within = all(0.0 <= value <= 1.0 for value in values)
    return -1.0 if within and fraction is not False else -math.inf


def _noise(ys: Sequence[float]) -> float:
    """The metric's epoch-to-epoch noise over the recent half, from its second differences (``y[i+1] - 2 y[i] +
    y[i-1]``, which a trend that bends slowly leaves near zero): their median absolute value, scaled to a standard
    deviation (a second difference of independent draws has sqrt(6) times their spread). Robust to a few spikes."""
    recent = ys[len(ys) // 2 :]
    diffs = sorted(abs(c - 2.0 * b + a) for a, b, c in zip(recent, recent[1:], recent[2:], strict=False))
    if not diffs:
        return 0.0
    mid = len(diffs) // 2
    median = diffs[mid] if len(diffs) % 2 else (diffs[mid - 1] + diffs[mid]) / 2.0
    return median / (0.6745 * math.sqrt(6.0))


def _r(value: float, digits: int = 6) -> float | None:
    """Evidence numbers to ``digits`` significant digits (losses range from 1e-4 to 1e4); non-finite ones None."""
    return float(f"{value:.{digits}g}") if math.isfinite(value) else None


def forecast(points: Sequence[Point], *, mode: Mode, epochs_left: int, fraction: bool | None = None) -> Forecast | None:
    """Project the best value of a metric by the planned end of a run, with its 20% and 80% quantiles.

    Args:
        points: ``(epoch, value)`` of the monitored metric, oldest first; NaN and infinite values are skipped,
            but a latest one says the run has diverged: the best so far is its forecast.
        mode: ``min`` when lower is better (losses), ``max`` when higher is (accuracies).
        epochs_left: The epochs the run still plans to train after the last point.
        fraction: Whether a ``max`` metric is a fraction, which cannot pass 1 (an accuracy, an mAP: what
            :func:`~trainops.core.projection.ceiling` says); ``None``: judged from its values, as one that has
            stayed within [0, 1]. A score that only happens to lie there so far (a Sharpe ratio of 0.8) has no
            ceiling of 1.

    Returns:
        ``None`` below :data:`MIN_POINTS` finite values. With no epochs left (or a metric already at its bound),
        the best so far: ``method="best_so_far"``, a band of width zero. A metric that has not left its first value
        has no curve to fit: ``method="unmoved"``, its median where it is and the band's optimistic end
        :data:`UNMOVED_GAIN` toward its bound. Otherwise ``method="ensemble"``.

    The arithmetic, for a ``min`` metric (a ``max`` one is mirrored):

    1. The floor: zero for a loss that has never been negative, 1 for a ``max`` metric that is a fraction (one
       that has stayed within [0, 1], unless ``fraction`` says otherwise); else as far below the best as the run
       has come down so far.
    2. Each family, ``c + a * g(x)`` with ``a >= 0`` and ``c`` at or above the floor, is fitted to the recent
       :data:`FIT_FRACTION` of the history. None may rise: a run past its best is projected to hold its level.
    3. Gains are log-ratios of the distance to the floor: a loss going from 0.4 to 0.2 over a floor of zero gains
       log 2, as does one going from 0.004 to 0.002. Curves improve by ratios, and no quantile can pass the floor.
       Each family's gain is that of its value at the planned end over the best so far; the projected gain ``g``
       is their average weighted by each family's likelihood (``exp(-n/2 log(SSE / SSE_min))`` over the ``n``
       fitted points), negative when the projected level is worse than the best so far.
    4. Its uncertainty scale ``s`` adds what the families still expect to gain from the latest epoch, how far
       they disagree, and the noise (relative to the level, times ``sqrt(2 ln n)`` for the ``n`` epochs left: the
       luck that can post a new best without any trend).
    5. The quantiles of the final best are ``floor + (best - floor) * exp(-max(0, g + z * s))`` with the ``z`` of
       each level calibrated on the corpus (:data:`Z20`, :data:`Z50`, :data:`Z80`). The final best is never worse
       than the best so far.

    ``best_epoch`` is the best so far's epoch when no gain is projected, else the first epoch at which the
    projected curve reaches the median (the planned end if it never does).

    >>> losses = [(e, 0.2 + 1.0 / (e + 1)) for e in range(40)]
    >>> f = forecast(losses, mode="min", epochs_left=60)
    >>> f.method, f.best_value_q20 <= f.best_value <= f.best_value_q80 < losses[-1][1]
    ('ensemble', True)
    """
    sign = 1.0 if mode == "min" else -1.0  # "lower is better" below
    finite = [(epoch, sign * value) for epoch, value in points if math.isfinite(value)]
    if len(finite) < MIN_POINTS:
        return None
    best_epoch, best = min(finite, key=lambda point: point[1])
    evidence: ForecastEvidence = {"epochs_left": max(epochs_left, 0), "epochs_used": len(finite)}
    if epochs_left <= 0:
        return _best_so_far(sign * best, best_epoch, evidence)
    if not math.isfinite(points[-1][1]):  # diverged: no curve of what came before says where it goes now
        return _best_so_far(sign * best, best_epoch, evidence | {"unfitted": "the latest value is not finite"})
    if all(value == finite[0][1] for _, value in finite):
        return _unmoved(finite, mode, evidence, fraction)
    try:
        projected = _ensemble(finite, points[-1][0], epochs_left, mode, evidence, fraction)
    except (ArithmeticError, ValueError):  # math's overflow and domain errors, on values near a float's limits
        projected = None
    if projected is None:  # values a float cannot square or divide (a diverging run): no curve to fit
        return _best_so_far(sign * best, best_epoch, evidence | {"unfitted": "values too large to fit a curve to"})
    return projected


def _ensemble(
    finite: Sequence[Point],
    last_epoch: int,
    epochs_left: int,
    mode: Mode,
    evidence: ForecastEvidence,
    fraction: bool | None,
) -> Forecast | None:
    """The ensemble's forecast over ``finite`` points, signed "lower is better"; ``None`` if it is not finite."""
    sign = 1.0 if mode == "min" else -1.0
    best_epoch, best = min(finite, key=lambda point: point[1])
    ys = [value for _, value in finite]
    floor = _floor([sign * value for value in ys], mode, fraction)
    origin = finite[0][0] - 1  # x counts epochs from 1 at the first point: the families start there
    xs = [float(epoch - origin) for epoch, _ in finite]
    start = len(xs) - max(MIN_POINTS, round(FIT_FRACTION * len(xs)))
    bx, by, bw = _bins(xs[start:], ys[start:])
    fits = [_fit(family, bx, by, bw, floor) for family in _families(xs[-1])]
    if not math.isfinite(floor):
        floor = _assumed_floor(ys, best)
    headroom = best - floor
    evidence["floor"] = _r(sign * floor)
    if headroom <= 0.0:  # the metric sits on its bound (a loss of exactly zero): nothing left to gain
        return _best_so_far(sign * best, best_epoch, evidence)

    least = min(fit.sse for fit in fits)
    likelihoods = [math.exp(-0.5 * len(bx) * math.log(max(fit.sse, 1e-300) / max(least, 1e-300))) for fit in fits]
    weights = [likelihood / sum(likelihoods) for likelihood in likelihoods]
    tiny = MIN_DISTANCE * headroom

    def distance(fit: CurveFit, x: float) -> float:
        """The fit's distance above the floor at ``x``, at least ``tiny``."""
        return max(fit.at(x) - floor, tiny)

    def gain_at(x: float) -> float:
        """The weighted families' gain on the best so far at ``x`` (its log-ratio, see above)."""
        return sum(w * math.log(headroom / distance(fit, x)) for w, fit in zip(weights, fits, strict=True))

    # The horizon counts from the last epoch reported, finite or not (a run whose latest epochs were NaN still has
    # only `epochs_left` to go); the level now is the families' at the last finite one.
    last_x, end_x = xs[-1], float(last_epoch - origin + epochs_left)
    ends = [math.log(headroom / distance(fit, end_x)) for fit in fits]
    gain = gain_at(end_x)
    trend_gain = sum(
        w * math.log(distance(fit, last_x) / distance(fit, end_x)) for w, fit in zip(weights, fits, strict=True)
    )
    spread = max(ends) - min(ends)
    noise = _noise(ys)
    level_now = sum(w * distance(fit, last_x) for w, fit in zip(weights, fits, strict=True))
    luck = noise / level_now * math.sqrt(2.0 * math.log(epochs_left + 1))
    scale = luck + trend_gain + spread

    def quantile(z: float) -> float:
        lifted = gain + z * scale
        return best if lifted <= 0.0 else min(floor + headroom * math.exp(-lifted), best)

    # A larger gain is a lower value; sorted, in case constants set by hand are out of order.
    q20, median, q80 = sorted((quantile(Z80), quantile(max(Z50, Z20)), quantile(Z20)))
    if not all(math.isfinite(value) for value in (q20, median, q80)):
        return None
    evidence.update(
        {
            "best_so_far": _r(sign * best),
            "best_so_far_epoch": best_epoch,
            "level": _r(sign * (floor + level_now)),
            "projected_level": _r(sign * (floor + headroom * math.exp(-gain))),
            "projected_gain": _r(gain),
            "trend_gain": _r(trend_gain),
            "family_spread": _r(spread),
            "noise": _r(noise),
            "scale": _r(scale),
            "fitted_from_epoch": finite[start][0],
        }
    )
    for fit, weight, end in zip(fits, weights, ends, strict=True):
        evidence[f"{fit.family}_shape"] = _r(fit.shape, 4)
        evidence[f"{fit.family}_weight"] = _r(weight, 4)
        evidence[f"{fit.family}_end"] = _r(sign * (floor + headroom * math.exp(-end)))
    median_epoch = best_epoch
    if median < best:
        target = math.log(headroom / (median - floor))
        median_epoch = last_epoch + first_step(
            lambda step: gain_at(float(last_epoch - origin + step)) >= target, epochs_left
        )
    return _signed(sign, median, q20, q80, median_epoch, "ensemble", evidence)


def first_step(reached: Callable[[int], bool], steps: int) -> int:
    """The first of ``1..steps`` for which ``reached`` holds, by bisection (it holds from some step on: the
    projected gain never shrinks); ``steps`` if it never does."""
    lo, hi = 0, steps
    if not reached(hi):
        return steps
    while hi - lo > 1:  # not reached(lo) (or lo = 0), reached(hi)
        mid = (lo + hi) // 2
        if reached(mid):
            hi = mid
        else:
            lo = mid
    return hi


def _best_so_far(value: float, epoch: int, evidence: ForecastEvidence) -> Forecast:
    return Forecast(
        best_value=value,
        best_value_q20=value,
        best_value_q80=value,
        best_epoch=epoch,
        method="best_so_far",
        evidence=evidence,
    )


def _unmoved(finite: Sequence[Point], mode: Mode, evidence: ForecastEvidence, fraction: bool | None) -> Forecast:
    """The forecast of a metric that has stayed at its first value (``finite``, signed "lower is better"): the
    median holds it; the optimistic end is :data:`UNMOVED_GAIN` of the way (as a log-ratio) toward the bound."""
    sign = 1.0 if mode == "min" else -1.0
    epoch, value = finite[0]
    floor = _floor([sign * v for _, v in finite], mode, fraction)
    if not math.isfinite(floor):
        floor = _assumed_floor([v for _, v in finite], value)
    headroom = value - floor
    evidence.update({"floor": _r(sign * floor), "best_so_far": _r(sign * value), "unmoved_since_epoch": epoch})
    if headroom <= 0.0:  # held at its bound from the start (an accuracy of 1): nothing left to gain
        return _best_so_far(sign * value, epoch, evidence)
    evidence["unmoved_gain"] = UNMOVED_GAIN
    reach = floor + headroom * math.exp(-UNMOVED_GAIN)
    return _signed(sign, value, reach, value, epoch, "unmoved", evidence)


def _signed(
    sign: float,
    median: float,
    optimistic: float,
    cautious: float,
    epoch: int,
    method: ForecastMethod,
    evidence: ForecastEvidence,
) -> Forecast:
    """A forecast from values signed "lower is better" (``sign``: 1 for a ``min`` metric, -1 for a ``max`` one),
    back in the metric's own sign: the optimistic end is the 20% quantile of a ``min`` metric, the 80% of a ``max``."""
    low, high = (optimistic, cautious) if sign > 0 else (cautious, optimistic)
    return Forecast(
        best_value=sign * median,
        best_value_q20=sign * low,
        best_value_q80=sign * high,
        best_epoch=epoch,
        method=method,
        evidence=evidence,
    )


def _assumed_floor(ys: Sequence[float], best: float) -> float:
    """A floor for a metric with no known bound: as far below the best as the run has come down so far (from its
    first value, else from its worst), so that it can at most repeat its progress; 1 below a flat run."""
    came_down = ys[0] - best
    if not came_down > 0.0:
        came_down = max(ys) - best
    return best - (came_down if came_down > 0.0 else 1.0)
