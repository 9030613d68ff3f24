"""CancellationToken: the flag a training loop checks, set from another thread."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from trainops.core import CancellationToken
from trainops.errors import OperationCancelledError


def test_fresh_token_is_not_cancelled() -> None:
    token = CancellationToken()

    assert token.is_cancelled is False
    assert token.request is None
    assert token.wait(0) is False
    token.raise_if_cancelled()  # no-op


def test_cancel_records_reason_requester_and_time() -> None:
    token = CancellationToken()
    before = datetime.now(UTC)

    token.cancel("val_loss rising")

    after = datetime.now(UTC)
    assert token.is_cancelled is True
    assert token.wait(0) is True
    assert token.request is not None
    assert token.request.reason == "val_loss rising"
    assert token.request.requested_by == "user"
    assert token.request.requested_at.tzinfo is not None
    assert before <= token.request.requested_at <= after


def test_first_reason_wins() -> None:
    token = CancellationToken()

    token.cancel("diverged", requested_by="agent")
    first = token.request
    token.cancel("user pressed stop", requested_by="user")

    assert token.request is first
    assert token.request is not None
    assert (token.request.reason, token.request.requested_by) == ("diverged", "agent")


def test_raise_if_cancelled_names_requester_and_reason() -> None:
    token = CancellationToken()
    token.cancel("val_loss rising", requested_by="agent")

    with pytest.raises(OperationCancelledError, match=r"^Operation cancelled by agent: val_loss rising$") as caught:
        token.raise_if_cancelled()

    assert caught.value.code == "operation_cancelled"
    assert caught.value.message == "Operation cancelled by agent: val_loss rising"


def test_cancel_request_is_frozen() -> None:
    token = CancellationToken()
    token.cancel("stop")
    assert token.request is not None

    with pytest.raises(ValidationError, match="frozen"):
        token.request.reason = "other"  # type: ignore[misc]


def test_waiting_thread_wakes_when_another_thread_cancels() -> None:
    token = CancellationToken()
    woke: list[bool] = []
    errors: list[str] = []

    def loop() -> None:
        woke.append(token.wait(timeout=10))
        try:
            token.raise_if_cancelled()
        except OperationCancelledError as error:
            errors.append(error.message)

    worker = threading.Thread(target=loop)
    worker.start()
    time.sleep(0.02)
    started = time.monotonic()
    token.cancel("from the API", requested_by="api")
    worker.join(timeout=5)

    assert not worker.is_alive()
    assert time.monotonic() - started < 5
    assert woke == [True]
    assert errors == ["Operation cancelled by api: from the API"]


def test_concurrent_cancels_record_exactly_one_reason() -> None:
    token = CancellationToken()
    threads_count = 16
    barrier = threading.Barrier(threads_count)
    seen: list[str] = []

    def cancel(i: int) -> None:
        barrier.wait()
        token.cancel(f"reason {i}", requested_by=f"thread {i}")
        request = token.request
        assert request is not None
        seen.append(request.reason)

    threads = [threading.Thread(target=cancel, args=(i,)) for i in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=5)

    assert token.request is not None
    winner = token.request.reason
    assert winner in {f"reason {i}" for i in range(threads_count)}
    assert token.request.requested_by == "thread " + winner.removeprefix("reason ")
    assert seen == [winner] * threads_count
