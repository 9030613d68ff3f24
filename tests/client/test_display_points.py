"""get_metrics(points=N) and events(points=N) on both transports: a long history thinned for display, the stored
history and the diagnosis whole."""

from __future__ import annotations

import pytest

from trainops import EpochRecord, InvalidInputError, TrainOps
from trainops.schemas.events import DiagnosisEvent, EpochsEvent


def long_run(ops: TrainOps, epochs: int = 400) -> str:
    operation_id = ops.create_operation(total_epochs=epochs).operation_id
    records = [
        EpochRecord(
            epoch=epoch,
            train_loss=1 / (epoch + 1),
            val_loss=9.0 if epoch == 123 else 1 / (epoch + 1) + 0.3,
            learning_rate=0.01,
            f1=0.5 + epoch / 1000,
        )
        for epoch in range(epochs)
    ]
    ops.add_epochs(operation_id, records)
    return operation_id


def test_get_metrics_thins_for_display_and_judges_the_whole_history(ops: TrainOps) -> None:
    operation_id = long_run(ops)

    whole = ops.get_metrics(operation_id).metrics
    thin = ops.get_metrics(operation_id, points=40).metrics

    kept = [record.epoch for record in thin.epochs]
    assert (whole.thinned, whole.epochs_stored, len(whole.epochs)) == (False, 400, 400)
    assert (thin.thinned, thin.epochs_stored) == (True, 400)
    assert len(kept) <= 40 and kept == sorted(kept)
    assert whole.best_epoch is not None and {0, 123, 399, whole.best_epoch} <= set(kept)
    assert all(record == whole.epochs[record.epoch] for record in thin.epochs)  # whole records, as stored
    assert thin.recommendation == whole.recommendation and thin.epochs_analyzed == 400

    newer = ops.get_metrics(operation_id, since_epoch=349, points=10).metrics
    assert newer.thinned and len(newer.epochs) <= 10 and newer.epochs[0].epoch == 350
    assert ops.get_metrics(operation_id, points=400).metrics.thinned is False

    # the same poll twice (over HTTP, the second is a 304 on the cached answer)
    assert ops.get_metrics(operation_id, points=40).metrics.epochs == thin.epochs


@pytest.mark.parametrize("points", [9, 100_001])
def test_points_out_of_range_are_refused(ops: TrainOps, points: int) -> None:
    operation_id = long_run(ops, 20)
    with pytest.raises(InvalidInputError, match="points"):
        ops.get_metrics(operation_id, points=points)
    with pytest.raises(InvalidInputError, match="points"):
        next(ops.events(operation_id, points=points))


def test_events_thin_the_catch_up_of_a_long_history(ops: TrainOps) -> None:
    operation_id = long_run(ops)
    ops.finish_operation(operation_id)

    events = list(ops.events(operation_id, points=50))

    catch_up = events[0]
    final = events[-1]
    assert isinstance(catch_up, EpochsEvent) and isinstance(final, DiagnosisEvent)
    assert final.diagnosis is not None and final.diagnosis.epochs_analyzed == 400
    kept = [record.epoch for record in catch_up.epochs]
    assert catch_up.thinned and len(kept) <= 50 and {0, 123, 399, final.diagnosis.best_epoch} <= set(kept)
    whole = next(iter(ops.events(operation_id)))
    assert isinstance(whole, EpochsEvent) and not whole.thinned and len(whole.epochs) == 400
    assert whole.id == catch_up.id  # the same cursor: resuming from either goes on alike
