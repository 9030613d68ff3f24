"""A metric that has not left its first value (a detector's mAP50 at 0 before it finds its first box) holds the
projection's stop while the training loss is still moving, and only then.

Checked through :func:`analyze` and :func:`replay` with the detection task's policy (``mAP50``, max mode), the way
a YOLO run meets it.
"""

from __future__ import annotations

import math

import pytest

from trainops.core import Action, EpochRecord, MonitorPolicy, TaskType, analyze, replay
from trainops.core.metric_definitions import policy_for_task
from trainops.core.rules import trend, unmoved

PLANNED = 40


def detection(train_loss: list[float], map50: list[float]) -> list[EpochRecord]:
    return [
        EpochRecord(epoch=epoch, train_loss=loss, metrics={"mAP50": score})
        for epoch, (loss, score) in enumerate(zip(train_loss, map50, strict=True))
    ]


def judged(records: list[EpochRecord]) -> MonitorPolicy:
    return policy_for_task(MonitorPolicy(), TaskType.OBJECT_DETECTION, records)


FALLING = [8.0 * 0.95**epoch for epoch in range(20)]
"""A training loss still falling steadily: the model is learning."""
FLAT = [3.0 + 0.4 * math.sin(1.7 * epoch) for epoch in range(20)]
"""A training loss that only wobbles: nothing is being learned."""
RISING = [1.0 + 0.5 * epoch for epoch in range(20)]
ZEROS = [0.0] * 20


def test_a_metric_still_at_its_first_value_while_the_training_loss_falls_is_held() -> None:
    records = detection(FALLING, ZEROS)

    diagnosis = analyze(records, judged(records), total_epochs_planned=PLANNED)

    assert diagnosis.monitor == "mAP50"
    assert diagnosis.recommendation.action is Action.CONTINUE
    projection = diagnosis.projection
    assert projection is not None
    assert projection.severity == "info"
    assert projection.evidence["worth_continuing"] is False  # the projection alone would stop
    assert projection.evidence["held_unmoved_since_epoch"] == 0
    assert projection.evidence["train_loss_trend"] == "improving"
    assert "held: mAP50 has stayed at 0 since epoch 0 while train_loss is improving" in diagnosis.recommendation.reason


def test_a_rising_training_loss_is_moving_too() -> None:
    # Ultralytics' warm-up: the summed loss climbs for the first epochs while mAP50 is still 0
    records = detection(RISING, ZEROS)

    diagnosis = analyze(records, judged(records), total_epochs_planned=PLANNED)

    assert diagnosis.projection is not None
    assert diagnosis.projection.evidence["train_loss_trend"] == "worsening"


def test_a_metric_that_never_moves_with_a_flat_training_loss_is_still_stopped() -> None:
    records = detection(FLAT, ZEROS)

    diagnosis = analyze(records, judged(records), total_epochs_planned=PLANNED)

    assert diagnosis.recommendation.action is not Action.CONTINUE
    assert diagnosis.projection is not None
    assert "held_unmoved_since_epoch" not in diagnosis.projection.evidence


def test_a_metric_unmoved_at_the_best_it_can_be_is_not_held() -> None:
    # a perfect accuracy from the first epoch: there is nothing to wait for
    records = [EpochRecord(epoch=e, train_loss=loss, val_accuracy=1.0) for e, loss in enumerate(FALLING)]
    policy = MonitorPolicy(monitor="val_accuracy")

    diagnosis = analyze(records, policy, total_epochs_planned=PLANNED)

    assert diagnosis.recommendation.action is not Action.CONTINUE
    assert diagnosis.projection is not None
    assert "held_unmoved_since_epoch" not in diagnosis.projection.evidence


def test_once_the_metric_moves_the_projection_judges_it_again() -> None:
    # mAP50 found a box at epoch 5 and has sat well below that best since: nothing holds that stop
    scores = [0.0] * 5 + [0.3] + [0.05] * 14
    records = detection(FALLING, scores)

    diagnosis = analyze(records, judged(records), total_epochs_planned=PLANNED)

    assert diagnosis.recommendation.action is Action.STOP_AND_RESTORE_BEST
    assert diagnosis.projection is not None
    assert "held_unmoved_since_epoch" not in diagnosis.projection.evidence


def test_a_replayed_run_waits_out_the_zero_stretch_and_stops_after_it() -> None:
    # 15 epochs at 0, a rise to 0.9, then flat: the stop comes after the rise, never during the zeros
    scores = [0.0] * 15 + [0.3, 0.6, 0.8, 0.9] + [0.9] * 21
    train = [8.0 * 0.95**epoch for epoch in range(40)]
    records = detection(train, scores)

    result = replay(records, judged(records), total_epochs_planned=60)

    assert result.stop_epoch is not None and result.stop_epoch > 18
    without_the_hold = detection([3.0 + 0.4 * math.sin(1.7 * epoch) for epoch in range(40)], scores)
    stopped = replay(without_the_hold, judged(without_the_hold), total_epochs_planned=60).stop_epoch
    assert stopped is not None and stopped < 15  # the same zeros with a flat training loss: stopped in them


def test_a_fraction_that_moved_by_less_than_min_improvement_pct_of_its_range_has_not_moved() -> None:
    # a first box found and lost: 0.4% of mAP50's range is not the run taking off
    records = detection(FALLING, [0.0, 0.0, 0.004, 0.0, 0.002] + [0.0] * 15)

    diagnosis = analyze(records, judged(records), total_epochs_planned=PLANNED)

    assert diagnosis.recommendation.action is Action.CONTINUE
    assert diagnosis.projection is not None
    assert diagnosis.projection.evidence["held_unmoved_since_epoch"] == 0


def test_a_training_loss_that_rose_and_fell_within_the_window_is_still_moving() -> None:
    # a line through the last ten epochs, a peak in the middle, is flat; the fall since the peak is not
    train = [2.0 + 0.5 * epoch for epoch in range(15)] + [9.0 - 0.5 * (epoch + 1) for epoch in range(5)]
    records = detection(train, ZEROS)
    assert trend("train_loss", list(enumerate(train)), MonitorPolicy(), "min").direction == "flat"

    diagnosis = analyze(records, judged(records), total_epochs_planned=PLANNED)

    assert diagnosis.recommendation.action is Action.CONTINUE, diagnosis.recommendation.reason
    assert diagnosis.projection is not None
    assert diagnosis.projection.evidence["train_loss_trend"] == "improving"


@pytest.mark.parametrize(
    ("fall_per_epoch", "held"),
    [
        pytest.param(0.0008, True, id="a-model-at-chance-still-learning"),  # 0.7% over ten epochs: flat to a person
        pytest.param(0.00005, False, id="a-tilt-too-small-to-be-learning"),  # 0.04% over ten epochs
    ],
)
def test_a_slow_steady_fall_of_the_training_loss_is_the_model_still_changing(fall_per_epoch: float, held: bool) -> None:
    # a text classifier at the majority class's share (7/18), its cross-entropy near ln 3 and falling slowly:
    # such runs separate the classes tens of epochs later
    records = [
        EpochRecord(epoch=e, train_loss=1.0877 - fall_per_epoch * e + 0.0002 * (-1) ** e, val_accuracy=7 / 18)
        for e in range(25)
    ]
    policy = policy_for_task(MonitorPolicy(), TaskType.TEXT_CLASSIFICATION, records)
    assert trend("train_loss", [(r.epoch, r.train_loss) for r in records], policy, "min").direction == "flat"

    diagnosis = analyze(records, policy, total_epochs_planned=100)

    assert diagnosis.projection is not None
    assert ("held_unmoved_since_epoch" in diagnosis.projection.evidence) is held
    assert (diagnosis.recommendation.action is Action.CONTINUE) is held


def test_too_few_epochs_of_training_loss_to_tell_hold_the_stop() -> None:
    records = detection(FLAT[:6], ZEROS[:6])

    diagnosis = analyze(records, judged(records), total_epochs_planned=PLANNED)

    assert diagnosis.recommendation.action is Action.CONTINUE
    assert "only 6 epoch(s) of train_loss are in" in diagnosis.recommendation.reason


def test_without_a_training_loss_nothing_holds_the_stop() -> None:
    records = [EpochRecord(epoch=epoch, metrics={"mAP50": 0.0}) for epoch in range(20)]

    diagnosis = analyze(records, judged(records), total_epochs_planned=PLANNED)

    assert diagnosis.recommendation.action is not Action.CONTINUE
    assert diagnosis.projection is not None
    assert "held_unmoved_since_epoch" not in diagnosis.projection.evidence


def test_a_rising_training_loss_is_no_divergence_until_the_metric_moves() -> None:
    # Ultralytics' summed loss climbs while mAP50 is still 0; the same climb after mAP50 took off is divergence
    still = detection(RISING, ZEROS)
    moved = detection(RISING, [0.0] * 10 + [0.2] * 10)

    held = analyze(still, judged(still), total_epochs_planned=PLANNED)
    diverged = analyze(moved, judged(moved), total_epochs_planned=PLANNED)

    assert "train_loss_rising" not in {signal.rule for signal in held.signals}
    assert held.recommendation.action is Action.CONTINUE
    assert "train_loss is worsening" in held.recommendation.reason
    assert diverged.is_diverging
    assert "train_loss_rising" in {signal.rule for signal in diverged.signals}


@pytest.mark.parametrize(
    ("points", "expected"),
    [
        ([(0, 0.0), (1, 0.0), (2, 0.0)], (0, 0.0)),
        ([(3, 0.5), (4, math.nan), (5, 0.5)], (3, 0.5)),
        ([(0, 0.0), (1, 0.0), (2, 1e-6)], None),  # moved, if only a little
        ([(0, 0.0)], None),  # one point says nothing
        ([], None),
    ],
)
def test_unmoved(points: list[tuple[int, float]], expected: tuple[int, float] | None) -> None:
    assert unmoved(points) == expected
