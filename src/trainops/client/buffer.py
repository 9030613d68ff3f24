"""Sending epochs and steps from a background thread, in batches, so a training loop never waits on the network,
and never fails because the server is away for a while."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from trainops.client.unsent import UnsentFile, is_outage, settle
from trainops.core.epoch import EpochRecord
from trainops.core.operation import WriteAck
from trainops.core.progress import ProgressState
from trainops.core.steps import StepRecord
from trainops.errors import AuthenticationError, ConflictError, NotFoundError, ServiceUnavailableError, TrainOpsError

logger = logging.getLogger("trainops.client")

T = TypeVar("T")

_FLUSH_IN_OUTAGE = 1.0
"""Seconds :meth:`EpochBuffer.flush` waits when the server is already known to be unreachable."""


@dataclass(frozen=True, slots=True)
class Leftover:
    """What :meth:`EpochBuffer.close` could not send, and the spill file it now lies in (``None`` when the file
    could not be written)."""

    file: UnsentFile | None
    epochs: int
    steps: int
    reason: str
    interrupted: bool = False
    """Whether a KeyboardInterrupt cut the wait short (the caller raises it again once the run's end is kept)."""


class EpochBuffer:
    """Queues epoch records and sends them in batches every ``interval`` seconds (sooner when ``max_batch``
    records wait), through ``send``; each answer goes to ``on_answer`` (it carries any stop request).

    With ``send_progress``, the latest progress state rides along too: only the newest is kept, and it is sent
    after the epochs it follows, so the training thread never waits for a progress write either. With
    ``send_steps``, points of the per-step series queue beside the epochs (:meth:`add_step` is a list append)
    and go after them in batches of ``max_step_batch``; while the server is unreachable at most
    ``max_pending_steps`` wait, the older of them thinned evenly past that (the store keeps a thinned series
    anyway). With ``heartbeat``, the thread says the run is alive (and learns of a stop request) whenever no
    answer came for ``heartbeat_interval`` seconds, so asking whether to stop costs the training loop nothing.

    What the server answers decides what happens to a batch:

    - stored: the answer goes to ``on_answer``;
    - refused (422, 413): the batch is split until the refused records are found; only they are dropped, each
      logged as a warning with the server's message (:func:`~trainops.client.unsent.settle`);
    - unreachable or failing (connection errors, 5xx): everything is kept, in order, and tried again after a
      back-off that doubles from ``interval`` to ``max_backoff`` seconds. Past ``max_queued`` epochs in memory
      they are spilled to a file (``spill`` makes it, see :mod:`trainops.client.unsent`) and read back from it
      in order once the server is back;
    - any other error (the operation ended elsewhere, was deleted): final, raised by :meth:`flush` and
      :meth:`close`; nothing more is sent.

    With ``register``, the operation is not yet known to the server (it was unreachable when the run began):
    the thread calls ``register`` first, as soon as the server answers, and sends nothing else before it has
    succeeded; until then everything queues as in an outage (``unreachable`` is the error the run began with).

    Re-sending is safe: epochs and steps are upserted by number.

    Args:
        send: Stores a batch and answers like ``TrainOps.add_epochs``.
        on_answer: Receives every answer (called from the sending thread).
        interval: Seconds between sends.
        max_batch: Records that trigger an early send, and the most one request carries.
        send_steps: Stores a batch of step points (as :meth:`add_step` queued them) and answers like
            ``TrainOps.add_steps``.
        step_record: The :class:`StepRecord` of a queued point (to spill it, and to name it in a warning).
        register: Registers the operation on the server (safe to call again: it answers the existing one).
        unreachable: Why the server could not register the operation at the start: the run begins in an
            outage.
        name: The operation, for log messages.
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
        step_record: Callable[[Any], StepRecord] | None = None,
        max_step_batch: int = 1000,
        max_pending_steps: int = 100_000,
        heartbeat: Callable[[], WriteAck] | None = None,
        heartbeat_interval: float = 1.0,
        max_queued: int = 1000,
        spill: Callable[[], UnsentFile] | None = None,
        max_backoff: float = 5.0,
        register: Callable[[], None] | None = None,
        unreachable: TrainOpsError | None = None,
        name: str = "",
    ) -> None:
        self._send = send
        self._on_answer = on_answer
        self._interval = interval
        self._max_batch = max_batch
        self._send_progress = send_progress
        self._send_steps = send_steps
        self._step_record = step_record or (lambda point: point)
        self._max_step_batch = max_step_batch
        self._max_pending_steps = max_pending_steps
        self._heartbeat = heartbeat
        self._heartbeat_interval = heartbeat_interval
        self._max_queued = max_queued
        self._make_spill = spill
        self._max_backoff = max_backoff
        self._name = name
        # Epochs waiting, oldest first: those in memory come before those in the spill file. The first
        # ``_in_flight`` of the head (of the memory, else of the file) are being sent; they are removed only
        # once settled, so a batch that meets an outage stays where it was.
        self._epochs: list[EpochRecord] = []
        self._in_flight = 0
        self._file: UnsentFile | None = None
        self._file_offset = 0  # byte offset of the file's first unsent line
        self._file_pending = 0
        self._file_ends: list[int] = []  # offsets after each epoch in flight from the file
        self._from_file = False  # whether the epochs in flight came from the file
        self._memory_first = True  # whether the memory's epochs are older than the file's
        self._spill_broken = False
        self._steps: list[Any] = []
        self._steps_in_flight = 0
        self._progress: ProgressState | None = None
        self._last_answer = time.monotonic()
        self._heartbeats_refused = False
        self._backoff = 0.0
        self._failed_at = 0.0
        self._register = register
        self._registered = register is None
        self._outage: TrainOpsError | None = unreachable
        if unreachable is not None:
            self._failed_at, self._backoff = time.monotonic(), interval
        self._fatal: TrainOpsError | None = None
        self._urgent = False
        self._closed = False
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None

    # -- the training thread's side ------------------------------------------------------------------------

    def add(self, record: EpochRecord) -> None:
        with self._cond:
            if self._closed:
                raise ConflictError(f"run {self._name} has finished; it takes no more epochs")
            if self._fatal is not None:
                return  # the operation takes no more epochs; flush and close raise why
            if self._file is not None and self._spill_epochs([record]):
                pass  # spilling: everything newer goes after what the file holds
            else:
                if self._file is not None:  # the file broke: the memory now holds newer epochs than it
                    self._memory_first = False
                self._epochs.append(record)
                if len(self._epochs) - self._in_flight > self._max_queued:
                    waiting = self._epochs[self._in_flight :]
                    if self._spill_epochs(waiting):
                        del self._epochs[self._in_flight :]
            self._ensure_thread()
            if len(self._epochs) >= self._max_batch:
                self._cond.notify_all()

    def add_step(self, point: Any) -> None:
        """Queue one point of the per-step series, in whatever form ``send_steps`` takes (the hot path of a
        training loop: a list append)."""
        with self._cond:
            if self._closed:
                raise ConflictError(f"run {self._name} has finished; it takes no more steps")
            waiting = self._steps
            waiting.append(point)
            if len(waiting) > self._max_pending_steps:
                # the server has been unreachable for a long while: thin the older half, keep the newest dense
                start = self._steps_in_flight
                del waiting[start : start + (len(waiting) - start) // 2 : 2]
            self._ensure_thread()

    def progress(self, state: ProgressState) -> None:
        """Queue ``state`` as the latest progress (replacing one not yet sent)."""
        with self._cond:
            if self._closed:
                return
            self._progress = state
            self._ensure_thread()

    def start(self) -> None:
        """Start the sending thread now (it starts with the first record otherwise): heartbeats begin."""
        with self._cond:
            if not self._closed:
                self._ensure_thread()

    @property
    def reachable(self) -> bool:
        """Whether the last attempt to reach the server succeeded (``False`` during an outage)."""
        return self._outage is None

    @property
    def token_refused(self) -> bool:
        """Whether the server answers but refuses the token: no wait sends anything until the token changes."""
        return isinstance(self._outage, AuthenticationError)

    @property
    def queued(self) -> bool:
        """Whether anything waits to be sent (epochs, steps, or the registration)."""
        with self._cond:
            return bool(self._epochs or self._file_pending or self._steps or not self._registered)

    @property
    def final(self) -> TrainOpsError | None:
        """The error after which nothing more can be stored (the operation ended elsewhere, was deleted)."""
        return self._fatal

    @property
    def registered(self) -> bool:
        """Whether the server knows the operation (always, unless the buffer was made with ``register``)."""
        return self._registered

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="trainops-epochs", daemon=True)
            self._thread.start()

    def _spill_epochs(self, records: list[EpochRecord]) -> bool:
        """Append ``records`` to the spill file (made on first use); ``False`` when it cannot be written, so
        they stay in memory (a warning says why, once)."""
        if self._make_spill is None or self._spill_broken:
            return False
        try:
            if self._file is None:
                self._file = self._make_spill()
                self._file_offset = 0
            self._file.append_epochs(records)
        except (OSError, ValueError) as error:
            self._spill_broken = True
            logger.warning(
                "trainops: operation %s: cannot spill unsent epochs to disk (%s); they stay in memory",
                self._name,
                error,
            )
            return False
        self._file_pending += len(records)
        return True

    # -- the sending thread ---------------------------------------------------------------------------------

    def _ready(self) -> bool:
        return (
            self._urgent
            or not self._registered
            or len(self._epochs) >= self._max_batch
            or self._file_pending >= self._max_batch
            or len(self._steps) >= self._max_step_batch
        )

    def _wait_for_work(self) -> bool:
        """Wait (holding the lock) until it is time to send; ``False`` when the thread must end."""
        next_tick = time.monotonic() + self._interval
        while True:
            if self._closed or self._fatal is not None:
                self._cond.notify_all()
                return False
            now = time.monotonic()
            if self._outage is not None:
                # back off, but not for long while someone waits for a flush
                retry_at = self._failed_at + (min(self._backoff, 1.0) if self._urgent else self._backoff)
                if now < retry_at:
                    self._cond.wait(retry_at - now)
                    continue
                return True
            if self._ready() or now >= next_tick:
                return True
            self._cond.wait(next_tick - now)

    def _loop(self) -> None:
        while True:
            with self._cond:
                if not self._wait_for_work():
                    return
            if not self._registered and not self._register_now():
                continue
            with self._cond:
                epochs = self._take_epochs()
            if epochs:
                done, stopped = settle(_guarded(self._send), epochs, on_answer=self._answered, on_drop=self._dropped)
                with self._cond:
                    self._commit_epochs(done)
                if stopped is not None:
                    self._failed(stopped)
                    continue
            if not self._send_steps_now() or not self._send_progress_now() or not self._beat():
                continue
            with self._cond:
                if self._outage is not None:  # everything went through: the server is back
                    self._outage, self._backoff = None, 0.0
                self._cond.notify_all()

    def _take_epochs(self) -> list[EpochRecord]:
        """The next batch, from the head (the memory, else the spill file), marked in flight."""
        self._in_flight = 0
        self._from_file = (
            self._file is not None and self._file_pending > 0 and not (self._epochs and self._memory_first)
        )
        if not self._from_file and self._epochs:
            batch = self._epochs[: self._max_batch]
        elif self._from_file and self._file is not None:
            try:
                batch, self._file_ends = self._file.read_epochs(self._file_offset, self._max_batch)
            except (OSError, ValueError) as error:  # the file went away or was damaged under us
                logger.warning("trainops: operation %s: the spill file is unreadable (%s)", self._name, error)
                self._file, self._file_pending = None, 0
                return []
        else:
            return []
        self._in_flight = len(batch)
        return batch

    def _commit_epochs(self, done: int) -> None:
        """The first ``done`` epochs in flight are settled (stored or dropped): remove them from the queue."""
        if self._closed:
            return  # close() gave up on them and spilled them; re-sending them later is harmless
        if not self._from_file:
            del self._epochs[:done]
        elif done and self._file is not None:
            self._file_offset = self._file_ends[done - 1]
            self._file_pending -= done
            if self._file_pending <= 0:  # all of it landed: the file has done its job
                self._file.remove()
                self._file, self._file_pending, self._file_offset = None, 0, 0
                self._memory_first = True
        self._in_flight = 0
        self._cond.notify_all()

    def _register_now(self) -> bool:
        """Register the operation; whether it now is (an outage or a refusal is handled as for a batch)."""
        assert self._register is not None
        try:
            _guarded(self._register)()
        except TrainOpsError as error:
            if is_outage(error):
                self._failed(error)
                return False
            logger.warning(
                "trainops: operation %s: the server refuses to register it (%s: %s); none of its records can be stored",
                self._name,
                type(error).__name__,
                error.message,
            )
            with self._cond:
                self._fatal = error
                self._cond.notify_all()
            return False
        self._last_answer = time.monotonic()
        with self._cond:
            self._registered = True
            if self._outage is not None:
                self._outage, self._backoff = None, 0.0
            self._cond.notify_all()
        logger.info("trainops: operation %s is registered on the server; what waited is being sent", self._name)
        return True

    def _send_steps_now(self) -> bool:
        if self._send_steps is None:
            return True
        with self._cond:
            batch = self._steps[: self._max_step_batch]
            self._steps_in_flight = len(batch)
        if not batch:
            return True
        send = _guarded(self._send_steps)
        done, stopped = settle(send, batch, on_answer=self._answered, on_drop=self._dropped)
        with self._cond:
            if not self._closed:
                del self._steps[:done]
            self._steps_in_flight = 0
            self._cond.notify_all()
        if stopped is not None:
            self._failed(stopped)
            return False
        return True

    def _send_progress_now(self) -> bool:
        """Send the latest progress once no epochs wait (it follows the epochs it came after). Progress is best
        effort: a refusal drops it (the next state supersedes it); an outage keeps it for later."""
        with self._cond:
            if self._epochs or self._file_pending or self._progress is None or self._send_progress is None:
                return True
            state, self._progress = self._progress, None
        try:
            answer = _guarded(self._send_progress)(state)
        except TrainOpsError as error:
            if is_outage(error):
                with self._cond:
                    if self._progress is None:
                        self._progress = state
                self._failed(error)
                return False
            return True
        self._answered(answer)
        return True

    def _beat(self) -> bool:
        """A heartbeat when nothing answered for ``heartbeat_interval``: it says the run is alive, learns of a
        stop, and while the server is away it is the probe that finds it back."""
        if self._heartbeat is None or self._heartbeats_refused:
            return True
        if time.monotonic() - self._last_answer < self._heartbeat_interval and self._outage is None:
            return True
        try:
            answer = _guarded(self._heartbeat)()
        except TrainOpsError as error:
            if is_outage(error):
                self._failed(error)
                return False
            self._heartbeats_refused = True
            if isinstance(error, ConflictError | NotFoundError):
                self._failed(error)  # the operation ended or went away: final, and the run is told to stop
            return True
        self._answered(answer)
        return True

    def _answered(self, answer: WriteAck) -> None:
        self._last_answer = time.monotonic()
        with self._cond:
            if self._outage is not None:  # an answer: the server is back (said before a stop request is passed on)
                self._outage, self._backoff = None, 0.0
                logger.info("trainops: operation %s: the server answers again; what waited is being sent", self._name)
        # A failing listener must not kill the thread: the records are stored, and a stop request it missed
        # is heard again from the next answer.
        with contextlib.suppress(Exception):
            self._on_answer(answer)

    def _dropped(self, record: Any, error: TrainOpsError) -> None:
        what = f"epoch {record.epoch}" if isinstance(record, EpochRecord) else f"step {self._step_record(record).step}"
        logger.warning("trainops: operation %s: the server refused %s, dropped: %s", self._name, what, error.message)

    def _failed(self, error: TrainOpsError) -> None:
        with self._cond:
            if is_outage(error):
                if self._outage is None:
                    logger.warning(
                        "trainops: operation %s: the server %s (%s); the records wait and the training goes on",
                        self._name,
                        "refuses the token" if isinstance(error, AuthenticationError) else "is unreachable",
                        error.message,
                    )
                self._outage = error
                self._failed_at = time.monotonic()
                self._backoff = min(max(self._backoff * 2, self._interval), self._max_backoff)
            else:
                if self._fatal is None:
                    logger.warning(
                        "trainops: operation %s: the server takes no more records (%s: %s); %d epoch(s) not "
                        "stored, and no more are sent",
                        self._name,
                        type(error).__name__,
                        error.message,
                        len(self._epochs) + self._file_pending,
                    )
                self._fatal = error
            self._cond.notify_all()

    # -- the end --------------------------------------------------------------------------------------------

    def flush(self, timeout: float = 60.0) -> None:
        """Send everything queued now and wait until it is stored. While the server is known to be unreachable
        this waits one more attempt (a second at most), not ``timeout``: a loop that flushes every epoch (to
        read the diagnosis, say) must not stall through an outage.

        Raises:
            TrainOpsError: the records cannot be stored (the operation ended), or the server stayed unreachable
                for ``timeout`` seconds; the message says how many epochs (and steps) were not sent.
        """
        with self._cond:
            if self._outage is not None:
                timeout = min(timeout, _FLUSH_IN_OUTAGE)
            if not self._wait_until_sent(timeout):
                raise ServiceUnavailableError(self._not_sent(timeout))

    def _wait_until_sent(self, timeout: float) -> bool:
        """Holding the lock: whether everything was stored within ``timeout``; raises a final error."""
        self._urgent = True
        self._cond.notify_all()
        try:
            done = self._cond.wait_for(
                lambda: (
                    self._fatal is not None
                    or (self._registered and not (self._epochs or self._file_pending or self._steps))
                ),
                timeout=timeout,
            )
        finally:
            self._urgent = False
        if self._fatal is not None:
            raise self._fatal
        return done

    def _not_sent(self, timeout: float) -> str:
        reason = f": {self._outage.message}" if self._outage else ""
        return f"{self._waiting()} could not be sent within {timeout:g} s{reason}"

    def _waiting(self) -> str:
        unsent = f"{len(self._epochs) + self._file_pending} epoch(s)"
        if self._steps:
            unsent += f" and {len(self._steps)} step(s)"
        if not self._registered:
            unsent = f"the operation's registration and {unsent}"
        return unsent

    def close(self, timeout: float = 60.0) -> Leftover | None:
        """Wait at most ``timeout`` seconds for everything queued to be stored, then stop the sending thread.

        Returns:
            ``None`` when everything was stored (or refused and dropped); else what is left, written to a spill
            file for ``trainops sync``.

        Raises:
            TrainOpsError: a final error (the operation ended elsewhere, was deleted): nothing more can be stored.
        """
        leftover = None
        try:
            with self._cond:
                try:
                    if not self._wait_until_sent(timeout):
                        leftover = self._spill_everything(self._not_sent(timeout))
                except KeyboardInterrupt:  # asked to stop waiting: keep everything on disk, at once
                    reason = f"the wait for {self._waiting()} to be sent was interrupted (Ctrl-C)"
                    leftover = dataclasses.replace(self._spill_everything(reason), interrupted=True)
        finally:
            with self._cond:
                self._closed = True
                self._cond.notify_all()
            if self._thread is not None and leftover is None:
                self._thread.join(timeout=5.0)  # with leftovers it may be stuck in a request: let it be
        return leftover

    def _spill_everything(self, reason: str) -> Leftover:
        """Holding the lock: write every unsent record, in order, to a new spill file; the old one goes."""
        self._closed = True  # from here on the sending thread touches nothing
        epochs = len(self._epochs) + self._file_pending
        old, old_offset = self._file, self._file_offset
        points = [self._step_record(point) for point in self._steps]
        file = None
        if self._make_spill is not None:
            try:
                file = self._make_spill()
                file.append_epochs(self._epochs)
                if old is not None:
                    old.close()
                    file.append_raw([line for line in old.read_lines_from(old_offset) if '"run"' not in line[:8]])
                file.append_steps(points)
            except (OSError, ValueError) as error:
                reason += f"; and the spill file could not be written: {error}"
                file = None
        if file is not None and old is not None:
            old.remove()
        return Leftover(file, epochs, len(points), reason)


def _guarded(send: Callable[..., T]) -> Callable[..., T]:
    """``send`` raising only trainops errors: anything unexpected (a broken answer, a bug) reads as a server
    failure, so the records are kept and retried instead of the sending thread dying with them."""

    def guarded(*args: Any) -> T:
        try:
            return send(*args)
        except TrainOpsError:
            raise
        except Exception as error:
            raise TrainOpsError(f"{type(error).__name__}: {error}") from error

    return guarded
