"""A score whose projected gain is only luck: when neither it nor the validation loss has improved for 1.5 times
``patience`` evaluations, the projection's "continue" is overruled, and only then.

Checked through :func:`analyze` and :func:`replay` with the classification task's policy (``val_accuracy``, max
mode), the way a Hugging Face or Keras run meets it.
"""

from __future__ import annotations

import pytest

from trainops.core import Action, EpochRecord, MonitorPolicy, TaskType, analyze, replay
from trainops.core.analysis import STALL_BACKED_PATIENCE
from trainops.core.metric_definitions import policy_for_task

PLANNED = 100
BEST_EPOCH = 5


def flipping_accuracy(epochs: int) -> list[float]:
    """Climbs to 0.9 by epoch 5, then flips between 0.8 and 0.9 (a model that predicts one class, then the
    other): a wide spread, so the projection's luck alone buys a new best."""
    climb = [0.5, 0.6, 0.7, 0.75, 0.8, 0.9]
    return [*climb, *(0.8 if epoch % 2 else 0.9 for epoch in range(epochs - len(climb)))][:epochs]


def settled_loss(epochs: int) -> list[float]:
    """Falls to its best at epoch 5, then wobbles a little above it: the model has stopped improving."""
    fall = [1.2, 0.9, 0.7, 0.55, 0.45, 0.4]
    return [*fall, *(0.43 + 0.01 * (epoch % 3) for epoch in range(epochs - len(fall)))][:epochs]


def falling_loss(epochs: int) -> list[float]:
    """Still falling steadily at every epoch: the model is still getting better on the validation data."""
    return [1.2 * 0.97**epoch for epoch in range(epochs)]


def classification(accuracy: list[float], val_loss: list[float] | None) -> list[EpochRecord]:
    return [
        EpochRecord(
            epoch=epoch,
            train_loss=0.5 * 0.97**epoch,
            val_loss=None if val_loss is None else val_loss[epoch],
            val_accuracy=score,
        )
        for epoch, score in enumerate(accuracy)
    ]


def judged(records: list[EpochRecord], **policy: object) -> MonitorPolicy:
    return policy_for_task(MonitorPolicy(**policy), TaskType.TEXT_CLASSIFICATION, records)


STALLED = BEST_EPOCH + 1 + round(STALL_BACKED_PATIENCE * MonitorPolicy().patience)
"""The epochs of a run whose score and loss are both exactly 1.5 x patience evaluations past their best."""


def test_the_val_loss_evidence_is_rounded_for_reading_as_every_other_number() -> None:
    thirds = [value / 3 for value in settled_loss(STALLED + 10)]  # a best of 0.1333...: 16 digits unrounded
    records = classification(flipping_accuracy(STALLED + 10), thirds)

    projection = analyze(records, judged(records), total_epochs_planned=PLANNED).projection

    assert projection is not None and projection.evidence["stall_backed"] is True
    assert projection.evidence["val_loss_best_value"] == 0.133333


def test_a_lucky_gain_the_loss_does_not_back_is_overruled() -> None:
    records = classification(flipping_accuracy(STALLED + 10), settled_loss(STALLED + 10))

    diagnosis = analyze(records, judged(records), total_epochs_planned=PLANNED)

    assert diagnosis.monitor == "val_accuracy"
    projection = diagnosis.projection
    assert projection is not None
    assert projection.evidence["worth_continuing"] is True  # the projection alone would go on
    assert projection.evidence["noise_gain"] > projection.evidence["trend_gain"]  # on luck
    assert projection.severity == "warning"
    assert projection.evidence["stall_backed"] is True
    assert projection.evidence["val_loss_best_epoch"] == BEST_EPOCH
    assert projection.evidence["val_loss_evaluations_since_best"] == STALLED + 10 - BEST_EPOCH - 1
    assert diagnosis.recommendation.action is Action.STOP_AND_RESTORE_BEST
    assert diagnosis.recommendation.restore_epoch == BEST_EPOCH
    reason = diagnosis.recommendation.reason
    assert "but val_accuracy has not improved for 25 evaluations, nor val_loss for 25" in reason
    assert reason.endswith("a gain the loss does not back is luck")  # the stall it names is not named twice


def test_a_replay_stops_once_both_have_stalled_for_one_and_a_half_patience() -> None:
    records = classification(flipping_accuracy(60), settled_loss(60))

    result = replay(records, judged(records), total_epochs_planned=PLANNED)

    assert result.stop_epoch == STALLED - 1  # the first epoch at which both are 15 evaluations past their best
    assert result.restore_epoch == BEST_EPOCH


def test_a_loss_still_falling_keeps_the_run_going() -> None:
    records = classification(flipping_accuracy(40), falling_loss(40))

    diagnosis = analyze(records, judged(records), total_epochs_planned=PLANNED)

    assert diagnosis.recommendation.action is Action.CONTINUE
    assert diagnosis.projection is not None
    assert "stall_backed" not in diagnosis.projection.evidence


@pytest.mark.parametrize("epochs", [STALLED - 1, STALLED - 3])
def test_a_stall_shorter_than_one_and_a_half_patience_is_left_to_the_projection(epochs: int) -> None:
    records = classification(flipping_accuracy(epochs), settled_loss(epochs))

    diagnosis = analyze(records, judged(records), total_epochs_planned=PLANNED)

    assert diagnosis.recommendation.action is Action.CONTINUE
    assert diagnosis.projection is not None
    assert diagnosis.projection.evidence["worth_continuing"] is True


def test_the_stall_follows_the_policys_patience() -> None:
    records = classification(flipping_accuracy(STALLED + 10), settled_loss(STALLED + 10))

    diagnosis = analyze(records, judged(records, patience=30), total_epochs_planned=PLANNED)

    assert diagnosis.recommendation.action is Action.CONTINUE  # 45 evaluations are asked for, 25 have passed


def test_a_run_without_a_validation_loss_is_left_to_the_projection() -> None:
    records = classification(flipping_accuracy(STALLED + 10), None)

    diagnosis = analyze(records, judged(records), total_epochs_planned=PLANNED)

    assert diagnosis.recommendation.action is Action.CONTINUE
    assert diagnosis.projection is not None
    assert "stall_backed" not in diagnosis.projection.evidence


def test_a_run_judged_on_its_loss_is_never_overruled_by_it() -> None:
    # the same stall, with the loss itself the monitored metric: only the projection judges it
    noisy = [1.2, 0.9, 0.7, 0.55, 0.45, 0.3, *(0.3 + 0.2 * (epoch % 2) for epoch in range(STALLED + 4))]
    records = [EpochRecord(epoch=epoch, train_loss=0.5, val_loss=value) for epoch, value in enumerate(noisy)]

    diagnosis = analyze(records, MonitorPolicy(), total_epochs_planned=PLANNED)

    assert diagnosis.monitor == "val_loss"
    assert diagnosis.projection is not None
    assert "stall_backed" not in diagnosis.projection.evidence
