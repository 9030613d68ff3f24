"""The operation store: operations and their epoch metrics in SQL, handed out as domain objects.

Rows never leave this module; integrity problems become trainops errors here, not in the API.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Engine,
    Float,
    Row,
    String,
    and_,
    bindparam,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from trainops.core.cancellation import CancelRequest
from trainops.core.epoch import EpochRecord
from trainops.core.listing import CursorPosition, OperationFilter, OperationSort
from trainops.core.numbers import format_metric, parse_metric
from trainops.core.operation import (
    ACTIVE_STATUSES,
    STORED,
    UNSET,
    Operation,
    OperationMetadata,
    OperationStatus,
    WriteAck,
    ended_after_cancel,
    operation_not_found,
)
from trainops.core.policy import Mode
from trainops.core.progress import Phase, ProgressState
from trainops.core.steps import StepRecord, thin_steps
from trainops.errors import ConflictError, InvalidInputError
from trainops.store.tables import STANDARD_COLUMNS, epoch_metrics, operation_tags, operations, step_metrics
from trainops.store.transactions import reading, writing

_METRIC_COLUMNS = (*STANDARD_COLUMNS, "step", "duration", "timestamp", "extra", "non_finite")
_LOCKED_COLUMNS = (
    operations.c.seq,
    operations.c.id,
    operations.c.status,
    operations.c.started_at,
    operations.c.metadata,
    operations.c.tags,
    operations.c.progress,
    operations.c.cancel_requested_at,
    operations.c.cancel_reason,
    operations.c.epochs_completed,
    operations.c.last_epoch,
    operations.c.version,
)
_STEP_COLUMNS = (
    operations.c.seq,
    operations.c.id,
    operations.c.status,
    operations.c.started_at,
    operations.c.cancel_requested_at,
    operations.c.cancel_reason,
    operations.c.step_count,
    operations.c.last_step,
    operations.c.step_origin,
    operations.c.step_stride,
)
_STEP_ROW_COLUMNS = ("step", "epoch", "timestamp", "metrics")
_NUMBER_COLUMNS = frozenset({*STANDARD_COLUMNS, "duration"})
_IN_LIST_CHUNK = 1000  # stay far below SQLite's limit on bound parameters per statement
_SEARCHED_METADATA = ("strategy", "task", "symbol")

logger = logging.getLogger("trainops.store")


@dataclass(frozen=True, slots=True)
class StoredSteps:
    """An operation's per-step series as stored: its points (oldest first) and the spacing of thinned ones."""

    operation_id: str
    stride: int
    points: list[StepRecord]


@dataclass(frozen=True, slots=True)
class StoredBest:
    """The best finite value of one metric over an operation's epochs (the earliest epoch among equals), or
    ``value`` and ``epoch`` ``None`` when the run reported the metric only as NaN or infinite."""

    value: float | None
    epoch: int | None


@dataclass(frozen=True, slots=True)
class DeletedRows:
    """What :meth:`OperationStore.delete` removed: the operation as it was, and how many rows of its history."""

    operation: Operation
    epochs: int
    steps: int


@dataclass(frozen=True, slots=True)
class OperationVersion:
    """What an ETag needs: changes whenever the operation or any of its epochs does."""

    operation_id: str
    status: OperationStatus
    version: int


@dataclass(frozen=True, slots=True)
class ListVersion:
    """What a list's ETag needs: changes whenever an operation matching the list's filters is added, deleted,
    written (every write but a heartbeat adds one to its version and sets its ``updated_at``), or enters or
    leaves the filters."""

    count: int
    version_sum: int
    latest_update: str | None
    latest_seq: int | None

    @property
    def key(self) -> str:
        """The four in one string, for a hash."""
        return f"{self.count}|{self.version_sum}|{self.latest_update}|{self.latest_seq}"


def _finished(operation_id: str, status: str, action: str) -> ConflictError:
    if action == "cancel requests":  # a cancel that came too late wants how the run ended, not how to report another
        advice = ": there is nothing left to stop; its results say how it ended"
    else:
        advice = ". Register a new operation to record another run."
    return ConflictError(
        f"operation {operation_id} is already {status}; it accepts no more {action}{advice}",
        details={"operation_id": operation_id, "status": status},
    )


class OperationStore:
    """SQL persistence of operations and epoch metrics (SQLite or PostgreSQL, same behaviour)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.is_local = engine.dialect.name == "sqlite"
        """A local file: calls take well under a millisecond and writes queue for one lock anyway."""
        # Statements on the write path are built once: SQLAlchemy then reuses their compiled form.
        dialect_insert = postgresql_insert if engine.dialect.name == "postgresql" else sqlite_insert
        insert_into = dialect_insert(epoch_metrics)
        self._upsert_epochs = insert_into.on_conflict_do_update(
            index_elements=[epoch_metrics.c.operation_seq, epoch_metrics.c.epoch],
            set_={name: insert_into.excluded[name] for name in (*_METRIC_COLUMNS, "revision")},
        )
        self._stored_epochs = select(epoch_metrics.c.epoch).where(
            epoch_metrics.c.operation_seq == bindparam("seq"),
            epoch_metrics.c.epoch.in_(bindparam("epochs", expanding=True)),
        )
        self._lock_row = select(*_LOCKED_COLUMNS).where(operations.c.id == bindparam("id")).with_for_update()
        self._record_epochs = (
            update(operations)
            .where(operations.c.seq == bindparam("b_seq"))
            .values(
                status=bindparam("b_status"),
                started_at=bindparam("b_started_at"),
                epochs_completed=bindparam("b_completed"),
                last_epoch=bindparam("b_last_epoch"),
                last_heartbeat=bindparam("b_now"),
                updated_at=bindparam("b_now"),
                version=operations.c.version + 1,
            )
        )
        self._record_progress = (
            update(operations)
            .where(operations.c.seq == bindparam("b_seq"))
            .values(
                status=bindparam("b_status"),
                started_at=bindparam("b_started_at"),
                progress=bindparam("b_progress", type_=operations.c.progress.type),
                last_heartbeat=bindparam("b_now"),
                updated_at=bindparam("b_now"),
                version=operations.c.version + 1,
            )
        )
        self._record_heartbeat = (
            update(operations).where(operations.c.seq == bindparam("b_seq")).values(last_heartbeat=bindparam("b_now"))
        )
        insert_steps = dialect_insert(step_metrics)
        self._upsert_steps = insert_steps.on_conflict_do_update(
            index_elements=[step_metrics.c.operation_seq, step_metrics.c.step],
            set_={name: insert_steps.excluded[name] for name in ("epoch", "timestamp", "metrics")},
        )
        self._stored_steps = select(step_metrics.c.step).where(
            step_metrics.c.operation_seq == bindparam("seq"),
            step_metrics.c.step.in_(bindparam("steps", expanding=True)),
        )
        self._all_steps = (
            select(step_metrics.c.step)
            .where(step_metrics.c.operation_seq == bindparam("seq"))
            .order_by(step_metrics.c.step)
        )
        self._drop_steps = delete(step_metrics).where(
            step_metrics.c.operation_seq == bindparam("seq"),
            step_metrics.c.step.in_(bindparam("steps", expanding=True)),
        )
        self._lock_steps = select(*_STEP_COLUMNS).where(operations.c.id == bindparam("id")).with_for_update()
        # Steps change the series, not the operation: its version (the epochs' ETag) moves only when the write
        # starts a pending operation.
        self._record_steps = (
            update(operations)
            .where(operations.c.seq == bindparam("b_seq"))
            .values(
                status=bindparam("b_status"),
                started_at=bindparam("b_started_at"),
                step_count=bindparam("b_count"),
                last_step=bindparam("b_last_step"),
                step_origin=bindparam("b_origin"),
                step_stride=bindparam("b_stride"),
                last_heartbeat=bindparam("b_now"),
                version=operations.c.version + bindparam("b_started"),
            )
        )

    # -- transactions ---------------------------------------------------------------------------------------

    def _reading(self) -> AbstractContextManager[Connection]:
        return reading(self.engine)

    def _writing(self) -> AbstractContextManager[Connection]:
        return writing(self.engine)

    def _lock(self, connection: Connection, operation_id: str) -> Any:
        """The operation's row (the columns writes need), locked for the rest of the write transaction."""
        row = connection.execute(self._lock_row, {"id": operation_id}).first()
        if row is None:
            raise operation_not_found(operation_id)
        return row

    # -- operations -----------------------------------------------------------------------------------------

    def insert(self, operation: Operation) -> Operation:
        values = {
            "id": operation.operation_id,
            "operation_type": operation.operation_type,
            "status": operation.status.value,
            "executor": operation.metadata.executor,
            "created_at": operation.created_at,
            "started_at": operation.started_at,
            "updated_at": operation.updated_at,
            "progress": operation.progress.model_dump(mode="json"),
            "metadata": operation.metadata.model_dump(mode="json"),
            "name": operation.name,
            "tags": list(operation.tags) or None,
            "notes": operation.notes,
            "total_epochs": operation.total_epochs,
            "epochs_completed": 0,
            "version": 0,
        }
        try:
            with self._writing() as connection:
                seq = connection.execute(insert(operations).values(**values).returning(operations.c.seq)).scalar_one()
                _write_tags(connection, seq, operation.tags)
        except IntegrityError:
            raise ConflictError(
                f"operation {operation.operation_id} already exists",
                details={"operation_id": operation.operation_id},
            ) from None
        return self.get(operation.operation_id)

    def get(self, operation_id: str) -> Operation:
        with self._reading() as connection:
            row = connection.execute(select(operations).where(operations.c.id == operation_id)).first()
        if row is None:
            raise operation_not_found(operation_id)
        return _operation(row)

    def version(self, operation_id: str) -> OperationVersion:
        with self._reading() as connection:
            row = connection.execute(
                select(operations.c.status, operations.c.version).where(operations.c.id == operation_id)
            ).first()
        if row is None:
            raise operation_not_found(operation_id)
        return OperationVersion(operation_id, OperationStatus(row.status), row.version)

    def acknowledge(self, operation_id: str) -> WriteAck:
        """The answer to a write that was accepted but not stored (a throttled progress update)."""
        with self._reading() as connection:
            row = connection.execute(
                select(
                    operations.c.id,
                    operations.c.status,
                    operations.c.cancel_requested_at,
                    operations.c.cancel_reason,
                ).where(operations.c.id == operation_id)
            ).first()
        if row is None:
            raise operation_not_found(operation_id)
        if OperationStatus(row.status).is_terminal:
            raise _finished(operation_id, row.status, "progress")
        return _ack(row, OperationStatus(row.status), accepted=0)

    def list_operations(
        self,
        filters: OperationFilter | None = None,
        sort: OperationSort | None = None,
        *,
        limit: int = 100,
        offset: int = 0,
        after: CursorPosition | None = None,
    ) -> tuple[list[Operation], int, int, CursorPosition | None]:
        """A page of the operations that match ``filters``, in ``sort`` order (newest first by default), with the
        total and active counts over all matches, and where the page ended when more follow.

        ``after`` starts the page strictly after a position a previous page ended at (keyset paging: stable while
        operations are added); ``offset`` then skips from there.
        """
        filters = filters or OperationFilter()
        sort = sort or OperationSort()
        conditions = self._conditions(filters)
        key, source = self._sort_key(sort, conditions)
        missing = case((key.is_(None), 1), else_=0)
        ordered = (key.desc(), operations.c.seq.desc()) if sort.descending else (key.asc(), operations.c.seq.asc())
        page_conditions = list(conditions)
        if after is not None:
            page_conditions.append(self._after(key, sort, after))
        is_active = case((operations.c.status.in_([s.value for s in ACTIVE_STATUSES]), 1), else_=0)
        with self._reading() as connection:
            total, active = connection.execute(
                select(func.count(), func.coalesce(func.sum(is_active), 0)).select_from(operations).where(*conditions)
            ).one()
            rows = connection.execute(
                select(operations, key.label("sort_key"))
                .select_from(source)
                .where(*page_conditions)
                .order_by(missing, *ordered)
                .limit(limit + 1)
                .offset(offset)
            ).all()
        more = len(rows) > limit
        rows = rows[:limit]
        ended = None
        if more and rows:
            last = rows[-1]
            value = last.sort_key
            if isinstance(value, datetime):
                value = value.isoformat()
            elif value is not None:
                value = float(value)
            ended = CursorPosition(value=value, seq=last.seq)
        return _readable(rows), int(total), int(active), ended

    def list_version(self, filters: OperationFilter | None = None) -> ListVersion:
        """One aggregate over the operations matching ``filters`` (no row is read out): cheap enough to answer
        a list's unchanged poll with a 304. Versions only grow, so their sum moves with any write; the count moves
        with a run added, deleted or leaving the filters; the latest ``updated_at`` and ``seq`` with a run that
        entered them or replaced a deleted one."""
        conditions = self._conditions(filters or OperationFilter())
        with self._reading() as connection:
            count, version_sum, latest_update, latest_seq = connection.execute(
                select(
                    func.count(),
                    func.coalesce(func.sum(operations.c.version), 0),
                    func.max(operations.c.updated_at),
                    func.max(operations.c.seq),
                )
                .select_from(operations)
                .where(*conditions)
            ).one()
        latest = latest_update.isoformat() if isinstance(latest_update, datetime) else latest_update
        return ListVersion(
            count=int(count),
            version_sum=int(version_sum),
            latest_update=None if latest is None else str(latest),
            latest_seq=None if latest_seq is None else int(latest_seq),
        )

    def _conditions(self, filters: OperationFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if filters.statuses:
            conditions.append(operations.c.status.in_(sorted(status.value for status in filters.statuses)))
        if filters.operation_type:
            conditions.append(operations.c.operation_type == filters.operation_type)
        if filters.name is not None:
            conditions.append(func.lower(operations.c.name) == filters.name.lower())
        for tag in filters.tags:
            conditions.append(
                exists().where(operation_tags.c.operation_seq == operations.c.seq, operation_tags.c.tag == tag)
            )
        for field in ("strategy", "symbol", "timeframe"):
            wanted = getattr(filters, field)
            if wanted is not None:
                conditions.append(self._metadata_text(field) == wanted)
        if filters.created_after is not None:
            conditions.append(operations.c.created_at >= filters.created_after)
        if filters.created_before is not None:
            conditions.append(operations.c.created_at < filters.created_before)
        if filters.q:
            conditions.append(self._search(filters.q))
        return conditions

    def _search(self, text: str) -> ColumnElement[bool]:
        """Case-insensitive containment of ``text`` in the name, id, notes, strategy, task, symbol or a tag (SQL
        ``LIKE`` with its wildcards escaped, so ``50%`` means those three characters)."""
        escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"

        def contains(column: ColumnElement[Any]) -> ColumnElement[bool]:
            return func.lower(column).like(pattern, escape="\\")

        fields: list[ColumnElement[Any]] = [operations.c.name, operations.c.id, operations.c.notes]
        fields += [self._metadata_text(field) for field in _SEARCHED_METADATA]
        tagged = exists().where(operation_tags.c.operation_seq == operations.c.seq, contains(operation_tags.c.tag))
        return or_(*[contains(field) for field in fields], tagged)

    def _metadata_text(self, field: str) -> ColumnElement[Any]:
        """A top-level metadata field as text (NULL when absent)."""
        if self.is_local:
            return func.json_extract(operations.c.metadata, _json_path(field))
        return operations.c.metadata.op("->>")(literal(field, String))

    def _sort_key(self, sort: OperationSort, conditions: list[ColumnElement[bool]]) -> tuple[ColumnElement[Any], Any]:
        """The expression ``sort`` orders by (NULL for runs without the value), and what to select it from."""
        if sort.key == "created":
            return operations.c.created_at, operations
        if sort.key == "duration":
            # until it ends, a run has lasted up to its latest write
            end = func.coalesce(operations.c.completed_at, operations.c.updated_at)
            if self.is_local:
                seconds = (func.julianday(end) - func.julianday(operations.c.started_at)) * 86400.0
            else:
                seconds = func.date_part("epoch", end - operations.c.started_at)
            return cast(seconds, Float), operations
        assert sort.metric is not None
        value, finite, _ = self._metric_expressions(sort.metric)
        best = func.min if sort.mode == "min" else func.max
        matching = select(operations.c.seq).where(*conditions)
        bests = (
            select(
                epoch_metrics.c.operation_seq.label("seq"),
                best(case((finite, cast(value, Float)), else_=None)).label("best"),
            )
            .where(epoch_metrics.c.operation_seq.in_(matching))
            .group_by(epoch_metrics.c.operation_seq)
            .subquery()
        )
        return bests.c.best, operations.outerjoin(bests, bests.c.seq == operations.c.seq)

    @staticmethod
    def _after(key: ColumnElement[Any], sort: OperationSort, position: CursorPosition) -> ColumnElement[bool]:
        """The rows strictly after ``position`` in the order of ``sort`` (runs without a value last)."""
        tie = operations.c.seq < position.seq if sort.descending else operations.c.seq > position.seq
        if position.value is None:
            return and_(key.is_(None), tie)
        value: Any = position.value
        if sort.key == "created":
            try:
                value = datetime.fromisoformat(str(value))
            except ValueError:
                value = None
            if value is None or value.tzinfo is None:
                raise InvalidInputError(
                    "cursor is not one this list handed out: pass the next_cursor of the previous page unchanged",
                    details={"cursor_value": str(position.value)[:64]},
                )
        elif not isinstance(value, float):
            raise InvalidInputError(
                "cursor is not one this list handed out: pass the next_cursor of the previous page unchanged",
                details={"cursor_value": str(position.value)[:64]},
            )
        beyond = key < value if sort.descending else key > value
        return or_(and_(key.is_not(None), or_(beyond, and_(key == value, tie))), key.is_(None))

    def start(self, operation_id: str, now: datetime, worker: str | None = None) -> Operation:
        with self._writing() as connection:
            row = self._lock(connection, operation_id)
            if row.status != OperationStatus.PENDING:
                raise ConflictError(
                    f"operation {operation_id} is {row.status}; only a pending operation can be started",
                    details={"operation_id": operation_id, "status": row.status},
                )
            values: dict[str, Any] = {"status": OperationStatus.RUNNING.value, "started_at": now}
            if worker:
                values["metadata"] = {**(row.metadata or {}), "worker": worker}
            self._touch(connection, row, now, **values)
        return self.get(operation_id)

    def write_progress(self, operation_id: str, progress: ProgressState, now: datetime) -> WriteAck:
        with self._writing() as connection:
            row = self._lock(connection, operation_id)
            if OperationStatus(row.status).is_terminal:
                raise _finished(operation_id, row.status, "progress")
            running = self._running_values(row, now)
            status = OperationStatus(running.get("status", row.status))
            connection.execute(
                self._record_progress,
                {
                    "b_seq": row.seq,
                    "b_status": status.value,
                    "b_started_at": running.get("started_at", row.started_at),
                    "b_progress": progress.model_dump(mode="json"),
                    "b_now": now,
                },
            )
        return _ack(row, status, accepted=1)

    def heartbeat(self, operation_id: str, now: datetime) -> WriteAck:
        with self._writing() as connection:
            row = self._lock(connection, operation_id)
            if OperationStatus(row.status).is_terminal:
                raise _finished(operation_id, row.status, "heartbeats")
            connection.execute(self._record_heartbeat, {"b_seq": row.seq, "b_now": now})
        return _ack(row, OperationStatus(row.status), accepted=0)

    def write_epochs(self, operation_id: str, records: Sequence[EpochRecord], now: datetime) -> WriteAck:
        """Upsert epoch records: a re-sent epoch replaces the stored one, never duplicates it.

        The cost is in the size of the write, not of the history: new epochs are counted by looking up only
        the epochs being written.
        """
        latest: dict[int, EpochRecord] = {record.epoch: record for record in records}
        with self._writing() as connection:
            row = self._lock(connection, operation_id)
            if OperationStatus(row.status).is_terminal:
                raise _finished(operation_id, row.status, "metrics")
            completed, last_epoch = row.epochs_completed, row.last_epoch
            if latest:
                epochs = list(latest)
                stored = 0
                if last_epoch is not None and min(epochs) <= last_epoch:  # appending needs no look-up
                    stored = sum(
                        len(connection.execute(self._stored_epochs, {"seq": row.seq, "epochs": chunk}).all())
                        for chunk in (epochs[i : i + _IN_LIST_CHUNK] for i in range(0, len(epochs), _IN_LIST_CHUNK))
                    )
                revision = row.version + 1  # the version _touch gives the operation below, under our lock
                connection.execute(
                    self._upsert_epochs, [_metric_row(row.seq, record, now, revision) for record in latest.values()]
                )
                completed += len(latest) - stored
                last_epoch = max(epochs) if last_epoch is None else max(last_epoch, *epochs)
            status = OperationStatus.RUNNING  # writing to a pending operation starts it
            connection.execute(
                self._record_epochs,
                {
                    "b_seq": row.seq,
                    "b_status": status.value,
                    "b_started_at": row.started_at or now,
                    "b_completed": completed,
                    "b_last_epoch": last_epoch,
                    "b_now": now,
                },
            )
        return _ack(row, status, accepted=len(latest))

    def write_steps(
        self, operation_id: str, points: Sequence[StepRecord], now: datetime, *, max_points: int
    ) -> WriteAck:
        """Upsert step points (a re-sent step replaces the stored one), keeping at most ``max_points`` per run.

        The operation's row counts the stored points, so a write that stays under the cap costs its own size;
        one that passes it reads the run's steps once and thins them (:func:`~trainops.core.steps.thin_steps`)
        to half the cap, which leaves room for as many writes before the next thinning: O(1) per point amortised.
        New points that the thinning drops are never written.
        """
        latest: dict[int, StepRecord] = {point.step: point for point in points}
        with self._writing() as connection:
            row = connection.execute(self._lock_steps, {"id": operation_id}).first()
            if row is None:
                raise operation_not_found(operation_id)
            if OperationStatus(row.status).is_terminal:
                raise _finished(operation_id, row.status, "steps")
            count, last_step, origin, stride = row.step_count, row.last_step, row.step_origin, row.step_stride
            if latest:
                steps = sorted(latest)
                origin = steps[0] if origin is None else origin
                stored = 0
                if last_step is not None and steps[0] <= last_step:  # appending needs no look-up
                    stored = sum(
                        len(connection.execute(self._stored_steps, {"seq": row.seq, "steps": chunk}).all())
                        for chunk in _chunks(steps)
                    )
                count += len(steps) - stored
                last_step = steps[-1] if last_step is None else max(last_step, steps[-1])
                if count > max_points:
                    existing = connection.execute(self._all_steps, {"seq": row.seq}).scalars().all()
                    thinning = thin_steps(sorted({*existing, *steps}), max_points, origin=origin, stride=stride)
                    kept = set(thinning.kept)
                    for chunk in _chunks([step for step in existing if step not in kept]):
                        connection.execute(self._drop_steps, {"seq": row.seq, "steps": chunk})
                    steps = [step for step in steps if step in kept]
                    count, stride = len(kept), thinning.stride
                if steps:
                    connection.execute(self._upsert_steps, [_step_row(row.seq, latest[step], now) for step in steps])
            started = row.status == OperationStatus.PENDING  # writing to a pending operation starts it
            connection.execute(
                self._record_steps,
                {
                    "b_seq": row.seq,
                    "b_status": OperationStatus.RUNNING.value,
                    "b_started_at": row.started_at or now,
                    "b_count": count,
                    "b_last_step": last_step,
                    "b_origin": origin,
                    "b_stride": stride,
                    "b_now": now,
                    "b_started": int(started),
                },
            )
        return _ack(row, OperationStatus.RUNNING, accepted=len(latest))

    def finish(
        self,
        operation_id: str,
        status: OperationStatus,
        now: datetime,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
        progress: ProgressState | None = None,
    ) -> Operation:
        """End the operation; ``progress``, when given, is where it was last (an update not stored yet)."""
        with self._writing() as connection:
            row = self._lock(connection, operation_id)
            if OperationStatus(row.status).is_terminal:
                raise _finished(operation_id, row.status, "completion")
            values: dict[str, Any] = {
                "status": status.value,
                "completed_at": now,
                "result": result,
                "error": error,
            }
            if status is OperationStatus.COMPLETED:
                last = progress or ProgressState.model_validate(row.progress or {})
                done = {"percentage": 100.0, "phase": Phase.FINISHED.value, "message": "Completed"}
                values["progress"] = _progress_at(last, now, **done)
            elif progress is not None:  # failed and cancelled runs keep where they stopped: here, as last said
                values["progress"] = _progress_at(progress, now)
            if row.started_at is None and status is OperationStatus.COMPLETED:
                values["started_at"] = now  # it ran: its start was never said. One failed or cancelled before it
                # started (a queue that stopped, a worker that could not be spawned) never started at all
            self._touch(connection, row, now, **values)
        return self.get(operation_id)

    def update_metadata(
        self, operation_id: str, merge: Callable[[dict[str, Any]], dict[str, Any]], now: datetime
    ) -> Operation:
        """Replace the operation's metadata with ``merge(stored metadata)``, read and written under the row's lock:
        two updates at once never lose each other's keys. Any status is accepted (metadata describes the run; it
        may be annotated after it ended). ``merge`` may raise to refuse; nothing is written then."""
        return self.update_operation(operation_id, now, merge=merge)

    def update_operation(
        self,
        operation_id: str,
        now: datetime,
        *,
        merge: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
        name: str | None = UNSET,
        notes: str | None = UNSET,
        retag: Callable[[list[str]], list[str]] | None = None,
    ) -> Operation:
        """Change what describes an operation, in any status, under the row's lock (two updates at once never lose
        each other's changes): its metadata to ``merge(stored metadata)``, its ``name`` and ``notes`` when given
        (``None`` clears), its tags to ``retag(stored tags)``. ``merge`` and ``retag`` may raise to refuse; nothing
        is written then."""
        with self._writing() as connection:
            row = self._lock(connection, operation_id)
            values: dict[str, Any] = {}
            if merge is not None:
                values["metadata"] = merge(dict(row.metadata or {}))
            if name is not UNSET:
                values["name"] = name
            if notes is not UNSET:
                values["notes"] = notes
            if retag is not None:
                stored = list(row.tags or [])
                tags = retag(stored)
                if tags != stored:
                    values["tags"] = tags or None
                    _write_tags(connection, row.seq, tags)
            self._touch(connection, row, now, **values)
        return self.get(operation_id)

    def request_cancel(self, operation_id: str, reason: str, requested_by: str, now: datetime) -> Operation:
        """Record a stop request. A pending operation has nobody to tell, so it is cancelled at once; a
        running one keeps running until its trainer sees the request and ends it."""
        with self._writing() as connection:
            row = self._lock(connection, operation_id)
            if OperationStatus(row.status).is_terminal:
                raise _finished(operation_id, row.status, "cancel requests")
            values: dict[str, Any] = {}
            if row.cancel_requested_at is None:  # the first request's reason is the one that stands
                values = {
                    "cancel_reason": reason,
                    "cancel_requested_by": requested_by,
                    "cancel_requested_at": now,
                }
            if row.status == OperationStatus.PENDING:
                values.update(status=OperationStatus.CANCELLED.value, completed_at=now, error=None)
            self._touch(connection, row, now, **values)
        return self.get(operation_id)

    def delete(self, operation_id: str) -> DeletedRows:
        """Remove an ended operation and every row of its history (epochs, steps, tags; its progress, cancel request
        and result are columns of its own row), in one transaction under the row's lock: a trainer writing at the same
        moment either lands first (and the run is then still active: refused) or finds no operation.

        Raises:
            NotFoundError: no such operation (a second delete included).
            ConflictError: it is pending or running; nothing is removed.
        """
        with self._writing() as connection:
            row = connection.execute(
                select(operations).where(operations.c.id == operation_id).with_for_update()
            ).first()
            if row is None:
                raise operation_not_found(operation_id)
            if not OperationStatus(row.status).is_terminal:
                raise ConflictError(
                    f"operation {operation_id} is {row.status}: cancel it first (DELETE /operations/{operation_id} "
                    f"with a reason, or `trainops ops cancel {operation_id} --reason ...`), then delete it once it "
                    "ended",
                    details={"operation_id": operation_id, "status": row.status},
                )
            # every table keyed by the operation's seq, explicitly (their foreign keys cascade too)
            connection.execute(delete(operation_tags).where(operation_tags.c.operation_seq == row.seq))
            steps = connection.execute(delete(step_metrics).where(step_metrics.c.operation_seq == row.seq)).rowcount
            epochs = connection.execute(delete(epoch_metrics).where(epoch_metrics.c.operation_seq == row.seq)).rowcount
            connection.execute(delete(operations).where(operations.c.seq == row.seq))
        return DeletedRows(_operation(row), epochs=epochs, steps=steps)

    def fail_orphans(
        self,
        executor: str,
        reason: str,
        now: datetime,
        is_orphan: Callable[[str | None, datetime | None], bool],
    ) -> list[str]:
        """End the active operations of ``executor`` whose worker ``is_orphan`` says is gone (it is given the
        worker and when it was recorded: the start, or the creation of one never started): ``failed`` with
        ``reason``, or ``cancelled`` when a cancel had been asked (the process died before it stopped)."""
        active = [status.value for status in ACTIVE_STATUSES]
        with self._writing() as connection:
            rows = connection.execute(
                select(
                    operations.c.id,
                    operations.c.metadata,
                    operations.c.created_at,
                    operations.c.started_at,
                    operations.c.cancel_reason,
                )
                .where(operations.c.executor == executor, operations.c.status.in_(active))
                .with_for_update()
            ).all()
            orphans = [
                row for row in rows if is_orphan((row.metadata or {}).get("worker"), row.started_at or row.created_at)
            ]
            for row in orphans:
                cancel = row.cancel_reason
                error = reason if cancel is None else ended_after_cancel(cancel, reason)
                connection.execute(
                    update(operations)
                    .where(operations.c.id == row.id)
                    .values(
                        status=(OperationStatus.FAILED if cancel is None else OperationStatus.CANCELLED).value,
                        error=error,
                        completed_at=now,
                        updated_at=now,
                        version=operations.c.version + 1,
                    )
                )
        return [row.id for row in orphans]

    # -- epochs ---------------------------------------------------------------------------------------------

    def history(
        self, operation_id: str, since_epoch: int | None = None, *, after_version: int | None = None
    ) -> tuple[Operation, int, list[EpochRecord]]:
        """The operation, its version and its epochs, oldest first, read in one snapshot so they agree (no epoch
        newer than the version answered).

        Args:
            since_epoch: Only epochs numbered after this one.
            after_version: Only epochs written after the operation was at this version (what a cached copy of
                the history at that version is missing).
        """
        with reading(self.engine, snapshot=True) as connection:
            row = connection.execute(select(operations).where(operations.c.id == operation_id)).first()
            if row is None:
                raise operation_not_found(operation_id)
            query = select(epoch_metrics.c.epoch, *[epoch_metrics.c[name] for name in _METRIC_COLUMNS]).where(
                epoch_metrics.c.operation_seq == row.seq
            )
            if since_epoch is not None:
                query = query.where(epoch_metrics.c.epoch > since_epoch)
            if after_version is not None:
                query = query.where(epoch_metrics.c.revision > after_version)
            rows = connection.execute(query.order_by(epoch_metrics.c.epoch)).all()
        return _operation(row), row.version, [_epoch(row.id, metric_row) for metric_row in rows]

    def versions(self, operation_ids: Collection[str]) -> dict[str, int]:
        """The current version of each of ``operation_ids`` that exists (one query per 1,000 ids)."""
        found: dict[str, int] = {}
        with self._reading() as connection:
            ids = sorted(operation_ids)
            for start in range(0, len(ids), _IN_LIST_CHUNK):
                chunk = ids[start : start + _IN_LIST_CHUNK]
                query = select(operations.c.id, operations.c.version).where(operations.c.id.in_(chunk))
                found.update({row.id: row.version for row in connection.execute(query)})
        return found

    def best_values(self, wanted: Mapping[str, Sequence[tuple[str, Mode]]]) -> dict[tuple[str, str], StoredBest]:
        """The best value of each wanted metric of each operation, in one query over the stored epochs, without
        loading a history.

        Args:
            wanted: Operation id -> the ``(metric, mode)`` pairs to look at (``min``: lowest is best).

        Returns:
            ``(operation id, metric)`` -> its best, for each pair the operation's epochs report at all (NaN and
            infinities count as reported, as :meth:`EpochRecord.value` sees them); pairs never reported are left
            out. Among equal values the earliest epoch is the best, as the diagnosis's strict improvement has it.
        """
        groups: dict[tuple[str, Mode], list[str]] = {}
        for operation_id, pairs in wanted.items():
            for pair in pairs:
                groups.setdefault(pair, []).append(operation_id)
        if not groups:
            return {}
        branches = []
        for (metric, mode), ids in groups.items():
            value, finite, reported = self._metric_expressions(metric)
            finite_first = case((finite, 0), else_=1)
            order = value.asc() if mode == "min" else value.desc()
            rank = func.row_number().over(
                partition_by=epoch_metrics.c.operation_seq, order_by=(finite_first, order, epoch_metrics.c.epoch)
            )
            branches.append(
                select(
                    operations.c.id.label("operation_id"),
                    cast(literal(metric), String(128)).label("metric"),
                    case((finite, cast(value, Float)), else_=None).label("value"),
                    epoch_metrics.c.epoch.label("epoch"),
                    finite_first.label("non_finite"),
                    rank.label("rank"),
                )
                .select_from(epoch_metrics.join(operations, operations.c.seq == epoch_metrics.c.operation_seq))
                .where(operations.c.id.in_(ids), reported)
            )
        ranked = union_all(*branches).subquery()
        query = select(ranked.c.operation_id, ranked.c.metric, ranked.c.value, ranked.c.epoch, ranked.c.non_finite)
        with self._reading() as connection:
            rows = connection.execute(query.where(ranked.c.rank == 1)).all()
        return {
            (row.operation_id, row.metric): StoredBest(None, None)
            if row.non_finite
            else StoredBest(float(row.value), int(row.epoch))
            for row in rows
        }

    def _metric_expressions(self, metric: str) -> tuple[ColumnElement[Any], ColumnElement[bool], ColumnElement[bool]]:
        """One metric of an epoch row in SQL: its value, whether it is a finite number, whether it is reported.

        Standard fields have their column (NULL when not reported or not finite, the non-finite spelling then in
        ``non_finite``); any other metric is a key of the ``extra`` JSON, a number or a non-finite spelling."""
        if metric in _NUMBER_COLUMNS:
            column: Column[Any] = epoch_metrics.c[metric]
            finite = column.is_not(None)
            return column, finite, finite | self._json_has(epoch_metrics.c.non_finite, metric)
        extra = epoch_metrics.c.extra
        if self.is_local:
            path = _json_path(metric)
            kind = func.json_type(extra, path)
            return func.json_extract(extra, path), kind.in_(("integer", "real")), kind.is_not(None)
        member = extra.op("->")(literal(metric, String))
        return (
            cast(extra.op("->>")(literal(metric, String)), Float),
            func.jsonb_typeof(member) == "number",
            member.is_not(None),
        )

    def _json_has(self, column: Column[Any], key: str) -> ColumnElement[bool]:
        if self.is_local:
            return func.json_type(column, _json_path(key)).is_not(None)
        return column.op("->")(literal(key, String)).is_not(None)

    # -- steps ----------------------------------------------------------------------------------------------

    def steps(self, operation_id: str, since_step: int | None = None) -> StoredSteps:
        """The operation's step points after ``since_step`` (all by default), oldest first."""
        with self._reading() as connection:
            row = connection.execute(
                select(operations.c.seq, operations.c.id, operations.c.step_stride).where(
                    operations.c.id == operation_id
                )
            ).first()
            if row is None:
                raise operation_not_found(operation_id)
            query = select(*[step_metrics.c[name] for name in _STEP_ROW_COLUMNS]).where(
                step_metrics.c.operation_seq == row.seq
            )
            if since_step is not None:
                query = query.where(step_metrics.c.step > since_step)
            rows = connection.execute(query.order_by(step_metrics.c.step)).all()
        return StoredSteps(row.id, row.step_stride, [_step(row.id, step_row) for step_row in rows])

    # -- helpers --------------------------------------------------------------------------------------------

    @staticmethod
    def _running_values(row: Row[Any], now: datetime) -> dict[str, Any]:
        """A trainer writing to a pending operation has started it."""
        if row.status == OperationStatus.PENDING:
            return {"status": OperationStatus.RUNNING.value, "started_at": row.started_at or now}
        return {}

    @staticmethod
    def _touch(connection: Connection, row: Row[Any], now: datetime, **values: Any) -> OperationStatus:
        connection.execute(
            update(operations)
            .where(operations.c.seq == row.seq)
            .values(updated_at=now, version=operations.c.version + 1, **values)
        )
        return OperationStatus(values.get("status", row.status))


def _write_tags(connection: Connection, seq: int, tags: Sequence[str]) -> None:
    """Make ``operation_tags`` hold exactly ``tags`` for the operation (the filters' copy of its tags)."""
    connection.execute(delete(operation_tags).where(operation_tags.c.operation_seq == seq))
    if tags:
        connection.execute(insert(operation_tags), [{"operation_seq": seq, "tag": tag} for tag in tags])


def _progress_at(progress: ProgressState, now: datetime, **changes: Any) -> dict[str, Any]:
    """``progress`` with ``changes``, stamped ``now``, as the progress column stores it."""
    return progress.model_copy(update={**changes, "updated_at": now}).model_dump(mode="json")


def _ack(row: Any, status: OperationStatus, *, accepted: int) -> WriteAck:
    return WriteAck(
        operation_id=row.id,
        status=status,
        cancel_requested=row.cancel_requested_at is not None,
        cancel_reason=row.cancel_reason,
        accepted=accepted,
    )


def _readable(rows: Sequence[Row[Any]]) -> list[Operation]:
    """The operations of ``rows``; one that cannot be read (a row no version of trainops should have written) is
    left out with a warning, so it never fails a list."""
    listed = []
    for row in rows:
        try:
            listed.append(_operation(row))
        except ValueError as error:  # pydantic's ValidationError included
            logger.warning("operation %s cannot be read (%s); left out of the list", row.id, error)
    return listed


def _stored_progress(row: Row[Any]) -> ProgressState:
    """The stored progress, or none (with a warning) when it cannot be read: progress is superseded anyway."""
    try:
        return ProgressState.model_validate(row.progress or {})
    except ValueError as error:
        logger.warning("the stored progress of operation %s is unreadable (%s); shown as none", row.id, error)
        return ProgressState()


def _operation(row: Row[Any]) -> Operation:
    cancel = None
    if row.cancel_requested_at is not None:
        cancel = CancelRequest(
            reason=row.cancel_reason or "",
            requested_by=row.cancel_requested_by or "user",
            requested_at=row.cancel_requested_at,
        )
    return Operation(
        operation_id=row.id,
        operation_type=row.operation_type,
        status=OperationStatus(row.status),
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
        updated_at=row.updated_at,
        progress=_stored_progress(row),
        name=row.name,
        tags=list(row.tags or []),
        notes=row.notes,
        metadata=OperationMetadata.model_validate(row.metadata or {}, context=STORED),
        result=row.result,
        error=row.error,
        cancel_request=cancel,
        total_epochs=row.total_epochs,
        epochs_completed=row.epochs_completed,
        last_epoch=row.last_epoch,
        last_heartbeat=row.last_heartbeat,
    )


def _metric_row(seq: int, record: EpochRecord, now: datetime, revision: int) -> dict[str, Any]:
    values: dict[str, Any] = {
        "operation_seq": seq,
        "epoch": record.epoch,
        "step": record.step,
        "duration": record.duration,
        "revision": revision,
    }
    non_finite: dict[str, str | float] = {}
    for name in STANDARD_COLUMNS:
        value: float | None = getattr(record, name)
        if value is not None and not math.isfinite(value):
            non_finite[name] = format_metric(value)
            value = None
        values[name] = value
    values["non_finite"] = non_finite or None
    values["extra"] = {name: format_metric(value) for name, value in record.metrics.items()} or None
    values["timestamp"] = (record.timestamp or now).timestamp()
    return values


def _epoch(operation_id: str, row: Row[Any]) -> EpochRecord:
    """The record of one stored row. A row no version of trainops should have written (a timestamp out of
    ``datetime``'s range, a metric that is not a number) is read as well as it can be, with a warning: one bad row
    never fails the read of a whole history."""
    where = f"epoch {row.epoch} of operation {operation_id}"
    fields: dict[str, Any] = {name: getattr(row, name) for name in STANDARD_COLUMNS}
    if row.non_finite:
        fields.update(_stored_metrics(row.non_finite, where))
    metrics = _stored_metrics(row.extra, where) if row.extra else {}
    return EpochRecord.model_construct(
        epoch=row.epoch,
        step=row.step,
        duration=row.duration,
        timestamp=_stored_time(row.timestamp, where),
        metrics=metrics,
        **fields,
    )


def _stored_time(seconds: float | None, where: str) -> datetime | None:
    """A stored time (seconds since 1970), or ``None`` with a warning when no ``datetime`` can hold it."""
    if seconds is None:
        return None
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError) as error:
        logger.warning(
            "the stored timestamp of %s (%r s since 1970) is unreadable (%s); shown as none", where, seconds, error
        )
        return None


def _stored_metrics(stored: Any, where: str) -> dict[str, float]:
    """Stored metric values by name; a value that is not a number is left out with a warning."""
    if not isinstance(stored, dict):
        logger.warning("the stored metrics of %s are not a JSON object (%r); left out", where, type(stored).__name__)
        return {}
    values: dict[str, float] = {}
    for name, value in stored.items():
        try:
            values[name] = parse_metric(value)
        except ValueError as error:
            logger.warning("the stored metric %r of %s is unreadable (%s); left out", name, where, error)
    return values


def _json_path(key: str) -> str:
    """SQLite's JSON path of one top-level key, quoted so that any metric name is one key."""
    return '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _chunks(values: list[int]) -> list[list[int]]:
    return [values[i : i + _IN_LIST_CHUNK] for i in range(0, len(values), _IN_LIST_CHUNK)]


def _step_row(seq: int, point: StepRecord, now: datetime) -> dict[str, Any]:
    return {
        "operation_seq": seq,
        "step": point.step,
        "epoch": point.epoch,
        "timestamp": (point.timestamp or now).timestamp(),
        "metrics": {name: format_metric(value) for name, value in point.metrics.items()} or None,
    }


def _step(operation_id: str, row: Row[Any]) -> StepRecord:
    where = f"step {row.step} of operation {operation_id}"
    metrics = _stored_metrics(row.metrics, where) if row.metrics else {}
    return StepRecord.model_construct(
        step=row.step, epoch=row.epoch, metrics=metrics, timestamp=_stored_time(row.timestamp, where)
    )
