"""EpochBuffer with a fake sender: batching, order, retries on an unreachable server, final errors."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from trainops.client.buffer import EpochBuffer
from trainops.client.unsent import UnsentFile, read_leftovers
from trainops.core import EpochRecord, OperationStatus, WriteAck
from trainops.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    ServiceUnavailableError,
    TrainOpsError,
)


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


def test_a_final_error_stops_sending_is_said_at_once_and_is_raised(caplog: pytest.LogCaptureFixture) -> None:
    server = FakeServer(failures=[ConflictError("operation op is already cancelled")])
    buffer = EpochBuffer(server.send, lambda _: None, interval=0.01, name="op_x")
    with caplog.at_level(logging.WARNING, logger="trainops.client"):
        buffer.add(EpochRecord(epoch=0))
        deadline = time.monotonic() + 10
        while "takes no more records" not in caplog.text and time.monotonic() < deadline:
            time.sleep(0.01)

    assert "operation op_x: the server takes no more records (ConflictError: operation op is already" in caplog.text
    assert "1 epoch(s) not stored" in caplog.text
    with pytest.raises(ConflictError, match="already cancelled"):
        buffer.close(timeout=10)
    with pytest.raises(TrainOpsError, match="finished"):
        buffer.add(EpochRecord(epoch=1))


def test_a_token_refused_mid_run_keeps_the_records_for_later(caplog: pytest.LogCaptureFixture) -> None:
    """A 401 in the middle of a run (a token rotated, an authenticating proxy's glitch) is no reason to lose the
    epochs: they wait like in an outage and land once the token is taken again."""
    refused = AuthenticationError("missing or invalid API token")
    server = FakeServer(failures=[refused, refused, refused])
    buffer = EpochBuffer(server.send, lambda _: None, interval=0.01, name="op_x")
    with caplog.at_level(logging.WARNING, logger="trainops.client"):
        for epoch in range(3):
            buffer.add(EpochRecord(epoch=epoch))
        buffer.flush(timeout=10)
        buffer.add(EpochRecord(epoch=3))
        buffer.close()

    assert [epoch for batch in server.batches for epoch in batch] == [0, 1, 2, 3]
    assert "operation op_x: the server refuses the token (missing or invalid API token)" in caplog.text


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


def test_close_with_the_server_down_stops_the_thread_and_answers_the_leftovers(tmp_path: Path) -> None:
    server = FakeServer(failures=[ServiceUnavailableError("connection refused")] * 100_000)
    buffer = EpochBuffer(
        server.send, lambda _: None, interval=0.01, spill=lambda: UnsentFile(tmp_path, "op", "http://x")
    )
    buffer.add(EpochRecord(epoch=0))
    left = buffer.close(timeout=0.2)

    assert left is not None and left.epochs == 1 and "connection refused" in left.reason
    assert left.file is not None
    assert [record.epoch for record in read_leftovers(left.file.path).epochs] == [0]
    assert buffer._thread is not None
    buffer._thread.join(timeout=2)
    assert not buffer._thread.is_alive()


class Refusing(FakeServer):
    """Refuses (422) any batch holding one of ``bad``, as a server refuses a batch with one invalid record."""

    def __init__(self, bad: set[int], failures: list[TrainOpsError] | None = None) -> None:
        super().__init__(failures)
        self.bad = bad
        self.requests = 0

    def send(self, records: list[EpochRecord]) -> WriteAck:
        self.requests += 1
        refused = [record.epoch for record in records if record.epoch in self.bad]
        if refused:
            raise InvalidInputError(f"epochs.0.timestamp: epoch {refused[0]} is out of range")
        return super().send(records)


def test_a_refused_batch_is_split_until_only_the_bad_epochs_are_dropped(caplog: pytest.LogCaptureFixture) -> None:
    server = Refusing(bad={5, 6})
    buffer = EpochBuffer(server.send, lambda _: None, interval=10.0, max_batch=16, name="op_x")
    with caplog.at_level(logging.WARNING, logger="trainops.client"):
        for epoch in range(16):
            buffer.add(EpochRecord(epoch=epoch))
        assert buffer.close(timeout=10) is None

    assert [epoch for batch in server.batches for epoch in batch] == [e for e in range(16) if e not in {5, 6}]
    assert server.requests <= 12  # bisection, not one request per epoch
    dropped = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert dropped == [
        "trainops: operation op_x: the server refused epoch 5, dropped: epochs.0.timestamp: epoch 5 is out of range",
        "trainops: operation op_x: the server refused epoch 6, dropped: epochs.0.timestamp: epoch 6 is out of range",
    ]


def test_a_server_error_is_an_outage_not_a_refusal_and_nothing_is_lost() -> None:
    """Before: one 500 on a batch silently dropped every later epoch of the run."""
    server = FakeServer(failures=[TrainOpsError("internal error: OperationalError; see the server log")] * 3)
    buffer = EpochBuffer(server.send, lambda _: None, interval=0.01, max_backoff=0.05)
    for epoch in range(5):
        buffer.add(EpochRecord(epoch=epoch))
    assert buffer.close(timeout=10) is None
    assert [epoch for batch in server.batches for epoch in batch] == [0, 1, 2, 3, 4]


def test_past_max_queued_epochs_spill_to_disk_and_come_back_in_order(tmp_path: Path) -> None:
    down = ServiceUnavailableError("connection refused")
    server = FakeServer(failures=[down] * 10_000)
    buffer = EpochBuffer(
        server.send,
        lambda _: None,
        interval=0.01,
        max_batch=7,
        max_queued=10,
        max_backoff=0.02,
        spill=lambda: UnsentFile(tmp_path, "op", None),
    )
    for epoch in range(40):
        buffer.add(EpochRecord(epoch=epoch, val_loss=float(epoch)))
    with buffer._cond:
        in_memory = len(buffer._epochs)
    assert in_memory <= 10 + 7  # bounded: the rest is on disk
    spilled = list(tmp_path.glob("op/*.jsonl"))
    assert len(spilled) == 1

    server.failures.clear()  # the server is back
    assert buffer.close(timeout=10) is None
    assert [epoch for batch in server.batches for epoch in batch] == list(range(40))
    assert not spilled[0].exists()  # sent: the file has done its job


def test_heartbeats_go_while_nothing_else_answers_and_an_outage_does_not_stop_them() -> None:
    beats: list[float] = []
    down = [True, True]

    def heartbeat() -> WriteAck:
        beats.append(time.monotonic())
        if down:
            down.pop()
            raise ServiceUnavailableError("connection refused")
        return WriteAck(operation_id="op", status=OperationStatus.RUNNING, cancel_requested=True, cancel_reason="x")

    answers: list[WriteAck] = []
    buffer = EpochBuffer(FakeServer().send, answers.append, interval=0.01, heartbeat=heartbeat, heartbeat_interval=0.05)
    buffer.start()
    deadline = time.monotonic() + 10
    while not answers and time.monotonic() < deadline:
        time.sleep(0.01)
    buffer.close(timeout=1)
    assert len(beats) >= 3 and answers and answers[0].cancel_requested


def test_a_flush_during_a_known_outage_gives_up_after_one_attempt_not_its_timeout() -> None:
    server = FakeServer(failures=[ServiceUnavailableError("connection refused")] * 100_000)
    buffer = EpochBuffer(server.send, lambda _: None, interval=0.01)
    buffer.add(EpochRecord(epoch=0))
    with pytest.raises(ServiceUnavailableError):
        buffer.flush(timeout=0.2)  # learns of the outage
    started = time.monotonic()
    with pytest.raises(ServiceUnavailableError, match=r"1 epoch\(s\) could not be sent"):
        buffer.flush(timeout=60)
    assert time.monotonic() - started < 3
    buffer.close(timeout=0)


class BreakingFile(UnsentFile):
    """A spill file whose disk fills up after ``writes`` appends."""

    def __init__(self, directory: Path, writes: int) -> None:
        super().__init__(directory, "op", None)
        self.writes = writes

    def append_epochs(self, records: Sequence[EpochRecord]) -> int:
        if self.writes == 0:
            raise OSError(28, "No space left on device")
        self.writes -= 1
        return super().append_epochs(records)


@pytest.mark.parametrize("writes", [0, 3])
def test_a_spill_file_that_cannot_be_written_keeps_the_epochs_in_memory_and_in_order(
    tmp_path: Path, writes: int, caplog: pytest.LogCaptureFixture
) -> None:
    server = FakeServer(failures=[ServiceUnavailableError("connection refused")] * 10_000)
    buffer = EpochBuffer(
        server.send,
        lambda _: None,
        interval=0.01,
        max_batch=4,
        max_queued=5,
        max_backoff=0.02,
        spill=lambda: BreakingFile(tmp_path, writes),
        name="op",
    )
    with caplog.at_level(logging.WARNING, logger="trainops.client"):
        for epoch in range(30):
            buffer.add(EpochRecord(epoch=epoch))
        server.failures.clear()
        assert buffer.close(timeout=10) is None

    assert [epoch for batch in server.batches for epoch in batch] == list(range(30))
    assert caplog.text.count("cannot spill unsent epochs to disk ([Errno 28] No space left on device)") == 1


class Registrar:
    """The server's side of registering an operation: fails as told, then records that it registered."""

    def __init__(self, failures: list[Exception]) -> None:
        self.failures = list(failures)
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)


def test_a_run_begun_offline_registers_first_and_sends_nothing_before() -> None:
    down = ServiceUnavailableError("connection refused")
    server = FakeServer()
    registrar = Registrar([down, RuntimeError("a broken answer")])  # anything unexpected reads as an outage
    heartbeats: list[float] = []

    def heartbeat() -> WriteAck:
        assert registrar.calls == 3, "a heartbeat for an operation the server does not know yet"
        heartbeats.append(time.monotonic())
        return WriteAck(operation_id="op", status=OperationStatus.RUNNING, cancel_requested=False)

    buffer = EpochBuffer(
        server.send, lambda _: None, interval=0.01, heartbeat=heartbeat, register=registrar, unreachable=down
    )
    assert not buffer.reachable and not buffer.registered
    for epoch in range(3):
        buffer.add(EpochRecord(epoch=epoch))
    buffer.flush(timeout=10)

    assert buffer.registered and buffer.reachable and registrar.calls == 3
    assert [epoch for batch in server.batches for epoch in batch] == [0, 1, 2]
    buffer.close()


def test_a_run_that_cannot_register_keeps_everything_with_its_registration_for_sync(tmp_path: Path) -> None:
    down = ServiceUnavailableError("connection refused")
    registrar = Registrar([down] * 10_000)
    spills: list[UnsentFile] = []

    def spill() -> UnsentFile:
        spills.append(UnsentFile(tmp_path, "op_x", None))
        return spills[-1]

    buffer = EpochBuffer(
        FakeServer().send, lambda _: None, interval=0.01, register=registrar, unreachable=down, spill=spill
    )
    with pytest.raises(ServiceUnavailableError, match=r"the operation's registration and 0 epoch\(s\) could not be"):
        buffer.flush(timeout=0.2)  # nothing queued, yet not everything delivered: the registration waits
    buffer.add(EpochRecord(epoch=0))
    leftover = buffer.close(timeout=0.2)

    assert leftover is not None and leftover.file is spills[-1] and leftover.epochs == 1
    assert leftover.reason.startswith("the operation's registration and 1 epoch(s) could not be sent")
    assert [record.epoch for record in read_leftovers(leftover.file.path).epochs] == [0]


def test_a_registration_the_server_refuses_is_final(caplog: pytest.LogCaptureFixture) -> None:
    refused = InvalidInputError("metadata.task: unknown task")
    server = FakeServer()
    buffer = EpochBuffer(server.send, lambda _: None, interval=0.01, register=Registrar([refused]))
    buffer.add(EpochRecord(epoch=0))
    with caplog.at_level(logging.WARNING, logger="trainops.client"), pytest.raises(InvalidInputError):
        buffer.flush(timeout=10)
    assert server.batches == [] and not buffer.registered
    assert "the server refuses to register it (InvalidInputError: metadata.task: unknown task)" in caplog.text
    assert "takes no more records" not in caplog.text  # one warning, in the registration's words
