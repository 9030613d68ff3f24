"""A Run: a Reporter bound to one operation, and the easiest way to track a training loop.

>>> import trainops
>>> with trainops.connect().run(total_epochs=20, metadata={"strategy": "digits-mlp"}) as run:  # doctest: +SKIP
...     for epoch in range(20):
...         run.log(epoch, train_loss=..., val_loss=...)
...         if run.should_stop():
...             break
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import reprlib
import sys
import threading
import time
import weakref
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from trainops.client.buffer import EpochBuffer, Leftover
from trainops.client.unsent import (
    RunEnd,
    SyncClient,
    Unsent,
    UnsentFile,
    create,
    is_outage,
    register,
    unsent_dir,
)
from trainops.core.cancellation import INTERRUPTED, CancelRequest
from trainops.core.epoch import FIELD_METRICS, MAX_EPOCH, MAX_STEP, EpochRecord
from trainops.core.metric_names import normalize_metrics
from trainops.core.numbers import is_numeric, parse_metric
from trainops.core.operation import Operation, OperationMetadata, OperationStatus, WriteAck, new_operation_id
from trainops.core.payload import storable
from trainops.core.progress import ProgressState
from trainops.core.steps import StepRecord
from trainops.errors import (
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    OperationCancelledError,
    ServiceUnavailableError,
    TrainOpsError,
)
from trainops.schemas.artifacts import ArtifactInfo
from trainops.schemas.operations import CreateOperationRequest
from trainops.service.throttle import ProgressThrottle

logger = logging.getLogger("trainops.client")

_MAX_STOP_CHECK_BACKOFF = 30.0
"""Seconds at most between two attempts to ask an unreachable server whether to stop (unbuffered runs)."""

_EXACT_INT = 2**53
"""Integers a float holds exactly: larger ones take the validating path (which also refuses the too large)."""


TOKEN_REFUSED_WAIT = 1.0
"""Seconds at most the end of a run waits for its queued records when the server refuses the token: one more
try, not ``flush_timeout``; the records go to the spill file for ``trainops sync`` with the right token."""
INTERRUPTED_WAIT = 5.0
"""Seconds at most the end of a run stopped with Ctrl-C waits for its queued records: a person asked to stop now;
what is left goes to the spill file for ``trainops sync``."""

OUTAGE_FLUSH_INTERVAL = 0.5
"""Seconds between sends of an unbuffered run that turned to buffering when its store went away."""

REGISTER_WAIT = 10.0
"""Seconds at most a buffered run's start waits for the server to register it before it begins offline."""

ARTIFACT_REGISTER_WAIT = 2.0
"""Seconds at most :meth:`Run.log_artifact` waits for a run that began offline to be registered: the server may be
back while the registration waits for the run's next try, which comes within a second when someone waits for it."""

AT_EXIT_WAIT = 10.0
"""Seconds at most the interpreter's exit waits, for all runs together, to send what runs left unfinished queued."""


_QueuedStep = tuple[int, int | None, dict[str, float], float]
"""A step point :meth:`Run.step` has checked, as (step, epoch, metrics, unix time): a StepRecord is built from it
only when it is sent, on the buffer's thread when the run buffers."""


def _step_record(point: StepRecord | _QueuedStep) -> StepRecord:
    if isinstance(point, StepRecord):
        return point
    step, epoch, metrics, timestamp = point
    return StepRecord.model_construct(
        step=step, epoch=epoch, metrics=metrics, timestamp=datetime.fromtimestamp(timestamp, UTC)
    )


class RunClient(SyncClient, Protocol):
    """The part of :class:`~trainops.client.base.TrainOps` a Run uses: what ``trainops sync`` needs, and more."""

    def start_operation(self, operation_id: str, *, worker: str | None = None) -> Operation: ...

    def report_progress(self, operation_id: str, state: ProgressState) -> WriteAck: ...

    def add_epoch(self, operation_id: str, record: EpochRecord) -> WriteAck: ...

    def heartbeat(self, operation_id: str) -> WriteAck: ...

    def cancel_operation(self, operation_id: str, reason: str, *, requested_by: str = "user") -> Operation: ...

    def log_artifact(
        self, operation_id: str, path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> ArtifactInfo: ...

    def log_artifacts(
        self, operation_id: str, dir_path: str | os.PathLike[str], artifact_path: str | None = None
    ) -> list[ArtifactInfo]: ...


class Run:
    """Reports one operation's progress and epochs, and ends it properly whatever happens.

    As a context manager it starts the operation on entry and, on exit, completes it, fails it with the
    exception's message, or ends it ``cancelled`` when a stop was requested (by anyone, anywhere) and honoured.
    It implements the :class:`~trainops.core.reporter.Reporter` protocol, so pipelines and callbacks accept it.

    A buffered run (over HTTP by default) outlives a server that goes away: :meth:`should_stop` answers what it
    last knew (no stop) without waiting, heartbeats and progress are tried again in the background, epochs wait
    in order (in memory, past ``max_queued_epochs`` in a spill file under ``$TRAINOPS_HOME/unsent``) and are sent
    once the server is back; a stop requested meanwhile is learnt then. An epoch the server refuses (422) is
    dropped alone, with a warning naming it and the server's message. The end waits ``flush_timeout`` seconds
    at most; what is still unsent then, the run's end included, stays in the spill file for ``trainops sync``
    (:meth:`finish` answers an :class:`~trainops.client.unsent.Unsent` and logs a warning).

    A buffered run may even begin while the server is unreachable (:func:`open_run`): it chose its operation's
    id, reports offline, and registers the operation under that id as soon as the server answers, then sends what
    waited; a run that never reaches the server leaves its registration in the spill file, and ``trainops sync``
    registers it first.

    Args:
        client: Where to report.
        operation: The operation to report into (see :meth:`TrainOps.run`).
        stop_check_interval: Seconds between heartbeats that ask the server whether to stop, when no write has
            answered that more recently.
        batch_interval: Seconds between batch-level progress writes.
        flush_interval: ``None`` stores each epoch before :meth:`epoch` returns (and, from the first write
            that meets an outage, buffers as below). A number queues epochs and sends them in batches from a
            background thread every that many seconds, so the loop never waits on the network (the default over
            HTTP); ending the run sends what is left first.
        flush_timeout: Seconds ending the run waits for queued epochs to be stored before giving up on them.
        progress_interval: Seconds between progress updates sent; phase changes, new epochs and 100% always go.
            A skipped update costs nothing: no write, no round trip.
        max_queued_epochs: Epochs a buffered run keeps in memory while the server is unreachable; later ones
            are spilled to disk.
        unsent_directory: Where spill files go (default ``$TRAINOPS_HOME/unsent``).
        register: The request that registers ``operation`` (with its id), when the server could not be reached
            to take it: the run is offline until it has (buffered runs only).
        unreachable: Why the server could not take ``register``.
    """

    def __init__(
        self,
        client: RunClient,
        operation: Operation,
        *,
        stop_check_interval: float = 1.0,
        batch_interval: float = 0.5,
        flush_interval: float | None = None,
        flush_timeout: float = 60.0,
        progress_interval: float = 0.5,
        max_queued_epochs: int = 1000,
        unsent_directory: Path | None = None,
        register: CreateOperationRequest | None = None,
        unreachable: TrainOpsError | None = None,
    ) -> None:
        if register is not None and (flush_interval is None or register.operation_id != operation.operation_id):
            raise ValueError("only a buffered run can register its operation later, under the operation's own id")
        self.client = client
        self.flush_timeout = flush_timeout
        self.operation = operation
        self.result: dict[str, Any] = {}
        self.artifacts: list[dict[str, str]] = []
        self.unsent: Unsent | None = None
        """What the run's end could not deliver (``None`` when everything landed): see :meth:`finish`."""
        self._unsent_directory = unsent_directory
        self._registration = register
        self._registering = False  # the buffer's thread is sending the registration: it can change no more
        self._registration_lock = threading.Lock()
        self._check_backoff = 0.0
        self._next_check = 0.0
        self._stop: CancelRequest | None = operation.cancel_request
        self._stop_seen = False  # whether the loop was told: only then did it stop because of the request
        self._stop_check_interval = stop_check_interval
        self._batch_interval = batch_interval
        self._last_answer = time.monotonic()
        self._last_batch_report = 0.0
        self._finished = False
        self._step_names: set[str] = set()  # metric names of steps already validated: known to be allowed
        self._throttle = ProgressThrottle(progress_interval)
        self._names_seen: set[str] = set()  # names run.log has looked at for a standard field's alias
        self._forked = False  # set in a process forked from the one that opened the run: it cannot send
        self._in_block = False  # inside its `with` block: the code that ends it is still running
        self._warned: set[str] = set()  # what was warned of once: see _warn_once
        _UNFINISHED.add(self)
        self._max_queued_epochs = max_queued_epochs
        self._buffer = (
            None
            if flush_interval is None
            else self._new_buffer(flush_interval, register=register, unreachable=unreachable)
        )

    def _new_buffer(
        self,
        interval: float,
        *,
        register: CreateOperationRequest | None = None,
        unreachable: TrainOpsError | None = None,
    ) -> EpochBuffer:
        return EpochBuffer(
            self._send_epochs,
            self._learn,
            interval=interval,
            send_progress=self._send_progress,
            send_steps=self._send_steps,
            step_record=_step_record,
            heartbeat=self._send_heartbeat,
            heartbeat_interval=self._stop_check_interval,
            max_queued=self._max_queued_epochs,
            spill=self._spill_file,
            register=None if register is None else self._register,
            unreachable=unreachable,
            name=self.operation.operation_id,
        )

    def _buffer_from_now(self, outage: TrainOpsError) -> EpochBuffer:
        """An unbuffered run whose store is away (a database locked past its busy timeout, restarting) buffers from
        now on, as a batched run does: tracking never breaks the training, and nothing is lost."""
        logger.warning(
            "trainops: run %s: %s; its records wait and are sent once the database answers. Training goes on",
            self.operation_id,
            outage.message,
        )
        self._buffer = self._new_buffer(OUTAGE_FLUSH_INTERVAL, unreachable=outage)
        self._buffer.start()
        return self._buffer

    @property
    def operation_id(self) -> str:
        return self.operation.operation_id

    def __repr__(self) -> str:
        state = "finished" if self._finished else "reporting"
        return f"<Run {self.operation_id} {self.operation.status.value} ({state})>"

    @property
    def reachable(self) -> bool:
        """Whether the server answered the run's last attempt to reach it (a buffered run knows this without a
        request): code that would ask the server something in the training thread can skip it while ``False``."""
        return self._buffer.reachable if self._buffer is not None else self._check_backoff == 0.0

    @property
    def registered(self) -> bool:
        """Whether the server knows the operation: ``False`` while a run that began offline has not reached it."""
        return self._buffer is None or self._buffer.registered

    @property
    def last_answer(self) -> float:
        """When the server last answered a write of this run (``time.monotonic()``; the run's start before one)."""
        return self._last_answer

    # -- Reporter -------------------------------------------------------------------------------------------

    def progress(self, state: ProgressState) -> None:
        """Report where the run is (a phase, a step of it, a percentage); throttled to ``progress_interval``, and
        best effort: a finished run, or a server away, drops it (the next state supersedes it)."""
        if self._finished or not self._throttle.admit(self.operation_id, state, time.monotonic()):
            return
        if self._buffer is not None:
            self._buffer.progress(state)
            return
        try:
            self._learn(self.client.report_progress(self.operation_id, state))
        except TrainOpsError as error:
            if not is_outage(error):
                raise
            # progress is best effort: the next state supersedes this one

    def _send_progress(self, state: ProgressState) -> WriteAck:
        return self.client.report_progress(self.operation_id, state)

    def epoch(self, record: EpochRecord) -> None:
        """Record a finished epoch (see :meth:`log` for keyword metrics): queued when the run buffers, else
        stored now.

        Raises:
            ConflictError: the run has finished, or its operation takes no more epochs.
        """
        if self._finished:
            raise ConflictError(f"run {self.operation_id} has finished; it takes no more epochs")
        if self._forked:
            self._warn_forked()
            return
        if self._buffer is not None:
            if record.timestamp is None:  # when it ended, not when a server that was away stored it
                record = record.model_copy(update={"timestamp": datetime.now(UTC)})
            self._buffer.add(record)
        else:
            try:
                self._learn(self.client.add_epoch(self.operation_id, record))
            except TrainOpsError as error:
                if not is_outage(error):
                    raise
                self._buffer_from_now(error).add(record)

    def _send_epochs(self, records: list[EpochRecord]) -> WriteAck:
        return self.client.add_epochs(self.operation_id, records)

    def _send_steps(self, points: list[StepRecord | _QueuedStep]) -> WriteAck:
        return self.client.add_steps(self.operation_id, [_step_record(point) for point in points])

    def _send_heartbeat(self) -> WriteAck:
        return self.client.heartbeat(self.operation_id)

    def _spill_file(self) -> UnsentFile:
        directory = self._unsent_directory or unsent_dir()
        return UnsentFile(directory, self.operation_id, getattr(self.client, "url", None), self._registration)

    def _register(self) -> None:
        """Register the operation now (from the buffer's thread), and start it."""
        with self._registration_lock:
            request, self._registering = self._registration, True
        assert request is not None
        try:
            operation, _ = register(self.client, request)
            if operation.status is OperationStatus.PENDING:
                operation = self.client.start_operation(self.operation_id)
        except BaseException:
            with self._registration_lock:
                self._registering = False  # tried again later, and open to amends till then
            raise
        self.operation = operation
        with self._registration_lock:
            self._registration = None  # from here on, spill files need not register it

    def amend_registration(self, metadata: Mapping[str, Any]) -> bool:
        """Add ``metadata`` fields to the registration of a run that began offline and has not sent it yet.

        Returns:
            Whether they were added; ``False`` once the registration is sent (or was never needed): record them
            with :meth:`TrainOps.update_metadata <trainops.client.base.TrainOps.update_metadata>` then.
        """
        with self._registration_lock:
            if self._registration is None or self._registering:
                return False
            fields = {**self._registration.metadata.model_dump(exclude_unset=True), **metadata}
            self._registration = self._registration.model_copy(
                update={"metadata": OperationMetadata.model_validate(fields)}
            )
            return True

    def flush(self, timeout: float | None = None) -> None:
        """Wait until every epoch and step reported so far is stored (a no-op without buffering).

        Args:
            timeout: Seconds to wait at most (``flush_timeout`` by default; a second during a known outage).

        Raises:
            ServiceUnavailableError: not everything was stored in time; it stays queued and is sent later.
            TrainOpsError: the records cannot be stored for good (the operation ended elsewhere).
        """
        if self._buffer is not None:
            self._buffer.flush(self.flush_timeout if timeout is None else timeout)

    def batch(
        self,
        epoch: int,
        batch: int,
        total_batches: int | None = None,
        metrics: Mapping[str, float] | None = None,
    ) -> None:
        """Report progress within an epoch (0-based ``epoch`` and ``batch``), with running ``metrics`` shown
        beside it (a batch's loss). Cheap enough for every batch: at most one report per ``batch_interval``
        seconds goes out. Best effort: a value that is not a number is left out (warned of once), never raised.
        """
        # The hot path of every training loop: one clock read and a comparison. An epoch's end is reported by
        # the epoch itself, so the last batch gets no special treatment here.
        now = time.monotonic()
        if now - self._last_batch_report < self._batch_interval:
            return
        self._last_batch_report = now
        total_epochs = self.operation.total_epochs or epoch + 1
        state = ProgressState.training(epoch + 1, total_epochs, batch=batch, total_batches=total_batches)
        if metrics:
            state = state.model_copy(update={"context": self._batch_metrics(metrics)})
        self.progress(state)

    def _batch_metrics(self, metrics: Mapping[str, Any]) -> dict[str, float]:
        values: dict[str, float] = {}
        for name, value in metrics.items():
            try:
                values[str(name)] = parse_metric(value)
            except (ValueError, TypeError) as problem:
                self._warn_once(f"batch:{name}", f"run {self.operation_id}: batch metric {name!r} left out: {problem}")
        return values

    def artifact(self, name: str, path: str, kind: str = "file") -> None:
        """Note a file by reference in the run's result (``result["artifacts"]``): its name, where it is on this
        machine, and its kind. Nothing is uploaded; :meth:`log_artifact` stores the file itself."""
        self.artifacts.append({"name": name, "path": path, "kind": kind})

    def log_artifact(self, path: str | os.PathLike[str], artifact_path: str | None = None) -> ArtifactInfo:
        """Store a local file among the run's artifacts (``best.pt`` with ``artifact_path="checkpoints"`` is
        ``checkpoints/best.pt``), as :meth:`TrainOps.log_artifact <trainops.client.base.TrainOps.log_artifact>`
        does; it answers the stored artifact.

        A run that began offline registers its operation once the server answers; until then it waits for that a
        moment (``ARTIFACT_REGISTER_WAIT`` seconds at most) before sending the file.

        Raises:
            InvalidInputError: ``path`` is not a file, or a name is not plain.
            ServiceUnavailableError: the server cannot be reached now, or the run (begun offline) is not registered
                with it yet (artifacts are not kept for later: log the file again once :attr:`registered`).
        """
        self._wait_for_registration()
        return self.client.log_artifact(self.operation_id, path, artifact_path)

    def log_artifacts(self, dir_path: str | os.PathLike[str], artifact_path: str | None = None) -> list[ArtifactInfo]:
        """Store every file below a local directory among the run's artifacts, keeping their relative paths; a
        run that began offline waits for its registration as :meth:`log_artifact` does."""
        self._wait_for_registration()
        return self.client.log_artifacts(self.operation_id, dir_path, artifact_path)

    def _wait_for_registration(self) -> None:
        """Return once the server knows the operation, asking the sending thread to register it now; an artifact
        sent before would be refused as one of no operation.

        Raises:
            ServiceUnavailableError: still not registered after ``ARTIFACT_REGISTER_WAIT`` seconds.
            TrainOpsError: the server refused the registration for good.
        """
        if self.registered:
            return
        if self._buffer is not None and not self._finished:  # a finished run's registration waits for sync
            self._buffer.start()
            deadline = time.monotonic() + ARTIFACT_REGISTER_WAIT
            while not self.registered and (left := deadline - time.monotonic()) > 0:
                with contextlib.suppress(ServiceUnavailableError):  # epochs still queued: only the registration counts
                    self.flush(left)
                if not self.registered:
                    time.sleep(min(0.05, max(left, 0.0)))  # a flush with nothing queued returns at once: no spin
        if not self.registered:
            later = "`trainops sync` registers it" if self._finished else "it registers itself once the server answers"
            raise ServiceUnavailableError(
                f"run {self.operation_id} is not registered with the server yet (it began while the server could "
                f"not be reached; {later}); artifacts are not kept for later: log the artifact again once it is "
                "(run.registered)",
                details={"operation_id": self.operation_id},
            )

    def should_stop(self) -> CancelRequest | None:
        """The stop request when someone asked this run to stop, else ``None``; never raises for an
        unreachable server, and a buffered run never waits on the network here (its background thread asks)."""
        if self._buffer is not None:
            self._buffer.start()
            if self._stop is None:
                self._stop = _ended_elsewhere(self._buffer.final)
        elif self._stop is None:
            self._check_stop()
        if self._stop is not None:
            self._stop_seen = True
        return self._stop

    # -- conveniences ---------------------------------------------------------------------------------------

    def log(self, epoch: int, *, step: int | None = None, **metrics: Any) -> None:
        """Record an epoch from keyword metrics: ``run.log(3, train_loss=0.4, val_loss=0.5, f1=0.7)``.

        Values are numbers (numpy scalars and one-element tensors included); NaN and infinity are kept; ``None``
        is a metric not measured this epoch (validation every other epoch, say), and is left out.
        ``step`` is the framework's global step at the epoch's end (``run.log(3, step=1200, ...)``), which
        places the epoch on the per-step series of :meth:`step`.

        Raises:
            InvalidInputError: a value that is not a number (text belongs in :attr:`result`), a metric name
                that is not allowed, or a bad ``epoch`` or ``step``; raised here, before anything is queued or
                sent.
        """
        metrics = {name: value for name, value in metrics.items() if value is not None}  # None: not measured now
        if not self._names_seen.issuperset(metrics):
            self._name_the_standard_fields(metrics)
        fields = {"epoch": epoch, **metrics} if step is None else {"epoch": epoch, "step": step, **metrics}
        try:
            record = EpochRecord.model_validate(fields)
        except ValidationError as error:
            problems = [_logged_problem(item) for item in error.errors()]
            raise InvalidInputError("; ".join(problems), details={"epoch": epoch, "metrics": sorted(metrics)}) from None
        self.epoch(record)

    def _name_the_standard_fields(self, metrics: Mapping[str, Any]) -> None:
        """Warn once of a name that a framework uses for a standard field (``eval_loss``, ``lr``), logged here
        as a custom metric while the field itself is not: the diagnosis reads the field, and would see nothing."""
        self._names_seen.update(metrics)
        _, aliases = normalize_metrics(dict.fromkeys(metrics, 0.0))
        for canonical, original in aliases.items():
            if canonical in FIELD_METRICS and canonical not in metrics:
                self._warn_once(
                    f"alias:{original}",
                    f"run {self.operation_id}: {original!r} is kept as a custom metric; the diagnosis reads "
                    f"{canonical}: log it as {canonical}=... (TrainingCallbacks maps such names itself)",
                )

    def step(self, step: int, metrics: Mapping[str, Any] | None = None, epoch: int | None = None) -> None:
        """Record one point of the per-step (batch) series: ``run.step(1200, {"loss": 0.41, "lr": 1e-3})``.

        Cheap enough for every batch: when the run buffers (over HTTP by default) the point is queued and sent
        with the epochs from the background thread; in-process it is stored at once. The series keeps at most
        ``TRAINOPS_MAX_STEP_POINTS`` points per run (older ones evenly thinned, the latest always kept); read it
        with :meth:`TrainOps.get_steps <trainops.client.base.TrainOps.get_steps>`.

        Args:
            step: The framework's global step (optimizer steps or batches so far), 0 or more; re-sending a step
                replaces it.
            metrics: Numbers by name (NaN and infinity are kept); names are letters, digits, ``_ . - /``, at most
                128 characters, starting with a letter or ``_``.
            epoch: The epoch the step belongs to, when known.

        Raises:
            InvalidInputError: a bad ``step`` or ``epoch``, a value that is not a number or a name that is not
                allowed; raised here, before anything is queued or sent.
        """
        point: StepRecord | _QueuedStep | None = self._plain_point(step, metrics or {}, epoch)
        if point is None:
            fields = {"step": step, "epoch": epoch, "metrics": metrics or {}, "timestamp": datetime.now(UTC)}
            try:
                point = StepRecord.model_validate(fields)
            except ValidationError as error:
                problems = [_logged_problem(item) for item in error.errors()]
                raise InvalidInputError(
                    "; ".join(problems), details={"step": step, "metrics": sorted(metrics or {})}
                ) from None
            self._step_names.update(point.metrics)
        if self._forked:
            self._warn_forked()
        elif self._buffer is not None:
            self._buffer.add_step(point)
        else:
            try:
                self._learn(self.client.add_steps(self.operation_id, [_step_record(point)]))
            except TrainOpsError as error:
                if not is_outage(error):
                    raise
                self._buffer_from_now(error).add_step(point)

    def _warn_forked(self) -> None:
        self._warn_once(
            "forked",
            f"run {self.operation_id} was opened in another process (this one was forked from it, a DataLoader "
            "worker say): what this process logs is not sent, nor does it end the run; log from the process that "
            "opened the run",
        )

    def _warn_once(self, key: str, message: str) -> None:
        """Log ``message`` the first time ``key`` comes up in this run: a loop repeats what it does every batch."""
        if key not in self._warned:
            self._warned.add(key)
            logger.warning("trainops: %s", message)

    def __reduce__(self) -> Any:
        raise TypeError(
            f"a Run reports from the process that opened it and cannot be pickled; give the other process "
            f"run.operation_id ({self.operation_id!r}) instead, and let it report through its own "
            "trainops.connect()"
        )

    def _plain_point(self, step: Any, metrics: Mapping[str, Any], epoch: Any) -> _QueuedStep | None:
        """The point as a tuple, without pydantic's validation, when it plainly passes it: int step and epoch in
        range, float or int values, names already validated once in this run; ``None`` for anything else, which
        :meth:`step` then validates in full. The hot path of a training loop: a tenth of a validation's cost."""
        if type(step) is not int or not 0 <= step <= MAX_STEP:
            return None
        if epoch is not None and (type(epoch) is not int or not 0 <= epoch <= MAX_EPOCH):
            return None
        if len(metrics) > StepRecord.MAX_METRICS:
            return None
        values: dict[str, float] = {}
        for name, value in metrics.items():
            kind = type(value)
            if kind is float:
                values[name] = value
            elif kind is int and -_EXACT_INT <= value <= _EXACT_INT:
                values[name] = float(value)
            else:
                return None
        if not self._step_names.issuperset(values):
            return None
        return step, epoch, values, time.time()

    def _check_stop(self) -> None:
        """A heartbeat when none answered for ``stop_check_interval``; while the server is away, the last answer
        (no stop) stands and it is asked again after a back-off (doubling up to 30 s)."""
        now = time.monotonic()
        if now - self._last_answer < self._stop_check_interval or now < self._next_check:
            return
        try:
            self._learn(self.client.heartbeat(self.operation_id))
        except (ConflictError, NotFoundError) as error:
            self._stop = _ended_elsewhere(error)  # the operation ended (or went) elsewhere: stop, never raise here
        except TrainOpsError as error:
            if not is_outage(error):
                raise
            self._check_backoff = min(max(2 * self._check_backoff, self._stop_check_interval), _MAX_STOP_CHECK_BACKOFF)
            self._next_check = time.monotonic() + self._check_backoff
        else:
            self._check_backoff = 0.0

    def raise_if_stopped(self) -> None:
        """Raise :class:`OperationCancelledError` when a stop was requested; the run then ends cancelled."""
        request = self.should_stop()
        if request is not None:
            raise OperationCancelledError(f"stopped by {request.requested_by}: {request.reason}")

    def finish(
        self, status: OperationStatus | str = OperationStatus.COMPLETED, *, error: str | None = None
    ) -> Unsent | None:
        """End the operation now (the context manager does this for you).

        Waits at most ``flush_timeout`` seconds for the queued records, then tells the server how the run
        ended. When the server is unreachable for that long, what is left (and the run's end, which the server
        must hear after the epochs) is written to a spill file: a warning says what and where, and ``trainops
        sync`` delivers it later; the operation meanwhile stays ``running`` on the server, and
        :attr:`operation` shows the status the run ended with.

        Returns:
            ``None`` when everything was delivered, else what was not (also kept in :attr:`unsent`).

        Raises:
            TrainOpsError: the records could not be stored for good (the operation ended elsewhere, was
                deleted); the operation is ended anyway, then this is raised.
        """
        if self._finished:
            return self.unsent
        if self._forked:  # the run is the parent process's to end
            self._warn_forked()
            return None
        try:
            ending: OperationStatus | None = OperationStatus(status)
        except ValueError:
            ending = None
        if ending is None or not ending.is_terminal:
            choices = ", ".join(item.value for item in OperationStatus if item.is_terminal)
            raise InvalidInputError(f"a run ends {choices}; got {getattr(status, 'value', status)!r}")
        status = ending
        deadline = time.monotonic() + self.flush_timeout
        final: TrainOpsError | None = None
        leftover: Leftover | None = None
        if self._buffer is not None:
            wait = self.flush_timeout
            if self._buffer.token_refused:  # up, and refusing: waiting changes nothing, the token must
                wait = min(wait, TOKEN_REFUSED_WAIT)
            elif self.flush_timeout >= INTERRUPTED_WAIT and not self._buffer.reachable and self._buffer.queued:
                logger.warning(
                    "trainops: run %s ends while the server is away: waiting up to %g s to send what is queued; "
                    "Ctrl-C keeps it on disk for `trainops sync`",
                    self.operation_id,
                    self.flush_timeout,
                )
            try:
                leftover = self._buffer.close(wait)
            except TrainOpsError as problem:
                final = problem
        end = RunEnd(status, self._end_result(final), _storable_text(error))
        if final is not None and not self.registered:  # the server refused the operation itself: no end to tell
            self._finish_here()
            raise final
        if leftover is not None:  # the server hears the end after the epochs, or its history would be cut short
            refused = self._buffer is not None and self._buffer.token_refused
            self._keep_end(end, leftover.file, leftover.epochs, leftover.steps, leftover.reason, refused)
        else:
            try:
                self.operation = self._deliver_end(end, deadline)
            except TrainOpsError as problem:
                if final is not None or not is_outage(problem):
                    self._finish_here()
                    raise
                self._keep_end(end, None, 0, 0, problem.message, isinstance(problem, AuthenticationError))
        self._finish_here()
        if final is not None:
            raise final
        if leftover is not None and leftover.interrupted:
            raise KeyboardInterrupt  # pressed while the end waited: the records are safe in the spill file
        return self.unsent

    def _finish_here(self) -> None:
        self._finished = True
        _UNFINISHED.discard(self)

    def _end_result(self, final: TrainOpsError | None) -> dict[str, Any] | None:
        """:attr:`result` as the server can store it: tensors and numpy values as numbers (or lists), paths as
        text; a result that still cannot be stored is replaced by why, so that the run's end always lands."""
        result = dict(self.result)
        if self.artifacts:
            result.setdefault("artifacts", self.artifacts)
        if final is not None:
            result.setdefault("unsent_epochs_error", final.message)
        try:
            cleaned: dict[str, Any] = storable(result, "result")
        except ValueError as problem:
            logger.warning("trainops: run %s: its result cannot be stored, and is not: %s", self.operation_id, problem)
            return {"unstorable_result": str(problem)}
        return cleaned or None

    def _deliver_end(self, end: RunEnd, deadline: float) -> Operation:
        """Tell the server how the run ended, trying again until ``deadline`` while it is unreachable."""
        pause = 0.5
        attempt = 0
        while True:
            try:
                return self.client.finish_operation(self.operation_id, end.status, result=end.result, error=end.error)
            except ConflictError:
                # already ended: by an earlier attempt whose answer was lost, or elsewhere as this run meant to
                # end (a cancel the server enforced after its grace period)
                stored = self.client.get_operation(self.operation_id)
                if attempt == 0 and stored.status is not end.status:
                    raise
                return stored
            except TrainOpsError as problem:
                # a refused token is no outage to wait out: the server is up, and stays refusing
                if not is_outage(problem) or isinstance(problem, AuthenticationError):
                    raise
                if time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)
            pause = min(pause * 2, 5.0)
            attempt += 1

    def _keep_end(
        self, end: RunEnd, file: UnsentFile | None, epochs: int, steps: int, reason: str, token_refused: bool
    ) -> None:
        """Write the run's end after its unsent records, and say so."""
        path = None
        try:
            file = file or self._spill_file()
            file.append_end(end)
            file.close()
            path = file.path
        except (OSError, ValueError) as problem:
            reason += f"; and the spill file could not be written: {problem}"
        self.unsent = Unsent(
            self.operation_id,
            path,
            epochs,
            steps,
            True,
            reason,
            registration=not self.registered,
            token_refused=token_refused,
        )
        logger.warning("trainops: %s", self.unsent.message)
        self.operation = self.operation.model_copy(
            update={"status": end.status, "result": end.result, "error": end.error}
        )

    def _learn(self, ack: WriteAck) -> None:
        self._last_answer = time.monotonic()
        if ack.cancel_requested and self._stop is None:
            # The full request (who, when) is one read away; the reason already came with the answer.
            try:
                self._stop = self.client.get_operation(self.operation_id).cancel_request
            except TrainOpsError:
                self._stop = None
            if self._stop is None:
                reason = ack.cancel_reason or "a stop was requested"
                self._stop = CancelRequest(reason=reason, requested_by="unknown", requested_at=datetime.now(UTC))

    # -- context manager ------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the operation (a pending one becomes running) and the heartbeats; the ``with`` block does this on
        entry. Calling it again does nothing."""
        if self.operation.status is OperationStatus.PENDING and self._registration is None:
            try:
                self.operation = self.client.start_operation(self.operation_id)
            except ConflictError:  # running already: its first epoch started it (logged before the block began)
                current = self.client.get_operation(self.operation_id)
                if current.status is not OperationStatus.RUNNING:
                    raise
                self.operation = current
        if self._buffer is not None:
            self._buffer.start()  # heartbeats: the server knows the run is alive, the run hears a stop

    def __enter__(self) -> Self:
        self.start()
        self._in_block = True
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._in_block = False
        if self._finished:
            return
        if exited_cleanly(exc):
            exc = None
        if exc is None:
            # cancelled only when the loop was told to stop; a loop that never asked ran to its end
            self.finish(OperationStatus.CANCELLED if self._stop and self._stop_seen else OperationStatus.COMPLETED)
        elif isinstance(exc, OperationCancelledError) or (self._stop and isinstance(exc, KeyboardInterrupt)):
            self.finish(OperationStatus.CANCELLED)
        elif isinstance(exc, KeyboardInterrupt):
            # a person stopped the loop (Ctrl-C, a notebook's interrupt): a cancel, saying so, as `trainops train`
            # records it; the reason is lost only when the server cannot hear it now. They asked to stop now:
            # the end waits a few seconds at most, what is left goes to the spill file
            if self.reachable:
                with contextlib.suppress(Exception):
                    self.client.cancel_operation(self.operation_id, INTERRUPTED, requested_by="user")
            self.flush_timeout = min(self.flush_timeout, INTERRUPTED_WAIT)
            with contextlib.suppress(Exception):
                self.finish(OperationStatus.CANCELLED)
        else:
            message = ending_message(exc)
            # the original exception matters more than a failure to record it
            with contextlib.suppress(Exception):
                self.finish(OperationStatus.FAILED, error=message)


def exited_cleanly(exc: BaseException | None) -> bool:
    """Whether ``exc`` is ``sys.exit()`` or ``sys.exit(0)``: the script ended as it meant to."""
    return isinstance(exc, SystemExit) and exc.code in (0, None)


def ending_message(exc: BaseException) -> str:
    """How an exception that ended a run is recorded as its ``error``: ``ValueError: bad batch``, or the exit code
    a script passed to ``sys.exit``."""
    if isinstance(exc, SystemExit):
        return f"the script exited with code {exc.code}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _storable_text(text: str | None) -> str | None:
    """An error message as the server can store it: a NUL or an unpaired surrogate (from a C library's message, a
    decoded file name) escaped rather than losing the run's end."""
    if text is None:
        return None
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


_UNFINISHED: weakref.WeakSet[Run] = weakref.WeakSet()
"""Runs not finished yet: the interpreter's exit ends them (:func:`_finish_at_exit`)."""


def _forked_child() -> None:
    """In a process forked from one with open runs: they are the parent's to send and to end. The child's records
    are dropped with a warning (its copy of a run has no sending thread), and its exit ends none of them."""
    for run in list(_UNFINISHED):
        run._forked = True
    _UNFINISHED.clear()


os.register_at_fork(after_in_child=_forked_child)


@atexit.register
def _finish_at_exit() -> None:
    """End the runs a script left unfinished (no ``with`` block, :meth:`Run.finish` or ``on_train_end``) as it
    exits, as ``wandb`` and ``mlflow`` end theirs: what they queued is sent (or spilled for ``trainops sync``), and
    each ends completed, failed with the exception that ended the script, or cancelled after a Ctrl-C. A run whose
    ``with`` block is still running (on another thread) ends failed: the process left under a live training, and
    whatever status it exits with is not the training's."""
    deadline = time.monotonic() + AT_EXIT_WAIT
    ending = getattr(sys, "last_value", None)  # the exception the interpreter printed before exiting, if one did
    for run in list(_UNFINISHED):
        if run._finished:
            continue
        if isinstance(ending, KeyboardInterrupt):
            status, error = OperationStatus.CANCELLED, None
        elif isinstance(ending, BaseException):
            status, error = OperationStatus.FAILED, ending_message(ending)
        elif run._in_block:  # its block runs on (another thread): the process is leaving under a live training
            status, error = OperationStatus.FAILED, "the process exited while the run's `with` block still ran"
        else:
            status, error = OperationStatus.COMPLETED, None
        logger.warning(
            "trainops: run %s was not finished (no `with` block or finish()); it ends %s as Python exits",
            run.operation_id,
            status.value,
        )
        run.flush_timeout = max(0.0, min(run.flush_timeout, deadline - time.monotonic()))
        with contextlib.suppress(Exception):
            run.finish(status, error=error)


def _ended_elsewhere(error: TrainOpsError | None) -> CancelRequest | None:
    """A stop for a run whose operation takes no more records: ended on the server (by the reaper, say, or a cancel
    enforced past its grace) or deleted. Training on would report to nobody and hold its machine for nothing."""
    if not isinstance(error, ConflictError | NotFoundError):
        return None
    reason = f"the server takes no more records for this run: {error.message}"
    return CancelRequest(reason=reason, requested_by="trainops", requested_at=datetime.now(UTC))


def open_run(
    client: RunClient,
    request: CreateOperationRequest,
    *,
    flush_interval: float | None,
    flush_timeout: float = 60.0,
) -> Run:
    """Register the operation ``request`` describes, and a :class:`Run` reporting into it.

    A buffered run (``flush_interval`` set) chooses its operation's id, so that registering can safely be tried
    again. When the server cannot be reached now (or refuses the token), such a run begins offline instead of
    failing: a warning says so, it reports as through an outage, and it registers the operation as soon as the
    server answers, or leaves that to ``trainops sync``. Tracking never stops a training from starting.

    Raises:
        TrainOpsError: the server refused the request (a bad name or tag, say); an unbuffered run's also when it
            is unreachable.
    """
    if flush_interval is None:
        return Run(client, create(client, request), flush_interval=None, flush_timeout=flush_timeout)
    if request.operation_id is None:
        request = request.model_copy(update={"operation_id": new_operation_id(request.operation_type)})
    began = datetime.now(UTC)
    try:
        operation = _register_within(client, request, REGISTER_WAIT)
    except TrainOpsError as error:
        if not is_outage(error):
            raise
        request = request.model_copy(update={"started_at": began})  # registered later, running since it began
        operation = _offline_operation(request)
        if isinstance(error, AuthenticationError):
            logger.warning(
                "trainops: the server refuses the token (%s); run %s begins offline: its records are kept for "
                "`trainops sync` with the server's token (--token, or TRAINOPS_API_TOKEN). Training goes on",
                error.message,
                operation.operation_id,
            )
        else:
            logger.warning(
                "trainops: %s; run %s begins offline: it is registered and its records sent once the server "
                "answers, or kept for `trainops sync`. Training goes on",
                error.message,
                operation.operation_id,
            )
        return Run(
            client,
            operation,
            flush_interval=flush_interval,
            flush_timeout=flush_timeout,
            register=request,
            unreachable=error,
        )
    return Run(client, operation, flush_interval=flush_interval, flush_timeout=flush_timeout)


def _register_within(client: RunClient, request: CreateOperationRequest, seconds: float) -> Operation:
    """Register the operation, waiting ``seconds`` at most: a server that takes the connection and never answers
    (hung, or overloaded) would hold the training's start for a whole read timeout. An attempt still running after
    that is left to finish or fail on its thread; registering again later is safe (the id is the run's own).

    Raises:
        TrainOpsError: the server refused the request, or could not be reached (``ServiceUnavailableError`` when
            it did not answer in time).
    """
    answer: list[Operation | BaseException] = []

    def attempt() -> None:
        try:
            answer.append(register(client, request)[0])
        except BaseException as error:  # handed to the waiting thread
            answer.append(error)

    thread = threading.Thread(target=attempt, name="trainops-register", daemon=True)
    thread.start()
    thread.join(seconds)
    if not answer:
        url = getattr(client, "url", "the server")
        raise ServiceUnavailableError(f"{url} did not answer within {seconds:g} s (hung, or overloaded)")
    if isinstance(answer[0], BaseException):
        raise answer[0]
    return answer[0]


def _offline_operation(request: CreateOperationRequest) -> Operation:
    """The operation ``request`` will register, as the run knows it until then: pending."""
    assert request.operation_id is not None
    now = request.started_at or datetime.now(UTC)
    return Operation(
        operation_id=request.operation_id,
        operation_type=request.operation_type,
        status=OperationStatus.PENDING,
        created_at=now,
        updated_at=now,
        metadata=request.metadata,
        total_epochs=request.total_epochs,
        name=request.name,
        tags=request.tags or [],
        notes=request.notes,
    )


def _logged_problem(item: ErrorDetails) -> str:
    """One problem of a :meth:`Run.log` call, in the words of the call rather than of the record's fields."""
    location = item["loc"]
    message = str(item["msg"]).removeprefix("Value error, ")
    if location == ("metrics",) and item["type"] == "too_long":
        limit = (item.get("ctx") or {}).get("max_length", EpochRecord.MAX_CUSTOM_METRICS)
        got = len(item["input"])
        return f"at most {limit} custom metrics per epoch, got {got}; log fewer, or put the rest in run.result"
    if len(location) == 2 and location[0] == "metrics":
        name = str(location[1])  # a custom metric, gathered into the record's ``metrics``
    elif len(location) == 1 and location[0] in FIELD_METRICS:
        name = str(location[0])
    else:
        return f"{'.'.join(str(part) for part in location)}: {message}" if location else message
    value = item["input"]
    if isinstance(value, bool) or not is_numeric(value):
        return (
            f"metric {name!r} must be a number (int or float), got {type(value).__name__} {reprlib.repr(value)}; "
            "log numbers only, or put text in run.result"
        )
    return f"metric {name!r}: {message}"
