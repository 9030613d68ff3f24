"""The forecast: how good a run will get by its planned end.

Table-driven on curves whose future is known: an exact power law and an exact exponential (the fit must find them),
noise (the band widens), a rise after the best (overfitting: no gain), a NaN tail, too few epochs, a run at its
planned end, an accuracy climbing to its ceiling; then the properties every forecast keeps, on random curves.
"""

from __future__ import annotations

import doctest
import math
import random
import time

import pytest

import trainops.core.forecast as forecasting
from trainops.core import EpochRecord, MonitorPolicy, analyze
from trainops.core.forecast import Forecast, forecast
from trainops.core.policy import Mode
from trainops.core.rules import Point


def points(values: list[float], first_epoch: int = 0) -> list[Point]:
    return [(first_epoch + i, value) for i, value in enumerate(values)]


def power_law(n: int, floor: float = 0.2, alpha: float = 1.0) -> list[float]:
    """``floor + x^-alpha`` with x counting epochs from 1."""
    return [floor + (e + 1) ** -alpha for e in range(n)]


def exponential(n: int, floor: float = 0.1, scale: float = 0.8, tau: float = 15.0) -> list[float]:
    return [floor + scale * math.exp(-(e + 1) / tau) for e in range(n)]


def noisy(values: list[float], sigma: float, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    return [value + rng.gauss(0.0, sigma) for value in values]


def width(f: Forecast) -> float:
    return f.best_value_q80 - f.best_value_q20


def must(f: Forecast | None) -> Forecast:
    assert f is not None
    return f


@pytest.mark.parametrize(
    ("values", "epochs_left", "mode", "truth", "tolerance"),
    [
        # The fitted curve itself lands on the true value at the planned end; the median is calibrated on real
        # curves (which tend to beat their extrapolation), so it may lie a little beyond.
        pytest.param(power_law(40), 60, "min", 0.2 + 100**-1.0, 0.02, id="exact-power-law"),
        pytest.param(power_law(30, floor=0.05, alpha=0.5), 170, "min", 0.05 + 200**-0.5, 0.1, id="slow-power-law"),
        pytest.param(exponential(30), 70, "min", exponential(100)[-1], 0.06, id="exact-exponential"),
        pytest.param(
            [0.9 - 0.5 * math.exp(-0.05 * e) for e in range(40)],
            60,
            "max",
            0.9 - 0.5 * math.exp(-0.05 * 99),
            0.02,
            id="accuracy-to-its-ceiling",
        ),
    ],
)
def test_projects_known_curves_to_their_end(
    values: list[float], epochs_left: int, mode: Mode, truth: float, tolerance: float
) -> None:
    f = must(forecast(points(values), mode=mode, epochs_left=epochs_left))
    assert f.method == "ensemble"
    projected = f.evidence["projected_level"]
    assert isinstance(projected, float)
    assert projected == pytest.approx(truth, rel=tolerance / 4)
    assert f.best_value == pytest.approx(truth, rel=tolerance)
    best_so_far = values[-1]
    assert (f.best_value < best_so_far) if mode == "min" else (f.best_value > best_so_far)
    # an improving run expects its best late, after the epochs seen and by the planned end
    assert len(values) - 1 < f.best_epoch <= len(values) - 1 + epochs_left


def test_the_best_family_carries_the_weight() -> None:
    f = must(forecast(points(power_law(40)), mode="min", epochs_left=60))
    assert f.evidence["power_law_weight"] == pytest.approx(1.0, abs=1e-3)
    assert f.evidence["power_law_shape"] == pytest.approx(1.0, rel=1e-3)
    g = must(forecast(points(exponential(30)), mode="min", epochs_left=70))
    assert g.evidence["exponential_weight"] == pytest.approx(1.0, abs=1e-3)
    assert g.evidence["exponential_shape"] == pytest.approx(15.0, rel=1e-2)


@pytest.mark.parametrize("sigma", [0.01, 0.03])
def test_noise_widens_the_band(sigma: float) -> None:
    clean = must(forecast(points(exponential(40)), mode="min", epochs_left=60))
    shaky = must(forecast(points(noisy(exponential(40), sigma)), mode="min", epochs_left=60))
    assert width(shaky) > width(clean)
    assert shaky.evidence["noise"] == pytest.approx(sigma, rel=0.5)


def test_more_noise_more_uncertainty() -> None:
    # Not always a wider band: a noisier run also has a luckier best so far, which the projection may not beat.
    scales = [must(forecast(points(noisy(exponential(40), s)), mode="min", epochs_left=60)) for s in (0.005, 0.05)]
    assert scales[0].evidence["scale"] < scales[1].evidence["scale"]


RISING = [1.0 - 0.04 * e for e in range(8)] + [0.7 + 0.01 * e for e in range(1, 13)]


@pytest.mark.parametrize(
    ("values", "epochs_left", "mode"),
    [
        pytest.param(RISING, 80, "min", id="overfitting-loss"),
        pytest.param([-v for v in RISING], 80, "max", id="falling-accuracy"),
        pytest.param([1.0, 0.8, 0.6, 0.5] + [0.5] * 20, 80, "min", id="flat"),
    ],
)
def test_no_gain_when_past_the_best(values: list[float], epochs_left: int, mode: Mode) -> None:
    f = must(forecast(points(values), mode=mode, epochs_left=epochs_left))
    best = min(values) if mode == "min" else max(values)
    assert f.best_value == pytest.approx(best)
    assert f.best_value_q20 == pytest.approx(best)
    assert f.best_value_q80 == pytest.approx(best)
    assert f.best_epoch == values.index(best)


def test_a_run_past_its_best_is_never_projected_to_rise_again() -> None:
    f = must(forecast(points(RISING), mode="min", epochs_left=80))
    assert f.evidence["trend_gain"] == 0.0
    for family in ("power_law", "exponential", "log_power"):
        assert f.evidence[f"{family}_shape"] is None  # every shape would rise: the family holds a flat line
        assert f.evidence[f"{family}_end"] == pytest.approx(f.evidence["level"])


@pytest.mark.parametrize(
    ("floor", "held"),
    [pytest.param(0.0, True, id="a-loss-levels-off-at-zero"), pytest.param(-math.inf, False, id="no-known-bound")],
)
def test_a_fit_never_levels_off_past_the_floor(floor: float, held: bool) -> None:
    xs = [float(x) for x in range(1, 11)]
    ys = [1.0 - 0.09 * x for x in xs]  # a straight fall: the best curve through it levels off below zero
    fit = forecasting._fit(forecasting._families(10.0)[1], xs, ys, [1.0] * 10, floor)
    assert fit.a > 0.0
    assert (fit.c == 0.0) if held else (fit.c < 0.0)


def test_the_band_allows_for_the_luck_of_the_noise() -> None:
    f = must(forecast(points(noisy(exponential(40), 0.02)), mode="min", epochs_left=60))
    noise, level, scale, trend, spread = (
        float(f.evidence[key] or 0.0) for key in ("noise", "level", "scale", "trend_gain", "family_spread")
    )
    assert noise > 0.0
    # the scale adds the luck of 60 noisy epochs (relative to the level above the floor of zero) to the fits' own
    assert scale == pytest.approx(noise / level * math.sqrt(2.0 * math.log(61)) + trend + spread, rel=1e-4)


def test_a_run_whose_latest_value_is_not_finite_is_forecast_no_better_than_its_best_so_far() -> None:
    """It has diverged (the diagnosis says stop): a curve through the epochs before says nothing of where it goes."""
    values = exponential(30)
    f = must(forecast(points([*values, math.nan, math.inf]), mode="min", epochs_left=68))

    assert f.method == "best_so_far" and f.evidence["unfitted"] == "the latest value is not finite"
    assert f.best_value == f.best_value_q20 == f.best_value_q80 == min(values)
    assert f.evidence["epochs_used"] == 30


def test_skips_a_non_finite_value_the_run_has_recovered_from() -> None:
    values = exponential(30)
    skipped = [*values[:10], math.nan, *values[11:]]
    f = must(forecast(points(skipped), mode="min", epochs_left=70))
    same = must(forecast([p for p in points(values) if p[0] != 10], mode="min", epochs_left=70))
    assert f.evidence["epochs_used"] == 29
    assert f.method == "ensemble"
    assert f.best_value == pytest.approx(same.best_value, rel=1e-9)
    assert f.evidence["projected_level"] == same.evidence["projected_level"]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param([], None, id="nothing"),
        pytest.param([math.nan] * 10, None, id="all-nan"),
        pytest.param([1.0, 0.5, 0.4], None, id="three-points"),
        pytest.param([1.0, 0.5, math.nan, 0.4, math.inf], None, id="three-finite-among-five"),
        pytest.param([1.0, 0.5, 0.45, 0.4], "ensemble", id="four-points"),
    ],
)
def test_too_few_epochs_give_no_forecast(values: list[float], expected: str | None) -> None:
    f = forecast(points(values), mode="min", epochs_left=20)
    assert (f.method if f else None) == expected


@pytest.mark.parametrize("epochs_left", [0, -3])
def test_at_the_planned_end_the_forecast_is_the_best_so_far(epochs_left: int) -> None:
    values = noisy(exponential(50), 0.02)
    f = must(forecast(points(values, first_epoch=1), mode="min", epochs_left=epochs_left))
    best = min(values)
    assert f.method == "best_so_far"
    assert (f.best_value, f.best_value_q20, f.best_value_q80) == (best, best, best)
    assert f.best_epoch == values.index(best) + 1  # epochs as the run numbers them


REACH = math.exp(-forecasting.UNMOVED_GAIN)
"""The share of the distance to its bound that an unmoved metric's band leaves untouched at its optimistic end."""


@pytest.mark.parametrize(
    ("value", "mode", "q20", "q80"),
    [
        # the optimistic end is UNMOVED_GAIN (a log-ratio) of the way toward the bound; the cautious end and the
        # median hold the metric where it is
        pytest.param(0.0, "max", 0.0, 1.0 - REACH, id="an-mAP50-at-0-before-its-first-box"),
        pytest.param(0.5, "max", 0.5, 1.0 - 0.5 * REACH, id="an-accuracy-at-one-class-share"),
        pytest.param(2.3, "min", 2.3 * REACH, 2.3, id="a-loss-that-has-not-moved"),
        pytest.param(-3.0, "min", -4.0 + REACH, -3.0, id="an-unbounded-metric-one-below-itself"),
    ],
)
def test_a_metric_that_has_not_moved_keeps_its_median_and_reaches_toward_its_bound(
    value: float, mode: Mode, q20: float, q80: float
) -> None:
    f = must(forecast(points([value] * 12, first_epoch=3), mode=mode, epochs_left=28))

    assert f.method == "unmoved"
    assert f.best_value == value and f.best_epoch == 3  # no curve to fit: it stays where it is (the likeliest)
    assert (f.best_value_q20, f.best_value_q80) == (pytest.approx(q20), pytest.approx(q80))
    assert f.evidence["unmoved_since_epoch"] == 3 and f.evidence["unmoved_gain"] == forecasting.UNMOVED_GAIN


def test_an_unmoved_metric_at_its_bound_or_at_the_planned_end_is_the_best_so_far() -> None:
    at_ceiling = must(forecast(points([1.0] * 12), mode="max", epochs_left=28))
    at_end = must(forecast(points([0.0] * 12), mode="max", epochs_left=0))

    assert (at_ceiling.method, at_ceiling.best_value_q80) == ("best_so_far", 1.0)
    assert (at_end.method, at_end.best_value_q80) == ("best_so_far", 0.0)


def test_a_metric_that_has_moved_at_all_is_fitted() -> None:
    blip = [0.0] * 11 + [0.004]  # a detector's first box
    assert must(forecast(points(blip), mode="max", epochs_left=28)).method == "ensemble"


def test_a_loss_at_zero_has_nothing_left_to_gain() -> None:
    f = must(forecast(points([1.0, 0.5, 0.1, 0.0, 0.0]), mode="min", epochs_left=50))
    assert (f.method, f.best_value, f.best_value_q20) == ("best_so_far", 0.0, 0.0)


def test_a_loss_is_never_projected_below_zero() -> None:
    steep = [1.0 - 0.09 * e for e in range(10)]  # a straight fall that would cross zero within a few epochs
    f = must(forecast(points(steep), mode="min", epochs_left=100))
    assert 0.0 < f.best_value_q20 <= f.best_value <= f.best_value_q80 <= min(steep)


def test_an_accuracy_is_never_projected_above_one() -> None:
    climbing = [0.5 + 0.045 * e for e in range(10)]
    f = must(forecast(points(climbing), mode="max", epochs_left=100))
    assert max(climbing) <= f.best_value_q20 <= f.best_value <= f.best_value_q80 < 1.0


def test_an_unbounded_metric_assumes_it_can_at_most_repeat_its_progress() -> None:
    log_likelihood = [-10.0 + 8.0 * (1.0 - math.exp(-e / 10.0)) for e in range(30)]  # max mode, negative values
    f = must(forecast(points(log_likelihood), mode="max", epochs_left=30))
    best = max(log_likelihood)
    came_up = best - log_likelihood[0]
    assert best < f.best_value <= f.best_value_q80 < best + came_up
    assert f.evidence["floor"] == pytest.approx(best + came_up)


def _random_curve(rng: random.Random) -> tuple[list[float], int, Mode]:
    n = rng.randint(4, 120)
    floor, scale, tau = rng.uniform(0.0, 1.0), rng.uniform(0.01, 5.0), rng.uniform(1.0, 80.0)
    values = [
        floor + scale * math.exp(-e / tau) + rng.gauss(0.0, rng.choice([0.0, 0.01, 0.2]) * scale) for e in range(n)
    ]
    if rng.random() < 0.3:  # a rise after the middle: overfitting
        values = [v + (max(0, e - n // 2) * scale * 0.01) for e, v in enumerate(values)]
    if rng.random() < 0.2:
        values[rng.randrange(n)] = math.nan
    mode: Mode = rng.choice(["min", "max"])
    if mode == "max":
        values = [1.0 - v / (floor + scale + 1.0) for v in values]  # an accuracy-like metric in [0, 1]
    return values, rng.randint(0, 300), mode


@pytest.mark.parametrize("seed", range(40))
def test_every_forecast_is_ordered_and_never_worse_than_the_best(seed: int) -> None:
    values, epochs_left, mode = _random_curve(random.Random(seed))
    f = forecast(points(values), mode=mode, epochs_left=epochs_left)
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) < forecasting.MIN_POINTS:
        assert f is None
        return
    f = must(f)
    assert f.best_value_q20 <= f.best_value <= f.best_value_q80
    if mode == "min":
        assert f.best_value_q80 <= min(finite)
    else:
        assert f.best_value_q20 >= max(finite)
    assert 0 <= f.best_epoch <= len(values) - 1 + max(epochs_left, 0)
    assert Forecast.model_validate_json(f.model_dump_json()) == f


def test_a_500_epoch_forecast_is_fast() -> None:
    history = points(noisy(power_law(500), 0.01))
    forecast(history, mode="min", epochs_left=500)  # warm up
    rounds = 20
    started = time.perf_counter()
    for _ in range(rounds):
        forecast(history, mode="min", epochs_left=500)
    per_call = (time.perf_counter() - started) / rounds
    assert per_call < 0.01, f"{per_call * 1000:.2f} ms per forecast (goal < 2 ms; bench/forecast.py measures it)"


def test_docstring_examples() -> None:
    result = doctest.testmod(forecasting, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


@pytest.mark.parametrize(
    "values",
    [
        pytest.param([1e300, 1e299, 1e298, 1e297, 1e296], id="huge"),
        pytest.param([1.0, 0.5, 1e308, 0.4, 0.35, 0.3], id="a-spike-near-the-float-limit"),
        pytest.param([-1e300, -1e301, -1e302, -1e303], id="huge-negative"),
    ],
)
@pytest.mark.parametrize("mode", ["min", "max"])
def test_values_near_the_float_limit_fall_back_to_the_best_so_far(values: list[float], mode: Mode) -> None:
    f = must(forecast(points(values), mode=mode, epochs_left=50))
    best = min(values) if mode == "min" else max(values)
    assert math.isfinite(f.best_value)
    if f.method == "best_so_far":
        assert f.best_value == best
        assert "unfitted" in f.evidence
    else:
        assert f.best_value_q20 <= f.best_value <= f.best_value_q80


def test_a_score_with_no_ceiling_is_not_capped_at_1_because_its_values_so_far_are_below_it() -> None:
    """A Sharpe ratio climbing 0.30 -> 0.88 has no ceiling of 1, as an IoU climbing the same way has."""

    def forecast_of(metric: str) -> float:
        records = [EpochRecord(epoch=e, metrics={metric: 0.30 + 0.02 * e}) for e in range(30)]
        diagnosis = analyze(records, MonitorPolicy(monitor=metric, mode="max"), total_epochs_planned=60)
        assert diagnosis.forecast is not None and diagnosis.forecast.method == "ensemble"
        return diagnosis.forecast.best_value_q80

    assert forecast_of("val_sharpe") > 1.0
    assert forecast_of("val_iou") <= 1.0
