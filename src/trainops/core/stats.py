"""The little statistics the diagnosis needs: least-squares lines and percent changes.

Pure Python on purpose: windows hold tens of points, and the core stays free of heavy imports.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SIGNIFICANT_T = 2.0
"""|t| of a slope at or above this is taken as a real trend rather than noise, for many points: pure noise reaches
it 4.55% of the time. Fewer points need more (:func:`critical_t`)."""

_FEW_POINTS_T = (13.968, 4.527, 3.307, 2.869, 2.649, 2.517, 2.429, 2.366, 2.320)
"""Student's t at the level of :data:`SIGNIFICANT_T` (two-sided 4.55%) for 1 to 9 degrees of freedom."""


def critical_t(points: int) -> float:
    """The |t| a slope fitted to ``points`` points must reach to count as significant: Student's t for ``points - 2``
    degrees of freedom at the level :data:`SIGNIFICANT_T` has for many points. Three noisy points tilt by chance
    far more often than thirty do: at ``|t| >= 2`` pure noise passes for a trend in 15% of 3-point fits.

    >>> critical_t(3), round(critical_t(12), 2), round(critical_t(1000), 2)
    (13.968, 2.28, 2.0)
    """
    degrees = points - 2
    if degrees <= len(_FEW_POINTS_T):
        return _FEW_POINTS_T[degrees - 1]
    return SIGNIFICANT_T + 2.5 / degrees + 3.0625 / degrees**2  # the Cornish-Fisher expansion, within 0.005 here


@dataclass(frozen=True, slots=True)
class LineFit:
    slope: float
    intercept: float
    t_stat: float
    """The slope divided by its standard error; infinite for a perfect non-flat line."""
    points: int
    """How many points the line was fitted to: the fewer, the larger a |t| must be to count (:func:`critical_t`)."""
    residual_std: float = 0.0
    """The spread of the points around the line (residual standard deviation, n - 2 degrees of freedom)."""

    def at(self, x: float) -> float:
        return self.intercept + self.slope * x

    @property
    def is_significant(self) -> bool:
        return abs(self.t_stat) >= critical_t(self.points)


def fit_line(xs: Sequence[float], ys: Sequence[float]) -> LineFit | None:
    """Ordinary least squares of ``ys`` on ``xs``; ``None`` below three points or with a single x.

    >>> fit = fit_line([0, 1, 2, 3], [1.0, 3.0, 5.0, 7.0])
    >>> fit.slope, fit.intercept, fit.is_significant
    (2.0, 1.0, True)
    """
    n = len(xs)
    if n < 3 or n != len(ys):
        return None
    try:
        return _fit(xs, ys, n)
    except OverflowError:  # values near the float limit (a blown-up loss): no line to fit
        return None


def _fit(xs: Sequence[float], ys: Sequence[float], n: int) -> LineFit | None:
    mean_x = sum(xs) / n
    mean_y = sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs)
    if sxx == 0:
        return None
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    slope = sxy / sxx
    intercept = mean_y - slope * mean_x
    residual = sum((y - (intercept + slope * x)) ** 2 for x, y in zip(xs, ys, strict=True))
    residual_std = math.sqrt(residual / (n - 2))
    # A residual within the rounding of the values themselves is a perfect line: relative to their magnitude, so
    # that a loss of 1e-11 with 1% noise is as noisy as one of 1 (an absolute floor called its noise a perfect line).
    scale = max(abs(y) for y in ys)
    if residual <= (1e-12 * scale) ** 2 * n:
        t_stat = 0.0 if slope == 0 else math.copysign(math.inf, slope)
    else:
        t_stat = slope / (residual_std / math.sqrt(sxx))
    return LineFit(slope=slope, intercept=intercept, t_stat=t_stat, residual_std=residual_std, points=n)


def percent_change(start: float, end: float) -> float | None:
    """``(end - start) / |start|`` in percent; ``None`` when ``start`` is zero."""
    if start == 0:
        return None
    return (end - start) / abs(start) * 100.0
