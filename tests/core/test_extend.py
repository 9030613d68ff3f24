"""The diagnosis' forecast, and a run still improving at its planned end told how much longer it needs
(``recommendation.extend_by``) instead of "stop: reached its planned length".

Table-driven on curves whose future is known: a fall still steep at the planned end, one that has levelled off,
an accuracy still climbing, a run that diverged on its last epoch.
"""

from __future__ import annotations

import math

import pytest

from trainops.core import Action, EpochRecord, MonitorPolicy, analyze
from trainops.core.analysis import extend
from trainops.core.forecast import forecast
from trainops.core.policy import Mode
from trainops.core.replay import replay
from trainops.core.rules import Point


def falling(n: int, rate: float, floor: float = 0.2) -> list[float]:
    """``floor + e^(-rate * epoch)``: a loss falling to ``floor``, slower every epoch."""
    return [floor + math.exp(-rate * epoch) for epoch in range(n)]


def climbing(n: int, rate: float, ceiling: float = 0.9) -> list[float]:
    """An accuracy climbing to ``ceiling``."""
    return [ceiling - 0.5 * math.exp(-rate * epoch) for epoch in range(n)]


def history(values: list[float], monitor: str = "val_loss") -> list[EpochRecord]:
    return [EpochRecord.model_validate({"epoch": epoch, monitor: value}) for epoch, value in enumerate(values)]


def points(values: list[float]) -> list[Point]:
    return list(enumerate(values))


def gain_pct(values: list[float], mode: Mode, epochs_left: int) -> float:
    """What the forecast's median over ``epochs_left`` more epochs gains on the best so far, in percent of it."""
    best = min(values) if mode == "min" else max(values)
    projected = forecast(points(values), mode=mode, epochs_left=epochs_left)
    assert projected is not None
    sign = 1.0 if mode == "min" else -1.0
    return sign * (best - projected.best_value) / abs(best) * 100.0


# -- the forecast in the diagnosis ----------------------------------------------------------------------------------


def test_the_diagnosis_forecasts_the_best_by_the_planned_end() -> None:
    values = falling(40, rate=0.05)

    diagnosis = analyze(history(values), total_epochs_planned=100)

    projected = diagnosis.forecast
    assert projected == forecast(points(values), mode="min", epochs_left=60)
    assert projected is not None and projected.method == "ensemble"
    assert diagnosis.best_value is not None
    assert projected.best_value_q20 <= projected.best_value <= projected.best_value_q80 < diagnosis.best_value
    assert 39 < projected.best_epoch <= 99


def test_a_max_metric_is_forecast_upwards() -> None:
    values = climbing(40, rate=0.05)

    diagnosis = analyze(history(values, "val_accuracy"), MonitorPolicy(monitor="val_accuracy"), total_epochs_planned=80)

    projected = diagnosis.forecast
    assert projected is not None and diagnosis.best_value is not None
    assert diagnosis.best_value < projected.best_value_q20 <= projected.best_value <= projected.best_value_q80 <= 1.0


def test_without_a_planned_length_the_forecast_looks_as_far_again_as_the_run_has_gone() -> None:
    diagnosis = analyze(history(falling(40, rate=0.05)))

    assert diagnosis.forecast is not None
    assert diagnosis.forecast.evidence["epochs_left"] == 40
    assert diagnosis.forecast.evidence["epochs_left"] == diagnosis.projection.evidence["epochs_left"]  # type: ignore[union-attr]


@pytest.mark.parametrize("values", [[], [0.5, 0.4, 0.3], [math.nan, 0.5, 0.4, math.inf, 0.3]])
def test_below_four_finite_values_there_is_no_forecast(values: list[float]) -> None:
    assert analyze(history(values), total_epochs_planned=10).forecast is None


def test_the_forecast_can_be_left_out_and_changes_nothing_else() -> None:
    records = history(falling(30, rate=0.05))

    whole = analyze(records, total_epochs_planned=50)
    without = analyze(records, total_epochs_planned=50, with_forecast=False)

    assert without.forecast is None
    assert without == whole.model_copy(update={"forecast": None})


# -- extend_by ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("stop_rule", ["projection", "patience"])
def test_a_run_still_improving_at_its_planned_end_is_told_how_much_longer_it_needs(stop_rule: str) -> None:
    values = falling(40, rate=0.04)
    policy = MonitorPolicy.model_validate({"stop_rule": stop_rule})

    diagnosis = analyze(history(values), policy, total_epochs_planned=40)

    recommendation = diagnosis.recommendation
    assert recommendation.action is Action.CONTINUE
    epochs = recommendation.extend_by
    assert epochs is not None and epochs >= 1
    # the fewest epochs whose forecast (its median) gains more than min_improvement_pct
    assert gain_pct(values, "min", epochs) > policy.min_improvement_pct
    assert epochs == 1 or gain_pct(values, "min", epochs - 1) <= policy.min_improvement_pct
    assert recommendation.extend_forecast == forecast(points(values), mode="min", epochs_left=epochs)
    assert recommendation.reason.startswith("Continue past the planned end: val_loss is still improving at epoch 39")
    assert f"{epochs} more epoch(s) past the planned end" in recommendation.reason
    if stop_rule == "projection":  # the projection says so too, as information rather than a reason to stop
        assert diagnosis.projection is not None and diagnosis.projection.severity == "info"
        assert diagnosis.projection.evidence["extend_by"] == epochs
        assert diagnosis.projection.message.startswith("the run has reached its planned length")
        assert diagnosis.signals == []


def test_an_accuracy_still_climbing_at_its_end_is_extended_too() -> None:
    values = climbing(40, rate=0.04)

    diagnosis = analyze(history(values, "val_accuracy"), MonitorPolicy(monitor="val_accuracy"), total_epochs_planned=40)

    epochs = diagnosis.recommendation.extend_by
    assert epochs is not None
    assert gain_pct(values, "max", epochs) > 1.0


@pytest.mark.parametrize(
    ("values", "policy", "why"),
    [
        pytest.param(falling(200, rate=0.08), MonitorPolicy(), "levelled off", id="converged"),
        pytest.param(falling(40, rate=0.04), MonitorPolicy(min_improvement_pct=60), "no gain that large", id="strict"),
    ],
)
def test_a_run_with_nothing_worth_gaining_past_its_end_is_told_to_stop(
    values: list[float], policy: MonitorPolicy, why: str
) -> None:
    diagnosis = analyze(history(values), policy, total_epochs_planned=len(values))

    recommendation = diagnosis.recommendation
    assert recommendation.action is not Action.CONTINUE, why
    assert (recommendation.extend_by, recommendation.extend_forecast) == (None, None)
    assert "the run has reached its planned length" in recommendation.reason


def test_a_run_that_diverged_on_its_last_epoch_is_never_extended() -> None:
    values = [*falling(39, rate=0.04), math.nan]

    recommendation = analyze(history(values), total_epochs_planned=40).recommendation

    assert recommendation.action is Action.STOP_AND_RESTORE_BEST
    assert recommendation.extend_by is None


def test_a_run_with_epochs_left_is_never_extended() -> None:
    recommendation = analyze(history(falling(40, rate=0.04)), total_epochs_planned=41).recommendation

    assert recommendation.extend_by is None


def test_an_extension_is_sought_no_further_than_as_long_again_as_the_run() -> None:
    values = falling(40, rate=0.04)
    best = min(values)
    limit = 40
    # just too demanding for as many epochs again: no extension, where a longer search would have found one
    needed = gain_pct(values, "min", limit)
    assert extend(points(values), best, MonitorPolicy(min_improvement_pct=needed), "min", limit) is None
    found = extend(points(values), best, MonitorPolicy(min_improvement_pct=needed * 0.99), "min", limit)
    assert found is not None and found[0] <= limit


def test_a_replay_ends_on_the_extension_rather_than_a_stop() -> None:
    result = replay(history(falling(40, rate=0.04)), total_epochs_planned=40)

    assert result.stop_epoch is None
    assert result.steps[-1].reason.startswith("Continue past the planned end")
