"""The pure part of the events stream: cursors and which events a change gives."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from trainops.core.diagnosis import Action, Diagnosis, Recommendation, Trend, TrendDirection
from trainops.core.epoch import EpochRecord
from trainops.core.operation import Operation, OperationStatus
from trainops.core.progress import ProgressState
from trainops.errors import InvalidInputError
from trainops.schemas.events import EpochsEvent
from trainops.service.events import Cursor, derive_events

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def operation(status: OperationStatus = OperationStatus.RUNNING, message: str = "Epoch 1/3") -> Operation:
    return Operation(
        operation_id="op_training_20260101_000000_00000000",
        operation_type="training",
        status=status,
        created_at=NOW,
        updated_at=NOW,
        progress=ProgressState(message=message),
    )


def diagnosis(action: Action = Action.CONTINUE, reason: str = "improving") -> Diagnosis:
    return Diagnosis(
        monitor="val_loss",
        mode="min",
        trend=Trend(metric="val_loss", direction=TrendDirection.IMPROVING, window=5),
        recommendation=Recommendation(action=action, reason=reason),
        epochs_analyzed=1,
    )


@pytest.mark.parametrize(
    "cursor",
    [Cursor(), Cursor(12, "3fa2c1b0", "b0d9e17c", "7c4e2219"), Cursor(7, "a", "b", "c", final=True)],
)
def test_a_cursor_reads_back_from_its_id(cursor: Cursor) -> None:
    assert Cursor.decode(cursor.encode()) == cursor


@pytest.mark.parametrize("text", ["x", "1.a.b", "1.a.b.c.later", "-2.a.b.c", "1e3.a.b.c", "1.a.b.c.end.more"])
def test_an_id_the_stream_never_sent_is_refused(text: str) -> None:
    with pytest.raises(InvalidInputError, match="is not an id of this stream"):
        Cursor.decode(text)


def test_a_change_gives_only_what_changed_in_order() -> None:
    epochs = [EpochRecord(epoch=0, val_loss=1.0)]
    first, cursor = derive_events(operation(), 3, epochs, diagnosis(), Cursor())
    assert [event.event for event in first] == ["epochs", "progress", "recommendation", "status"]
    assert [event.id for event in first][-1] == cursor.encode() and cursor.version == 3

    # same state, a reworded reason: nothing new
    again, same = derive_events(operation(), 3, [], diagnosis(reason="improving, 2 epochs"), cursor)
    assert again == [] and same == cursor

    # a new epoch and new progress; the recommendation stops; then the end
    more, cursor = derive_events(
        operation(message="Epoch 2/3"), 5, [EpochRecord(epoch=1, val_loss=2.0)], diagnosis(Action.STOP), cursor
    )
    assert [event.event for event in more] == ["epochs", "progress", "recommendation"]
    end, cursor = derive_events(operation(OperationStatus.COMPLETED, "Epoch 2/3"), 6, [], None, cursor)
    assert [event.event for event in end] == ["status", "diagnosis"] and cursor.final
    assert derive_events(operation(OperationStatus.COMPLETED, "Epoch 2/3"), 6, [], None, cursor)[0] == []


def test_points_thins_only_an_epochs_event_longer_than_it_and_keeps_the_cursor() -> None:
    history = [EpochRecord(epoch=e, val_loss=1.0 if e != 33 else 5.0) for e in range(100)]
    judged = diagnosis().model_copy(update={"best_epoch": 61})

    whole, cursor = derive_events(operation(), 9, history, judged, Cursor())
    thin, thin_cursor = derive_events(operation(), 9, history, judged, Cursor(), points=10)

    assert thin_cursor == cursor and [event.id for event in thin] == [event.id for event in whole]
    assert isinstance(whole[0], EpochsEvent) and isinstance(thin[0], EpochsEvent)
    assert (whole[0].thinned, len(whole[0].epochs)) == (False, 100)
    kept = [record.epoch for record in thin[0].epochs]
    assert thin[0].thinned and len(kept) <= 10 and {0, 33, 61, 99} <= set(kept)
    assert thin[1:] == whole[1:]

    short, _ = derive_events(operation(), 10, history[:10], judged, cursor, points=10)
    assert isinstance(short[0], EpochsEvent) and (short[0].thinned, len(short[0].epochs)) == (False, 10)
