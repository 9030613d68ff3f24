"""TrainOps.events on both transports: a live run followed to its end, resuming after an event, an ended run,
an unknown operation; and the same events in-process and over HTTP for the same run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from tests.live_server import LiveServer
from trainops import EpochRecord, InvalidInputError, NotFoundError, OperationStatus, ProgressState, TrainOps
from trainops.client import HttpTrainOps, LocalTrainOps
from trainops.schemas.events import DiagnosisEvent, EpochsEvent, OperationEvent, StatusEvent
from trainops.service.bootstrap import open_service
from trainops.settings import Settings


@pytest.fixture(autouse=True)
def _fast_polling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Servers and in-process clients look for changes every 20 ms (autouse: set before the settings are read)."""
    monkeypatch.setenv("TRAINOPS_EVENTS_POLL_INTERVAL", "0.02")


def record(epoch: int) -> EpochRecord:
    loss = 1.0 / (epoch + 1)
    return EpochRecord(epoch=epoch, train_loss=loss, val_loss=loss + 0.1)


def epochs_of(events: list[OperationEvent]) -> list[int]:
    return [r.epoch for event in events if isinstance(event, EpochsEvent) for r in event.epochs]


def test_events_follow_a_live_run_to_its_end(ops: TrainOps) -> None:
    operation = ops.create_operation(total_epochs=10)
    stream = ops.events(operation.operation_id)
    first = next(stream)  # up to date: the pending operation's state
    assert first.event == "progress"

    def train() -> None:
        ops.report_progress(operation.operation_id, ProgressState.training(1, 10))
        for epoch in range(10):
            ops.add_epoch(operation.operation_id, record(epoch))
            time.sleep(0.01)
        ops.finish_operation(operation.operation_id, result={"accuracy": 0.9})

    trainer = threading.Thread(target=train, daemon=True)
    trainer.start()
    events = [first, *stream]
    trainer.join(timeout=10)

    assert epochs_of(events) == list(range(10))
    assert [e.status for e in events if isinstance(e, StatusEvent)] == [
        OperationStatus.PENDING,
        OperationStatus.RUNNING,
        OperationStatus.COMPLETED,
    ]
    final = events[-1]
    assert isinstance(final, DiagnosisEvent) and final.status is OperationStatus.COMPLETED
    assert final.diagnosis is not None and final.diagnosis.best_epoch == 9
    assert len({event.id for event in events}) == len(events)


def test_events_resume_after_the_last_event_seen(ops: TrainOps) -> None:
    operation_id = ops.create_operation().operation_id
    ops.add_epochs(operation_id, [record(epoch) for epoch in range(3)])
    seen = []
    for event in ops.events(operation_id):
        seen.append(event)
        if isinstance(event, StatusEvent):
            break
    ops.add_epochs(operation_id, [record(epoch) for epoch in range(3, 6)])
    ops.cancel_operation(operation_id, "enough")
    ops.finish_operation(operation_id, "cancelled")

    rest = list(ops.events(operation_id, last_event_id=seen[-1].id))

    assert epochs_of(seen) == [0, 1, 2] and epochs_of(rest) == [3, 4, 5]
    assert [(e.status, e.cancel_requested) for e in rest if isinstance(e, StatusEvent)] == [
        (OperationStatus.CANCELLED, True)
    ]
    assert isinstance(rest[-1], DiagnosisEvent)
    assert list(ops.events(operation_id, last_event_id=rest[-1].id)) == []  # nothing more after the end


def test_events_of_an_ended_run_come_at_once(ops: TrainOps) -> None:
    operation_id = ops.create_operation().operation_id
    ops.add_epochs(operation_id, [record(epoch) for epoch in range(4)])
    ops.finish_operation(operation_id, "failed", error="out of memory")

    events = list(ops.events(operation_id))

    assert [event.event for event in events] == ["epochs", "progress", "recommendation", "status", "diagnosis"]
    assert epochs_of(events) == [0, 1, 2, 3]


def test_events_of_an_unknown_operation_or_a_foreign_id_are_refused(ops: TrainOps) -> None:
    with pytest.raises(NotFoundError, match="no operation"):
        next(ops.events("op_training_20250101_000000_deadbeef"))
    operation_id = ops.create_operation().operation_id
    with pytest.raises(InvalidInputError, match="Last-Event-ID 'x' is not an id of this stream"):
        next(ops.events(operation_id, last_event_id="x"))


def test_both_transports_give_the_same_events_for_the_same_run(settings: Settings) -> None:
    local = LocalTrainOps(open_service(settings))
    with local, LiveServer(settings) as server, HttpTrainOps(server.url, retries=0) as http:
        operation_id = local.create_operation(total_epochs=6).operation_id
        local.report_progress(operation_id, ProgressState.training(1, 6))
        local.add_epochs(operation_id, [record(epoch) for epoch in range(3)])
        midway = next(event for event in http.events(operation_id) if isinstance(event, StatusEvent)).id
        local.add_epochs(operation_id, [record(epoch) for epoch in range(3, 6)])
        local.finish_operation(operation_id)

        over_http, in_process = list(http.events(operation_id)), list(local.events(operation_id))
        resumed = [list(client.events(operation_id, last_event_id=midway)) for client in (http, local)]

    assert over_http == in_process  # ids included: a reader may switch transports and resume
    assert epochs_of(in_process) == list(range(6))
    assert resumed[0] == resumed[1] and epochs_of(resumed[0]) == [3, 4, 5]


class _BrokenStream(httpx.SyncByteStream):
    """A response body that sends ``chunks`` and then breaks as a dropped connection does."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = chunks

    def __iter__(self) -> Iterator[bytes]:
        yield from self.chunks
        raise httpx.ReadError("connection reset by peer")


def sse(event: OperationEvent) -> bytes:
    return f"id: {event.id}\nevent: {event.event}\ndata: {event.model_dump_json()}\n\n".encode()


def test_http_events_reconnect_after_a_dropped_connection_with_the_last_id() -> None:
    operation_id = "op_training_20260101_000000_00000000"
    first = EpochsEvent(id="2.-.-.-", operation_id=operation_id, epochs=[record(0)])
    second = EpochsEvent(id="3.-.-.-", operation_id=operation_id, epochs=[record(1)])
    final = DiagnosisEvent(id="4.-.-.-.end", operation_id=operation_id, status=OperationStatus.COMPLETED)
    asked: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request.headers.get("last-event-id"))
        headers = {"content-type": "text/event-stream"}
        if len(asked) == 1:  # the first event whole, the second cut off mid-way: it must be dropped
            return httpx.Response(200, headers=headers, stream=_BrokenStream(b"retry: 10\n\n", sse(first), b"id: 3"))
        return httpx.Response(200, headers=headers, content=b": keep-alive\n\n" + sse(second) + sse(final))

    with HttpTrainOps("http://trainops.test", retries=1, backoff=0, transport=httpx.MockTransport(answer)) as http:
        events = list(http.events(operation_id))

    assert events == [first, second, final]
    assert asked == [None, first.id]


def test_closing_the_client_ends_an_events_reader_on_another_thread(ops: TrainOps) -> None:
    operation_id = ops.create_operation().operation_id  # pending, and nothing more happens: the stream waits
    received: list[OperationEvent] = []
    ended = threading.Event()

    def read() -> None:
        received.extend(ops.events(operation_id))
        ended.set()

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + 10
    while len(received) < 2 and time.monotonic() < deadline:  # progress, status: up to date, then waiting
        time.sleep(0.01)
    assert not ended.is_set()

    ops.close()

    assert ended.wait(timeout=5)
