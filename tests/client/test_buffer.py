"""EpochBuffer with a fake sender: batching, order, retries on an unreachable server, final errors."""

from __future__ import annotations

import pytest

from trainops.client.buffer import EpochBuffer
from trainops.core import EpochRecord, OperationStatus, WriteAck
from trainops.errors import ConflictError, ServiceUnavailableError, TrainOpsError


class FakeServer:
    def __init__(self, failures: list[TrainOpsError] | None = None) -> None:
        self.failures = list(failures or [])
        self.batches: list[list[int]] = []

    def send(self, records: list[EpochRecord]) -> WriteAck:
        if self.failures:
            raise self.failures.pop(0)
        self.batches.append([record.epoch for record in records])
        return WriteAck(operation_id="op", status=OperationStatus.RUNNING, cancel_requested=False)


def test_records_are_sent_in_order_in_bounded_batches() -> None:
    server = FakeServer()
    answers: list[WriteAck] = []
    buffer = EpochBuffer(server.send, answers.append, interval=10.0, max_batch=4)
    for epoch in range(10):
        buffer.add(EpochRecord(epoch=epoch))
    buffer.close()

    assert [epoch for batch in server.batches for epoch in batch] == list(range(10))
    assert max(len(batch) for batch in server.batches) <= 4
    assert len(answers) == len(server.batches)


def test_an_unreachable_server_is_retried_without_losing_order() -> None:
    down = ServiceUnavailableError("connection refused")
    server = FakeServer(failures=[down, down])
    buffer = EpochBuffer(server.send, lambda _: None, interval=0.01)
    for epoch in range(3):
        buffer.add(EpochRecord(epoch=epoch))
    buffer.flush(timeout=10)
    buffer.add(EpochRecord(epoch=3))
    buffer.close()

    assert [epoch for batch in server.batches for epoch in batch] == [0, 1, 2, 3]


def test_flush_gives_up_after_its_timeout_and_says_what_was_not_sent() -> None:
    server = FakeServer(failures=[ServiceUnavailableError("connection refused")] * 1000)
    buffer = EpochBuffer(server.send, lambda _: None, interval=0.01)
    buffer.add(EpochRecord(epoch=0))
    buffer.add(EpochRecord(epoch=1))

    with pytest.raises(ServiceUnavailableError, match=r"2 epoch\(s\) could not be sent.*connection refused"):
        buffer.flush(timeout=0.3)


def test_a_final_error_stops_sending_and_is_raised() -> None:
    server = FakeServer(failures=[ConflictError("operation op is already cancelled")])
    buffer = EpochBuffer(server.send, lambda _: None, interval=0.01)
    buffer.add(EpochRecord(epoch=0))

    with pytest.raises(ConflictError, match="already cancelled"):
        buffer.close(timeout=10)
    with pytest.raises(TrainOpsError, match="finished"):
        buffer.add(EpochRecord(epoch=1))


def test_a_failing_listener_does_not_stop_the_sending() -> None:
    server = FakeServer()

    def broken_listener(answer: WriteAck) -> None:
        raise ServiceUnavailableError("the read that follows a stop request failed")

    buffer = EpochBuffer(server.send, broken_listener, interval=0.01)
    buffer.add(EpochRecord(epoch=0))
    buffer.flush(timeout=5)
    buffer.add(EpochRecord(epoch=1))
    buffer.close(timeout=5)
    assert [epoch for batch in server.batches for epoch in batch] == [0, 1]


def test_close_with_the_server_down_stops_the_thread() -> None:
    server = FakeServer(failures=[ServiceUnavailableError("connection refused")] * 100_000)
    buffer = EpochBuffer(server.send, lambda _: None, interval=0.01)
    buffer.add(EpochRecord(epoch=0))
    with pytest.raises(ServiceUnavailableError, match="could not be sent"):
        buffer.close(timeout=0.2)
    assert buffer._thread is not None
    buffer._thread.join(timeout=2)
    assert not buffer._thread.is_alive()
