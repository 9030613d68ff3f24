"""An operation's events, derived from stored state: what changed since a cursor, and the cursor after each event.

Nothing is kept in memory between reads. The cursor (each event's ``id``, a client's ``Last-Event-ID``) holds all
a stream needs to go on exactly where its reader stopped, on any server process, after any restart:

- the operation ``version`` up to which epochs were sent: every epoch row records the version it was written at
  (``epoch_metrics.revision``), so "the epochs written after version V" is one query, and a re-written epoch comes
  again (it changed);
- a short digest of the progress, the status (with the cancel request) and the recommendation last sent, so each
  is sent again only when it differs;
- whether the final diagnosis was sent.

New epochs travel as one ``epochs`` event per read, so an event is received whole or not at all (a client keeps
only events that ended with their blank line) and the cursor never points inside a batch.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from trainops.core.diagnosis import Diagnosis
from trainops.core.epoch import EpochRecord
from trainops.core.operation import Operation
from trainops.core.thinning import thin_epochs
from trainops.errors import InvalidInputError
from trainops.schemas.events import (
    DiagnosisEvent,
    EpochsEvent,
    OperationEvent,
    ProgressEvent,
    RecommendationEvent,
    StatusEvent,
)
from trainops.service.operations import OperationsService

_UNSENT = "-"
_END = "end"


@dataclass(frozen=True)
class Cursor:
    """Where a reader of the stream is: see the module's docstring. Encoded as ``version.progress.status.rec``
    (``.end`` added once the final diagnosis was sent), e.g. ``12.3fa2c1b0.b0d9e17c.7c4e2219``."""

    version: int = -1
    progress: str = _UNSENT
    status: str = _UNSENT
    recommendation: str = _UNSENT
    final: bool = False

    def encode(self) -> str:
        text = f"{self.version}.{self.progress}.{self.status}.{self.recommendation}"
        return f"{text}.{_END}" if self.final else text

    @classmethod
    def decode(cls, text: str | None) -> Cursor:
        """The cursor of an event id; a fresh one (everything unsent) for ``None`` or an empty id.

        Raises:
            InvalidInputError: ``text`` is not an id this stream sent.
        """
        if not text or not text.strip():
            return cls()
        parts = text.strip().split(".")
        final = len(parts) == 5 and parts[4] == _END
        if len(parts) not in (4, 5) or (len(parts) == 5 and not final) or not _is_version(parts[0]):
            raise InvalidInputError(
                f"Last-Event-ID {text[:100]!r} is not an id of this stream; send the id of the last event received "
                "(or none, to start from the beginning)",
                details={"last_event_id": text[:100]},
            )
        return cls(int(parts[0]), parts[1], parts[2], parts[3], final)


def _is_version(text: str) -> bool:
    """A version as the stream writes one: ``-1`` or a count within the version column's 32-bit integers."""
    return text == "-1" or (text.isascii() and text.isdigit() and len(text) <= 10 and int(text) < 2**31)


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=4).hexdigest()


def recommendation_key(diagnosis: Diagnosis) -> str:
    """What makes a recommendation new: its action, the epoch to restore and the rules that fired (as
    :func:`~trainops.core.recommendation_changes.recommendation_changes` compares them; the reason's wording
    carries counts that change every epoch)."""
    recommendation = diagnosis.recommendation
    rules = ",".join(signal.rule for signal in diagnosis.signals)
    return _digest(f"{recommendation.action}|{recommendation.restore_epoch}|{rules}")


def derive_events(
    operation: Operation,
    version: int,
    epochs: list[EpochRecord],
    diagnosis: Diagnosis | None,
    cursor: Cursor,
    *,
    points: int | None = None,
) -> tuple[list[OperationEvent], Cursor]:
    """The events that bring a reader at ``cursor`` to the operation's stored state, and the cursor after them.
    Pure.

    Args:
        operation: The operation as stored at ``version``.
        version: The operation's version the state was read at.
        epochs: The epochs written after ``cursor.version``, oldest first.
        diagnosis: The diagnosis over the whole history, ``None`` when it has no epochs.
        cursor: What the reader has.
        points: Thin ``epochs`` to at most this many records for display when there are more
            (:func:`~trainops.core.thinning.thin_epochs`, around the diagnosis's best epoch); the ``epochs``
            event then says ``thinned``. The cursor is the same either way.

    Order: new epochs, progress, recommendation, status, and once the operation ended the final diagnosis.
    """
    events: list[OperationEvent] = []
    operation_id = operation.operation_id
    cursor = replace(cursor, version=max(version, cursor.version))
    if epochs:
        thinned = points is not None and len(epochs) > points
        if points is not None and thinned:
            epochs = thin_epochs(epochs, points, best_epoch=diagnosis.best_epoch if diagnosis else None)
        events.append(EpochsEvent(id=cursor.encode(), operation_id=operation_id, epochs=epochs, thinned=thinned))
    progress = _digest(operation.progress.model_dump_json())
    if progress != cursor.progress:
        cursor = replace(cursor, progress=progress)
        events.append(ProgressEvent(id=cursor.encode(), operation_id=operation_id, progress=operation.progress))
    if diagnosis is not None:
        recommendation = recommendation_key(diagnosis)
        if recommendation != cursor.recommendation:
            cursor = replace(cursor, recommendation=recommendation)
            events.append(RecommendationEvent(id=cursor.encode(), operation_id=operation_id, diagnosis=diagnosis))
    status = _digest(f"{operation.status}|{operation.cancel_requested}|{operation.cancel_reason}")
    if status != cursor.status:
        cursor = replace(cursor, status=status)
        events.append(
            StatusEvent(
                id=cursor.encode(),
                operation_id=operation_id,
                status=operation.status,
                cancel_requested=operation.cancel_requested,
                cancel_reason=operation.cancel_reason,
                error=operation.error,
                started_at=operation.started_at,
                completed_at=operation.completed_at,
                epochs_completed=operation.epochs_completed,
                total_epochs=operation.total_epochs,
            )
        )
    if operation.status.is_terminal and not cursor.final:
        cursor = replace(cursor, final=True)
        events.append(
            DiagnosisEvent(id=cursor.encode(), operation_id=operation_id, status=operation.status, diagnosis=diagnosis)
        )
    return events, cursor


@dataclass(frozen=True)
class EventBatch:
    """What one read of the store gave: the events, the cursor after them, and whether the stream is over (the
    operation ended and its final diagnosis was sent)."""

    events: list[OperationEvent]
    cursor: Cursor
    ended: bool


def read_events(
    service: OperationsService, operation_id: str, cursor: Cursor, *, points: int | None = None
) -> EventBatch:
    """The events since ``cursor``, read from the store: the operation and its new epochs in one transaction
    (the rows written after ``cursor.version``; a new reader's whole history from the service's history cache),
    and the diagnosis from that cache (shared with every metrics poll, computed once per version), only when
    there are new epochs or none was sent yet. An
    ``epochs`` event of more than ``points`` epochs is thinned for display (see :func:`derive_events`).

    Raises:
        NotFoundError: no such operation.
    """
    if cursor.version < 0:  # a new reader: the whole history, as the metrics reads have it cached
        history = service.history(operation_id)
        operation, version, epochs = history.operation, history.version, history.epochs
    else:
        operation, version, epochs = _consistent_history(service, operation_id, cursor.version)
    if cursor.version > version:  # versions only grow: no event of this run carried it
        raise InvalidInputError(
            f"Last-Event-ID {cursor.encode()!r} is past this run's latest event (version {version}): it is not an id "
            "of this stream; send the id of the last event received (or none, to start from the beginning)",
            details={"last_event_id": cursor.encode()[:100], "version": version},
        )
    diagnosis = None
    wanted = epochs or cursor.recommendation == _UNSENT or (operation.status.is_terminal and not cursor.final)
    if wanted and operation.epochs_completed:
        # since_epoch: the answer's epochs are not needed here, only the diagnosis over all of them
        _, metrics = service.metrics_snapshot(operation_id, since_epoch=operation.last_epoch, version=version)
        judged = metrics.metrics
        diagnosis = Diagnosis.model_validate({name: getattr(judged, name) for name in Diagnosis.model_fields})
    events, cursor = derive_events(operation, version, epochs, diagnosis, cursor, points=points)
    return EventBatch(events, cursor, ended=operation.status.is_terminal)


CONSISTENT_READ_ATTEMPTS = 5


def _consistent_history(
    service: OperationsService, operation_id: str, after: int
) -> tuple[Operation, int, list[EpochRecord]]:
    """The operation, its version and the epochs written after version ``after``, all as of that version.

    On SQLite the store's read transaction is a snapshot. On PostgreSQL (READ COMMITTED) the epochs are read by a
    later statement than the operation's row, so they may include rows of a write that committed in between: sent
    under the older version, they would come again with the next read. The version read again afterwards tells:
    unchanged, nothing committed in between; changed, read again. A run writing faster than that settles gets its
    epochs past the row's ``last_epoch`` left for the next read (an epoch re-written in that instant may then
    come twice; appends never do).
    """
    store = service.store
    for _ in range(1 if store.is_local else CONSISTENT_READ_ATTEMPTS):
        operation, version, epochs = store.history(operation_id, after_version=after if after >= 0 else None)
        if store.is_local or store.version(operation_id).version == version:
            return operation, version, epochs
    last = operation.last_epoch
    return operation, version, [record for record in epochs if last is not None and record.epoch <= last]
