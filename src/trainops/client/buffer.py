"""Sending epochs and steps from a background thread, in batches, so a training loop never waits on the network."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from trainops.core.epoch import EpochRecord
from trainops.core.operation import WriteAck
from trainops.core.progress import ProgressState
from trainops.errors import ServiceUnavailableError, TrainOpsError

T = TypeVar("T")


class _Outbox(Generic[T]):
    """Records waiting to be sent, in order, and how many more are being sent now (guarded by the buffer's lock)."""

    def __init__(self, send: Callable[[list[T]], WriteAck] | None) -> None:
        self.send = send
        self.waiting: list[T] = []
        self.in_flight = 0

    def take(self, most: int) -> list[T]:
        batch = self.waiting[:most] if self.send is not None else []
        del self.waiting[: len(batch)]
        self.in_flight = len(batch)
        return batch

    def put_back(self, batch: list[T]) -> None:
        self.waiting[:0] = batch  # keep the order
        self.in_flight = 0

    @property
    def unsent(self) -> int:
        return len(self.waiting) + self.in_flight if self.send is not None else 0


class EpochBuffer:
    """Queues epoch records and sends them in batches every ``interval`` seconds (sooner when ``max_batch``
    records wait), through ``send``; each answer goes to ``on_answer`` (it carries any stop request).

    With ``send_progress``, the latest progress state rides along too: only the newest is kept, and it is sent
    after the epochs it follows, so the training thread never waits for a progress write either. With
    ``send_steps``, points of the per-step series queue beside the epochs (:meth:`add_step` is a list append)
    and go after them in batches of ``max_step_batch``; while the server is unreachable at most
    ``max_pending_steps`` wait, the older of them thinned evenly past that (the store keeps a thinned series
    anyway).

    An unreachable server is retried at every interval, keeping the records in order; any other error (the
    operation ended, was deleted) is final and raised by :meth:`flush`. Re-sending is safe: epochs are upserted.

    Args:
        send: Stores a batch and answers like ``TrainOps.add_epochs``.
        on_answer: Receives every answer (called from the sending thread).
        interval: Seconds between sends.
        max_batch: Records that trigger an early send, and the most one request carries.
        send_steps: Stores a batch of step points (as :meth:`add_step` queued them) and answers like
            ``TrainOps.add_steps``.
    """

    def __init__(
        self,
        send: Callable[[list[EpochRecord]], WriteAck],
        on_answer: Callable[[WriteAck], None],
        *,
        interval: float = 0.5,
        max_batch: int = 500,
        send_progress: Callable[[ProgressState], WriteAck] | None = None,
        send_steps: Callable[[list[Any]], WriteAck] | None = None,
        max_step_batch: int = 1000,
        max_pending_steps: int = 100_000,
    ) -> None:
        self._epochs: _Outbox[EpochRecord] = _Outbox(send)
        self._steps: _Outbox[Any] = _Outbox(send_steps)
        self._max_step_batch = max_step_batch
        self._max_pending_steps = max_pending_steps
        self._send_progress = send_progress
        self._progress: ProgressState | None = None
        self._on_answer = on_answer
        self._interval = interval
        self._max_batch = max_batch
        self._urgent = False
        self._closed = False
        self._retry_error: TrainOpsError | None = None
        self._fatal: TrainOpsError | None = None
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    def add(self, record: EpochRecord) -> None:
        with self._cond:
            if self._closed:
                raise TrainOpsError("this run has finished; it takes no more epochs")
            self._epochs.waiting.append(record)
            self._ensure_thread()
            if len(self._epochs.waiting) >= self._max_batch:
                self._cond.notify_all()

    def add_step(self, point: Any) -> None:
        """Queue one point of the per-step series, in whatever form ``send_steps`` takes (the hot path of a
        training loop: a list append)."""
        with self._cond:
            if self._closed:
                raise TrainOpsError("this run has finished; it takes no more steps")
            waiting = self._steps.waiting
            waiting.append(point)
            if len(waiting) > self._max_pending_steps:
                # the server has been unreachable for a long while: thin the older half, keep the newest dense
                del waiting[: len(waiting) // 2 : 2]
            self._ensure_thread()

    def progress(self, state: ProgressState) -> None:
        """Queue ``state`` as the latest progress (replacing one not yet sent)."""
        with self._cond:
            if self._closed:
                return
            self._progress = state
            self._ensure_thread()

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="trainops-epochs", daemon=True)
            self._thread.start()

    def _ready(self) -> bool:
        return (
            self._closed
            or self._urgent
            or len(self._epochs.waiting) >= self._max_batch
            or len(self._steps.waiting) >= self._max_step_batch
        )

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(self._ready, timeout=self._interval)
                if self._fatal is not None or (self._closed and not self._epochs.waiting and not self._steps.unsent):
                    self._cond.notify_all()
                    return
                batch = self._epochs.take(self._max_batch)
                steps = self._steps.take(self._max_step_batch)
            if batch and not self._deliver(self._epochs, batch):
                with self._cond:
                    self._steps.put_back(steps)  # the steps follow the epochs they came after
                continue
            if steps and not self._deliver(self._steps, steps):
                continue
            with self._cond:
                # the latest progress follows the epochs it came after, once none wait
                waiting = self._epochs.waiting
                progress, self._progress = (self._progress, None) if not waiting else (None, self._progress)
            if progress is not None:
                self._report(progress)

    def _deliver(self, outbox: _Outbox[T], batch: list[T]) -> bool:
        """Send one batch taken from ``outbox``; ``False`` when it must be tried again (or the thread must end)."""
        assert outbox.send is not None, "a batch is taken only from an outbox that can send"
        try:
            answer = outbox.send(batch)
        except ServiceUnavailableError as error:
            with self._cond:
                if self._closed:  # close() gave up waiting: nobody will flush these any more
                    outbox.in_flight = 0
                    self._fatal = error
                    self._cond.notify_all()
                    return False
                outbox.put_back(batch)  # try again at the next interval
                self._retry_error = error
                self._cond.notify_all()
                self._cond.wait(self._interval)  # back off even when a flush is waiting
            return False
        except TrainOpsError as error:
            with self._cond:
                self._fatal = error
                outbox.in_flight = 0
                self._cond.notify_all()
            return False
        # A failing listener must not kill the thread: the records are stored, and a stop request it missed
        # is heard again from the next answer.
        with contextlib.suppress(Exception):
            self._on_answer(answer)
        with self._cond:
            self._retry_error = None
            outbox.in_flight = 0
            self._cond.notify_all()
        return True

    def _report(self, state: ProgressState) -> None:
        """Send one progress state; progress is best effort (the next one supersedes it), so errors are dropped
        here: a final one (the operation ended) shows up on the next epoch send."""
        try:
            answer = self._send_progress(state) if self._send_progress is not None else None
        except TrainOpsError:
            return
        if answer is not None:
            with contextlib.suppress(Exception):
                self._on_answer(answer)

    def flush(self, timeout: float = 60.0) -> None:
        """Send everything queued now and wait until it is stored.

        Raises:
            TrainOpsError: the records cannot be stored (the operation ended), or the server stayed unreachable
                for ``timeout`` seconds; the message says how many epochs (and steps) were not sent.
        """
        with self._cond:
            self._urgent = True
            self._cond.notify_all()
            done = self._cond.wait_for(
                lambda: self._fatal is not None or not (self._epochs.unsent or self._steps.unsent), timeout=timeout
            )
            self._urgent = False
            if self._fatal is not None:
                raise self._fatal
            if not done:
                unsent = f"{self._epochs.unsent} epoch(s)"
                if self._steps.unsent:
                    unsent += f" and {self._steps.unsent} step(s)"
                reason = f": {self._retry_error.message}" if self._retry_error else ""
                raise ServiceUnavailableError(f"{unsent} could not be sent within {timeout:.0f} s{reason}")

    def close(self, timeout: float = 60.0) -> None:
        """Flush, then stop the sending thread. Raises as :meth:`flush` does."""
        try:
            self.flush(timeout)
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            if self._thread is not None:
                self._thread.join(timeout=5.0)
