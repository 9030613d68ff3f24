"""The projection: what continuing to the end of a run is likely to gain, and the stop it recommends.

Table-driven on curves whose future is known: an exponential approach to a floor, a plateau, a rise (overfitting),
an accuracy climbing to a ceiling; then how the horizon, ``min_improvement_pct`` and ``noise_allowance`` move
the verdict, and the reason a person reads.
"""

from __future__ import annotations

import math
import random

import pytest

from trainops.core import Action, EpochRecord, MonitorPolicy, analyze, replay
from trainops.core.policy import Mode
from trainops.core.projection import Projection, projected_improvement, projection
from trainops.core.rules import Point, find_best

DEFAULT = MonitorPolicy()


def curve(values: list[float]) -> list[Point]:
    return list(enumerate(values))


def decaying(n: int, rate: float = 0.1, floor: float = 0.2) -> list[float]:
    """``floor + e^(-rate * epoch)``: fast at first, slower every epoch."""
    return [floor + math.exp(-rate * epoch) for epoch in range(n)]


def noisy(values: list[float], sigma: float, seed: int = 3) -> list[float]:
    rng = random.Random(seed)
    return [value + rng.gauss(0.0, sigma) for value in values]


def project(
    values: list[float], epochs_left: int, policy: MonitorPolicy = DEFAULT, mode: Mode = "min"
) -> Projection | None:
    points = curve(values)
    best = find_best(points, mode, 0.0)
    assert best is not None
    return projection(points, best, epochs_left, "planned", policy, mode)


@pytest.mark.parametrize(
    ("values", "epochs_left", "mode", "worth"),
    [
        pytest.param(decaying(20), 80, "min", True, id="early-in-a-fall-continues"),
        pytest.param(decaying(90), 10, "min", False, id="near-the-floor-stops"),
        pytest.param([1.0, 0.8, 0.6, 0.5, 0.45] + [0.45] * 15, 80, "min", False, id="flat-stops-however-long-left"),
        pytest.param(
            [1.0 - 0.04 * e for e in range(8)] + [0.7 + 0.01 * e for e in range(12)], 80, "min", False, id="rising"
        ),
        pytest.param([0.9 - 0.5 * math.exp(-0.1 * e) for e in range(20)], 80, "max", True, id="accuracy-climbing"),
        pytest.param([0.9 - 0.5 * math.exp(-0.1 * e) for e in range(95)], 5, "max", False, id="accuracy-at-ceiling"),
    ],
)
def test_worth_continuing(values: list[float], epochs_left: int, mode: Mode, worth: bool) -> None:
    projected = project(values, epochs_left, mode=mode)
    assert projected is not None

    best = find_best(curve(values), mode, 0.0)
    assert best is not None
    signal = projected_improvement("val_loss", projected, best, DEFAULT)
    assert signal.evidence["worth_continuing"] is worth
    assert signal.severity == ("info" if worth else "warning")
    assert (projected.improvement_pct > DEFAULT.min_improvement_pct) is worth


@pytest.mark.usefixtures("quarter_windows")
def test_a_slowing_fall_is_extended_as_it_slows() -> None:
    values = decaying(40, rate=0.1, floor=0.0)
    projected = project(values, 60)
    assert projected is not None

    # the window is 10 epochs; e^(-0.1 * 10) = 0.37 is how much the fall slows from one window to the next
    assert projected.decay == pytest.approx(math.exp(-1.0), rel=0.05)
    # a straight line would promise the whole remaining loss away; the geometric series promises about what is left
    straight = -projected.slope * 60
    assert projected.trend_gain < straight / 4
    assert values[-1] * 0.5 < projected.trend_gain < values[-1] * 2  # about the loss that is left to lose


def test_a_fall_after_a_flat_stretch_is_assumed_to_halve_each_window() -> None:
    values = [1.0] * 10 + [1.0 - 0.01 * e for e in range(10)]
    projected = project(values, 50)
    assert projected is not None

    assert projected.decay == 0.5


def test_a_rise_adds_no_trend_gain() -> None:
    values = [1.0 - 0.04 * e for e in range(8)] + [0.7 + 0.01 * e for e in range(12)]
    projected = project(values, 80)
    assert projected is not None

    assert projected.trend_gain == 0.0
    assert projected.slope > 0
    assert projected.improvement_pct < 0


def test_a_loss_is_never_projected_below_zero() -> None:
    projected = project([1.0 - 0.04 * e for e in range(20)], 500)
    assert projected is not None

    assert projected.projected_best == 0.0
    assert projected.improvement_pct == pytest.approx(100.0)
    # and the reason does not promise a perfect model ("improve val_loss by about 100.0%")
    points = curve([1.0 - 0.04 * e for e in range(20)])
    best = find_best(points, "min", 0.0)
    assert best is not None
    message = projected_improvement("val_loss", projected, best, DEFAULT).message
    assert message == (
        "continuing 500 more epoch(s) is projected to improve val_loss by far more than the 1% it needs (its "
        "recent fall, carried on, would reach 0 before the end); best 0.24 at epoch 19"
    )


def test_noise_counts_as_much_as_the_allowance_says() -> None:
    values = noisy([0.5] * 200, sigma=0.02)  # 200 epochs: a 100-epoch window, its recent 50 give the noise
    without = project(values, 60, MonitorPolicy(noise_allowance=0.0))
    default = project(values, 60)
    generous = project(values, 60, MonitorPolicy(noise_allowance=2.0))
    assert without is not None and default is not None and generous is not None

    assert without.noise_gain == 0.0
    assert 0.0 < default.noise_gain < generous.noise_gain
    # sqrt(2 ln 61) standard deviations, half of them by default
    assert DEFAULT.noise_allowance == 0.5
    assert default.noise_gain == pytest.approx(0.5 * default.noise * math.sqrt(2 * math.log(61)))
    assert default.noise == pytest.approx(0.02, rel=0.35)
    assert without.improvement_pct < default.improvement_pct < generous.improvement_pct


def test_nothing_is_left_to_gain_at_the_planned_end() -> None:
    values = decaying(30)
    projected = project(values, 0)
    assert projected is not None
    best = find_best(curve(values), "min", 0.0)
    assert best is not None

    assert (projected.trend_gain, projected.noise_gain) == (0.0, 0.0)
    signal = projected_improvement("val_loss", projected, best, DEFAULT)
    assert signal.severity == "warning"
    assert signal.message.startswith("the run has reached its planned length; best ")


@pytest.mark.parametrize("values", [[0.5], [0.5, 0.4], [math.nan, 0.5, math.inf, 0.4]])
def test_below_three_finite_points_there_is_no_projection(values: list[float]) -> None:
    points = curve(values)
    best = find_best(points, "min", 0.0)
    assert best is not None

    assert projection(points, best, 50, "planned", DEFAULT, "min") is None


# ----------------------------------------------------------------------------------------- through analyze()


def history(val: list[float], train: list[float] | None = None) -> list[EpochRecord]:
    train = train or [v * 0.9 for v in val]
    return [EpochRecord(epoch=e, train_loss=t, val_loss=v) for e, (v, t) in enumerate(zip(val, train, strict=True))]


def test_the_planned_horizon_decides() -> None:
    """The same 40 epochs of a slow, steady fall (0.2% an epoch): worth 160 more epochs, not 2 (nor the 3 and 4
    the two evaluations before saw, which confirm the stop)."""
    records = history([1.0 - 0.002 * e for e in range(40)])

    long_run = analyze(records, total_epochs_planned=200)
    short_run = analyze(records, total_epochs_planned=42)

    assert long_run.recommendation.action is Action.CONTINUE
    assert short_run.recommendation.action is Action.STOP
    assert long_run.projection is not None and short_run.projection is not None
    assert long_run.projection.evidence["epochs_left"] == 160
    assert short_run.projection.evidence["epochs_left"] == 2


@pytest.mark.parametrize(
    ("epochs", "epochs_left"),
    [
        pytest.param(range(50, 100), 0, id="resumed-at-its-last-planned-epoch"),
        pytest.param(range(50, 80), 20, id="resumed"),
        pytest.param(range(0, 90, 10), 19, id="reported-every-10th-epoch"),
        pytest.param(range(1, 81), 20, id="numbered-from-1"),
        pytest.param(range(0, 80), 20, id="numbered-from-0"),
    ],
)
def test_the_epochs_left_count_the_epochs_trained_not_the_records(epochs: range, epochs_left: int) -> None:
    """A run resumed at epoch 50 (Keras' initial_epoch, a Lightning checkpoint) has trained 50 epochs before its
    first record; one that reports every 10th epoch, 10 for each record."""
    records = [EpochRecord(epoch=e, train_loss=0.2 + 1 / (e + 1), val_loss=0.2 + 1 / (e + 1)) for e in epochs]

    diagnosis = analyze(records, total_epochs_planned=100)

    assert diagnosis.projection is not None and diagnosis.projection.evidence["epochs_left"] == epochs_left
    last_planned = 100 if epochs[0] == 1 else 99
    assert diagnosis.forecast is not None and diagnosis.forecast.best_epoch <= last_planned


def test_a_replay_of_a_resumed_run_saves_only_the_epochs_it_had_left() -> None:
    records = [EpochRecord(epoch=e, train_loss=0.3, val_loss=0.3) for e in range(50, 100)]  # flat since its resume

    replayed = replay(records, total_epochs_planned=100)

    assert replayed.stop_epoch is not None and replayed.epochs_saved == 99 - replayed.stop_epoch


def test_a_run_validated_every_other_epoch_is_projected_as_one_validated_every_epoch() -> None:
    """An exponential slows by the same factor per epoch however often it is read: the slowing measured between
    windows of points is spread over the epochs those windows span."""

    def validated_every(every: int) -> float:
        records = [
            EpochRecord(epoch=e, train_loss=loss, val_loss=loss if e % every == every - 1 else None)
            for e, loss in enumerate(decaying(100, rate=1 / 40))
        ]
        projected = analyze(records, total_epochs_planned=200).projection
        assert projected is not None
        improvement = projected.evidence["projected_improvement_pct"]
        assert isinstance(improvement, float)
        return improvement

    assert validated_every(2) == pytest.approx(validated_every(1), rel=0.05)


def test_without_a_planned_length_the_run_is_assumed_to_go_on_as_long_again() -> None:
    records = history(decaying(40, rate=0.06, floor=0.3))

    diagnosis = analyze(records, MonitorPolicy(patience=7))

    assert diagnosis.projection is not None
    assert diagnosis.projection.evidence["epochs_left"] == 40
    assert diagnosis.projection.parameters["horizon"] == "assumed"
    assert diagnosis.projection.message.endswith("(no planned length: assumed to run as long again)")


def test_without_a_planned_length_a_young_run_is_given_patience_epochs_at_least() -> None:
    diagnosis = analyze(history(decaying(5)), MonitorPolicy(patience=7))

    assert diagnosis.projection is not None
    assert diagnosis.projection.evidence["epochs_left"] == 7


def test_min_improvement_pct_sets_what_is_worth_it() -> None:
    records = history(decaying(40, rate=0.06, floor=0.3))
    gain = analyze(records, total_epochs_planned=100).projection
    assert gain is not None
    projected = gain.evidence["projected_improvement_pct"]
    assert isinstance(projected, float)

    # one evaluation decides here: the threshold is set from the latest epoch's projection alone
    lenient = analyze(
        records, MonitorPolicy(min_improvement_pct=projected - 0.5, confirm_epochs=1), total_epochs_planned=100
    )
    strict = analyze(
        records, MonitorPolicy(min_improvement_pct=projected + 0.5, confirm_epochs=1), total_epochs_planned=100
    )

    assert lenient.recommendation.action is Action.CONTINUE
    assert strict.recommendation.action is Action.STOP
    assert [signal.rule for signal in strict.signals] == ["projected_improvement"]
    assert lenient.signals == []  # a projection that says continue is evidence, not a finding


@pytest.mark.parametrize("min_delta", [0.002, 0.005, 0.01])
def test_a_converged_run_creeping_on_within_min_delta_of_its_best_is_stopped(min_delta: float) -> None:
    """Keras' best moves only on an improvement larger than ``min_delta``: a curve that creeps on below it is not
    worth continuing for the distance it has already covered."""
    val = noisy([0.05 + 0.5 * math.exp(-e / 8) for e in range(120)], 0.0001)
    records = [EpochRecord(epoch=e, train_loss=v, val_loss=v) for e, v in enumerate(val)]
    policy = MonitorPolicy(min_delta=min_delta)

    stopped = replay(records, policy, total_epochs_planned=200)
    latest = analyze(records, policy, total_epochs_planned=200)

    assert stopped.stop_epoch is not None and stopped.stop_epoch < 119
    assert latest.recommendation.action is Action.STOP_AND_RESTORE_BEST
    projected = latest.projection
    assert projected is not None and projected.parameters["min_delta"] == min_delta
    gain = projected.evidence["projected_gain"]
    assert isinstance(gain, float) and gain <= min_delta
    improvement = projected.evidence["projected_improvement_pct"]
    assert isinstance(improvement, float) and improvement > DEFAULT.min_improvement_pct  # min_delta decides ...
    assert f"no more than min_delta ({min_delta:g})" in latest.recommendation.reason  # ... and the reason says so


def test_the_stop_reason_says_what_continuing_would_gain() -> None:
    """The reason reads like the issue's example: epochs left, the bound, what is needed, the best epoch."""
    val = [1.0 - 0.1 * e for e in range(6)] + [0.5 - 0.00005 * (e + 1) for e in range(24)]
    diagnosis = analyze(history(val), total_epochs_planned=60)

    assert diagnosis.recommendation.action is Action.STOP
    assert diagnosis.recommendation.reason == (
        "Stop: continuing 30 more epoch(s) is projected to improve val_loss by at most 0.019% (needs more than 1%); "
        "best 0.4988 at epoch 29"
    )


def test_a_stop_with_an_earlier_best_names_what_else_was_seen() -> None:
    val = [1.0 - 0.1 * e for e in range(6)] + [0.5 + 0.001 * (e % 2) for e in range(24)]
    diagnosis = analyze(history(val), total_epochs_planned=60)

    assert diagnosis.recommendation.action is Action.STOP_AND_RESTORE_BEST, diagnosis.recommendation.reason
    assert diagnosis.recommendation.restore_epoch == 5
    assert diagnosis.recommendation.reason.startswith(
        "Stop and use epoch 5: continuing 30 more epoch(s) is projected to improve val_loss by at most 0.014% "
        "(needs more than 1%); best 0.5 at epoch 5; val_loss has not improved by more than 0 for 24 epochs"
    )


def test_patience_rule_leaves_the_projection_out() -> None:
    records = history(decaying(40, rate=0.06, floor=0.3))

    diagnosis = analyze(records, MonitorPolicy(stop_rule="patience"), total_epochs_planned=45)

    assert diagnosis.projection is None
    assert diagnosis.recommendation.action is Action.CONTINUE


def test_divergence_still_outranks_the_projection() -> None:
    val = [*decaying(20), math.nan]
    diagnosis = analyze(history(val, [v * 0.9 for v in val]), total_epochs_planned=100)

    assert diagnosis.is_diverging is True
    assert diagnosis.recommendation.action is Action.STOP_AND_RESTORE_BEST, diagnosis.recommendation.reason
    assert "non-finite" in diagnosis.recommendation.reason


@pytest.mark.parametrize(
    ("values", "decay", "worth"),
    [
        pytest.param([1.0, 0.5, 0.5, 0.5, 0.5], 0.0, False, id="a-drop-then-flat-has-stopped-falling"),
        pytest.param([1.0, 0.9, 0.8, 0.7, 0.6, 0.5], 1.0, True, id="a-steady-fall-goes-on"),
        pytest.param([1.0, 0.6, 0.4, 0.3, 0.25, 0.22, 0.2, 0.19], 0.0076, True, id="a-slowing-fall-slows"),
    ],
)
def test_a_young_run_compares_the_halves_of_its_window(values: list[float], decay: float, worth: bool) -> None:
    """Fewer epochs than two windows: no earlier window to measure the slowing against."""
    projected = project(values, 50)
    assert projected is not None

    assert projected.decay == pytest.approx(decay, abs=0.001)
    assert (projected.improvement_pct > DEFAULT.min_improvement_pct) is worth


@pytest.mark.usefixtures("quarter_windows")
def test_a_fall_the_window_cannot_tell_from_noise_halves_each_window() -> None:
    """The same slight tilt, once under a zigzag far larger than it (not significant) and once clean."""
    tilt = [0.5 - 0.001 * e for e in range(40)]
    zigzag = [value + 0.05 * (-1) ** e for e, value in enumerate(tilt)]
    noisy_fall, clean_fall = project(zigzag, 100), project(tilt, 100)
    assert noisy_fall is not None and clean_fall is not None

    assert clean_fall.decay == pytest.approx(1.0)
    assert noisy_fall.decay <= 0.5
    assert clean_fall.trend_gain == pytest.approx(-clean_fall.slope * 100)  # every epoch left, at full pace
    assert noisy_fall.trend_gain < -noisy_fall.slope * 20  # about a window and a half's worth: halving each window


def rated(values: list[float], rates: list[float], epochs_left: int) -> Projection | None:
    points = curve(values)
    best = find_best(points, "min", 0.0)
    assert best is not None
    return projection(points, best, epochs_left, "planned", DEFAULT, "min", curve(rates))


@pytest.mark.usefixtures("quarter_windows")
def test_a_step_down_in_the_learning_rate_is_not_read_as_the_curve_flattening() -> None:
    """The fall per epoch shrinks tenfold between the windows because the learning rate did."""
    values = [1.0 - 0.01 * e for e in range(10)] + [0.9 - 0.001 * e for e in range(10)]
    rates = [0.1] * 10 + [0.01] * 10

    unaware, aware = project(values, 60), rated(values, rates, 60)
    assert unaware is not None and aware is not None

    assert unaware.decay == pytest.approx(0.1, rel=0.05)
    assert aware.rate_change == pytest.approx(10.0)
    assert aware.decay == pytest.approx(1.0)
    assert aware.rate_pace == 1.0  # the rate is flat since the step
    assert aware.trend_gain > 5 * unaware.trend_gain


@pytest.mark.parametrize("epochs_since_step", [1, 2, 3])
def test_just_after_a_step_the_rate_is_not_read_as_falling_on(epochs_since_step: int) -> None:
    """A step (0.1 to 0.01, then held) within the latest epochs is a one-off, not a ten-fold fall every few epochs."""
    values = [1.0 - 0.001 * e for e in range(20)]
    rates = [0.1] * (20 - epochs_since_step) + [0.01] * epochs_since_step

    aware = rated(values, rates, 100)
    assert aware is not None

    assert aware.rate_pace == 1.0


def test_a_step_schedule_is_not_stopped_as_its_loss_takes_the_fall_the_step_brings() -> None:
    """30/60/90 step decay (ResNet-style): each step is followed by the run's biggest falls."""

    def loss(epoch: int) -> float:
        if epoch < 30:
            return 0.8 + 1.2 * math.exp(-epoch / 5)
        if epoch < 60:
            return 0.45 + 0.35 * math.exp(-(epoch - 30) / 3)
        return 0.35 + 0.10 * math.exp(-(epoch - 60) / 3)

    records = [
        EpochRecord(epoch=e, train_loss=0.9 * loss(e), val_loss=loss(e), learning_rate=0.1 * 0.1 ** (e // 30))
        for e in range(90)
    ]

    assert replay(records, total_epochs_planned=90).stop_epoch == 89  # at its planned end, with its final best


def test_a_learning_rate_still_falling_goes_on_slowing_the_fall() -> None:
    """A steady fall under a rate that loses 10% an epoch: the epochs left add up to about nine at today's pace."""
    values = [1.0 - 0.001 * e for e in range(20)]
    rates = [0.1 * 0.9**e for e in range(20)]

    aware = rated(values, rates, 100)
    assert aware is not None

    assert aware.rate_pace == pytest.approx(0.9)
    assert aware.trend_gain == pytest.approx(-aware.slope * 0.9 * (1 - 0.9**100) / 0.1, rel=1e-6)


def test_after_a_warm_restart_the_learning_rate_s_fall_is_not_carried_forward() -> None:
    values = [1.0 - 0.001 * e for e in range(20)]
    rates = [0.1 * 0.9**e for e in range(8)] + [0.1 * 0.9**e for e in range(12)]  # raised again at epoch 8

    aware = rated(values, rates, 100)
    assert aware is not None

    assert aware.rate_pace == 1.0


def test_a_warm_up_from_zero_is_not_a_restart() -> None:
    values = [1.0 - 0.001 * e for e in range(20)]
    rates = [0.0, 0.05, 0.1] + [0.1 * 0.9**e for e in range(17)]

    aware = rated(values, rates, 100)
    assert aware is not None

    assert aware.rate_pace == pytest.approx(0.9)


def test_a_learning_rate_that_has_reached_zero_ends_the_fall() -> None:
    values = [1.0 - 0.001 * e for e in range(20)]
    rates = [0.1 * (1 - e / 19) for e in range(20)]  # a linear decay to zero at the latest epoch

    aware = rated(values, rates, 100)
    assert aware is not None

    assert aware.rate_pace == 0.0
    assert aware.trend_gain == 0.0


@pytest.mark.parametrize(
    "rates",
    [
        pytest.param([0.0] * 20, id="zero"),
        pytest.param([0.1] * 10 + [math.nan] * 10, id="not-finite"),
        pytest.param([0.1] * 5, id="only-some-epochs"),
    ],
)
def test_a_learning_rate_that_cannot_be_read_changes_nothing(rates: list[float]) -> None:
    values = [1.0 - 0.01 * e for e in range(10)] + [0.9 - 0.001 * e for e in range(10)]

    aware, unaware = rated(values, rates, 60), project(values, 60)

    assert aware == unaware


@pytest.mark.usefixtures("quarter_windows")
def test_the_diagnosis_reads_the_learning_rate_the_run_reports() -> None:
    values = [1.0 - 0.01 * e for e in range(10)] + [0.9 - 0.001 * e for e in range(10)]
    records = [
        EpochRecord(epoch=e, train_loss=v * 0.9, val_loss=v, learning_rate=0.1 if e < 10 else 0.01)
        for e, v in enumerate(values)
    ]

    projected = analyze(records, total_epochs_planned=80).projection
    assert projected is not None
    assert projected.evidence["learning_rate_change"] == pytest.approx(10.0)
    assert projected.evidence["learning_rate_pace"] == 1.0


# --- A fraction's ceiling --------------------------------------------------------------------------------------

ACCURACY = MonitorPolicy(monitor="val_accuracy")


def test_an_accuracy_is_never_projected_past_1() -> None:
    climbing = [min(0.99, 0.5 + 0.03 * epoch) for epoch in range(15)]  # still climbing steeply at 0.92

    projected = project(climbing, 100, ACCURACY, "max")

    assert projected is not None
    assert projected.projected_best == 1.0
    assert projected.improvement_pct == pytest.approx((1.0 - max(climbing)) / max(climbing) * 100)


def test_an_accuracy_that_has_reached_1_is_stopped_however_noisy_it_is() -> None:
    # a small validation set that has just reached 1: its climb alone would be extended past it
    values = [0.75, 0.8, 0.85, 0.88, 0.91, 0.93, 0.92, 0.95, 0.94, 0.97, 0.96, 1.0, 0.98, 1.0]
    records = [EpochRecord(epoch=e, train_loss=1.0 / (e + 1), val_accuracy=v) for e, v in enumerate(values)]
    noise_alone = project(values, 100, ACCURACY.model_copy(update={"monitor": "val_score"}), "max")
    assert noise_alone is not None and noise_alone.improvement_pct > ACCURACY.min_improvement_pct

    diagnosis = analyze(records, ACCURACY, total_epochs_planned=100)

    assert diagnosis.recommendation.action is Action.STOP_AND_RESTORE_BEST, diagnosis.recommendation.reason
    assert diagnosis.recommendation.restore_epoch == 11
    assert diagnosis.projection is not None
    assert diagnosis.projection.evidence["projected_improvement_pct"] == 0


def test_an_accuracy_reported_in_percent_has_no_ceiling_of_1() -> None:
    climbing = [50.0 + 3.0 * epoch for epoch in range(15)]

    projected = project(climbing, 100, ACCURACY, "max")

    assert projected is not None
    assert projected.projected_best > max(climbing)


def test_a_loss_or_a_custom_score_has_no_ceiling() -> None:
    rising = [0.5 + 0.03 * epoch for epoch in range(15)]

    for policy in (MonitorPolicy(monitor="reward"), MonitorPolicy(monitor="val_loss", mode="max")):
        projected = project(rising, 100, policy, "max")
        assert projected is not None
        assert projected.projected_best > 1.0, policy.monitor
