"""Least-squares lines and percent changes: the arithmetic every trend rule stands on."""

from __future__ import annotations

import math
import random

import pytest

from trainops.core.stats import SIGNIFICANT_T, LineFit, critical_t, fit_line, percent_change


@pytest.mark.parametrize(
    ("xs", "ys"),
    [
        pytest.param([], [], id="empty"),
        pytest.param([0], [1.0], id="one-point"),
        pytest.param([0, 1], [1.0, 2.0], id="two-points"),
        pytest.param([3, 3, 3], [1.0, 2.0, 3.0], id="constant-x"),
        pytest.param([0, 1, 2], [1.0, 2.0], id="lengths-differ"),
    ],
)
def test_fit_line_refuses_what_cannot_be_fitted(xs: list[float], ys: list[float]) -> None:
    assert fit_line(xs, ys) is None


@pytest.mark.parametrize(
    ("xs", "ys", "slope", "intercept", "t_stat"),
    [
        pytest.param([0, 1, 2, 3], [1.0, 3.0, 5.0, 7.0], 2.0, 1.0, math.inf, id="perfect-rising-line"),
        pytest.param([0, 1, 2], [4.0, 2.0, 0.0], -2.0, 4.0, -math.inf, id="perfect-falling-line"),
        pytest.param([0, 1, 2], [1e6, 1e6 + 2, 1e6 + 4], 2.0, 1e6, math.inf, id="perfect-line-far-from-zero"),
        pytest.param([5, 6, 7, 8], [0.5, 0.5, 0.5, 0.5], 0.0, 0.5, 0.0, id="constant-y"),
        pytest.param([0, 1, 2, 3], [0.0, 1.0, 1.0, 2.0], 0.6, 0.1, 3 * math.sqrt(2), id="noisy-significant"),
        pytest.param([0, 1, 2, 3], [0.0, 2.0, 0.0, 1.0], 0.1, 0.6, 0.19245009, id="noisy-insignificant"),
    ],
)
def test_fit_line(xs: list[float], ys: list[float], slope: float, intercept: float, t_stat: float) -> None:
    fit = fit_line(xs, ys)

    assert fit is not None
    assert fit.slope == pytest.approx(slope)
    assert fit.intercept == pytest.approx(intercept)
    assert fit.t_stat == pytest.approx(t_stat)
    assert fit.is_significant is (abs(t_stat) >= critical_t(len(xs)))


def test_fit_line_at_evaluates_the_fitted_line() -> None:
    fit = fit_line([0, 1, 2, 3], [1.0, 3.0, 5.0, 7.0])

    assert fit is not None
    assert fit.at(10) == pytest.approx(21.0)
    assert fit.at(-0.5) == pytest.approx(0.0)


@pytest.mark.parametrize(
    ("t_stat", "significant"),
    [
        pytest.param(critical_t(12), True, id="at-threshold"),
        pytest.param(-critical_t(12), True, id="at-negative-threshold"),
        pytest.param(critical_t(12) - 0.001, False, id="just-below"),
        pytest.param(SIGNIFICANT_T, False, id="the-many-points-threshold-is-not-enough-for-12"),
        pytest.param(0.0, False, id="zero"),
        pytest.param(math.inf, True, id="perfect-fit"),
        pytest.param(-math.inf, True, id="perfect-falling-fit"),
    ],
)
def test_is_significant_threshold(t_stat: float, significant: bool) -> None:
    assert LineFit(slope=1.0, intercept=0.0, t_stat=t_stat, points=12).is_significant is significant


@pytest.mark.parametrize("points", [3, 4, 5, 8, 12, 30])
def test_pure_noise_passes_for_a_trend_as_rarely_whatever_the_number_of_points(points: int) -> None:
    """At |t| >= 2 whatever the points, three noisy points passed for a trend in 15% of fits; Student's t for the
    degrees of freedom keeps every size at the level 2 has for many points (4.55%)."""
    rng = random.Random(points)
    fits = [fit_line(range(points), [rng.gauss(0.0, 1.0) for _ in range(points)]) for _ in range(20_000)]

    passed = sum(fit is not None and fit.is_significant for fit in fits) / len(fits)

    assert passed == pytest.approx(0.0455, abs=0.006)


def test_the_critical_t_is_students_at_the_level_of_2_for_many_points() -> None:
    # scipy.stats.t.ppf(1 - 0.0455003 / 2, df) for df = 1, 2, 10, 28, 98
    expected = {3: 13.968, 4: 4.527, 12: 2.284, 30: 2.093, 100: 2.026}

    assert {points: round(critical_t(points), 3) for points in expected} == pytest.approx(expected, abs=0.004)


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        pytest.param(2.0, 3.0, 50.0, id="rise"),
        pytest.param(2.0, 1.0, -50.0, id="fall"),
        pytest.param(1.0, 1.0, 0.0, id="unchanged"),
        pytest.param(-2.0, -1.0, 50.0, id="negative-start-rising"),
        pytest.param(-2.0, -3.0, -50.0, id="negative-start-falling"),
        pytest.param(0.5, 0.0, -100.0, id="to-zero"),
        pytest.param(0.0, 1.0, None, id="zero-start"),
        pytest.param(0.0, 0.0, None, id="zero-to-zero"),
        pytest.param(-0.0, 1.0, None, id="negative-zero-start"),
    ],
)
def test_percent_change(start: float, end: float, expected: float | None) -> None:
    result = percent_change(start, end)

    if expected is None:
        assert result is None
    else:
        assert result == pytest.approx(expected)


def test_fit_line_on_values_near_the_float_limit_gives_no_line() -> None:
    from trainops.core import EpochRecord, analyze

    assert fit_line([0, 1, 2], [1e200, 1e300, 1e308]) is None
    history = [EpochRecord(epoch=e, train_loss=0.5 * 10 ** (4 * e), val_loss=0.6 * 10 ** (4 * e)) for e in range(42)]
    assert analyze(history).is_diverging
