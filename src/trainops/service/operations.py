"""OperationsService: the lifecycle of operations, their progress and metric history, and queries over them."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypedDict, Unpack

from pydantic import ValidationError

from trainops.core.analysis import analyze
from trainops.core.diagnosis import Diagnosis, OperationMetrics, TrainingMetrics
from trainops.core.epoch import MAX_TIMESTAMP_YEAR, MIN_TIMESTAMP_YEAR, EpochRecord, check_timestamp, utc_year
from trainops.core.listing import OperationFilter, decode_cursor, encode_cursor, list_scope, parse_sort
from trainops.core.lru import LRUCache
from trainops.core.metric_definitions import (
    TieredDefinition,
    history_metric_names,
    monitor_choices,
    policy_for_task,
    reported_definitions,
)
from trainops.core.operation import (
    ACTIVE_STATUSES,
    OPERATION_TYPE_PATTERN,
    STORED,
    UNSET,
    Operation,
    OperationMetadata,
    OperationPage,
    OperationStatus,
    WriteAck,
    check_name,
    check_notes,
    check_tags,
    looks_like_operation_id,
    new_operation_id,
)
from trainops.core.payload import check_text, storable
from trainops.core.policy import MonitorPolicy, check_monitor
from trainops.core.progress import ProgressState
from trainops.core.replay import Replay, replay
from trainops.core.steps import StepRecord, StepSeries
from trainops.core.thinning import MAX_DISPLAY_POINTS, MIN_DISPLAY_POINTS, thin_epochs
from trainops.errors import ConflictError, InvalidInputError, NotFoundError
from trainops.schemas.operations import (
    MAX_EPOCHS_PER_WRITE,
    MAX_LIST_LIMIT,
    MAX_LIST_OFFSET,
    MAX_METADATA_BYTES,
    MAX_METADATA_FIELDS,
    MAX_PLANNED_EPOCHS,
    MAX_REASON_LENGTH,
    PROTECTED_METADATA,
    BestValue,
    OperationResults,
)
from trainops.schemas.steps import MAX_STEPS_PER_WRITE
from trainops.service.history_cache import DEFAULT_MAX_EPOCHS, History, HistoryCache
from trainops.service.throttle import ProgressThrottle
from trainops.service.workers import worker_is_gone
from trainops.store.operations import DeletedRows, ListVersion, OperationStore, OperationVersion

MAX_REPLAY_EPOCHS = 5_000
"""A replay analyses every prefix of the history, so its cost grows with the square of its length: about 35 s of
one CPU at 5,000 epochs, 4.5 s at 2,000 and 1.1 s at 1,000 (``bench/replay.py``). Past this a request would hold a
server thread for minutes."""

ORPHAN_REASON = (
    "The trainops process running this operation stopped before it finished (server restart or crash); "
    "start the training again."
)

_TYPE = re.compile(OPERATION_TYPE_PATTERN)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _checked(check: Callable[[Any], Any], value: Any) -> Any:
    """``check(value)``, its ``ValueError`` an :class:`InvalidInputError` with the same message."""
    try:
        return check(value)
    except ValueError as problem:
        raise InvalidInputError(str(problem)) from None


def _problems(error: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(map(str, item['loc'])) or 'value'}: {str(item['msg']).removeprefix('Value error, ')}"
        for item in error.errors()
    )


def check_points(points: int | None) -> None:
    """Refuse a ``points`` (the most epochs to answer, thinned for display) out of range.

    Raises:
        InvalidInputError: ``points`` is below :data:`MIN_DISPLAY_POINTS` or above :data:`MAX_DISPLAY_POINTS`.
    """
    if points is not None and not MIN_DISPLAY_POINTS <= points <= MAX_DISPLAY_POINTS:
        raise InvalidInputError(
            f"points must be between {MIN_DISPLAY_POINTS} and {MAX_DISPLAY_POINTS:,} (the most epochs to draw; "
            f"leave it out for every epoch), got {points}",
            details={"points": points},
        )


def check_epoch_range(from_epoch: int | None, to_epoch: int | None) -> None:
    """Refuse a range of epochs that holds none: a bound below 0, or ``from_epoch`` after ``to_epoch``.

    Raises:
        InvalidInputError: what is wrong, and how to send it.
    """
    for bound, name in ((from_epoch, "from_epoch"), (to_epoch, "to_epoch")):
        if bound is not None and bound < 0:
            raise InvalidInputError(f"{name} must be 0 or more (an epoch number), got {bound}", details={name: bound})
    if from_epoch is not None and to_epoch is not None and from_epoch > to_epoch:
        raise InvalidInputError(
            f"from_epoch ({from_epoch}) is after to_epoch ({to_epoch}): both bounds are inclusive, so from_epoch "
            "must be at most to_epoch (equal for one epoch)",
            details={"from_epoch": from_epoch, "to_epoch": to_epoch},
        )


def epochs_in_range(
    epochs: Sequence[EpochRecord],
    from_epoch: int | None = None,
    to_epoch: int | None = None,
    *,
    since_epoch: int | None = None,
) -> list[EpochRecord]:
    """The records of ``epochs`` whose epoch lies between ``from_epoch`` and ``to_epoch``, both inclusive (an
    unset bound does not limit), and after ``since_epoch`` when given; the range checked by
    :func:`check_epoch_range`."""
    low = max(-1 if from_epoch is None else from_epoch, -1 if since_epoch is None else since_epoch + 1)
    return [record for record in epochs if record.epoch >= low and (to_epoch is None or record.epoch <= to_epoch)]


def policy_key(policy: MonitorPolicy) -> str:
    """What distinguishes one requested policy's answers from another's (cache keys, ETags).

    Every value, and whether ``monitor`` was chosen: left to its default, a run with a task is judged on the
    task's primary metric (:func:`~trainops.core.metric_definitions.policy_for_task`), while ``val_loss`` named
    explicitly is kept.
    """
    chosen = "monitor" in policy.model_fields_set
    return f"{policy.model_dump_json()}|{'chosen' if chosen else 'default'}"


def _metadata_name(metadata: OperationMetadata) -> str | None:
    """A ``name`` recorded in the metadata, as the run's name when it is a valid one."""
    value = (metadata.model_extra or {}).get("name")
    if not isinstance(value, str):
        return None
    try:
        return check_name(value)
    except ValueError:
        return None


class ListFilters(TypedDict, total=False):
    """The filters of a list of operations (:meth:`OperationsService.list_operations`, its ETag's
    :meth:`~OperationsService.list_version`); see :class:`~trainops.core.listing.OperationFilter` for what each
    matches."""

    status: OperationStatus | Iterable[OperationStatus] | None
    operation_type: str | None
    active_only: bool
    name: str | None
    tags: Sequence[str] | None
    q: str | None
    strategy: str | None
    symbol: str | None
    timeframe: str | None
    created_after: datetime | None
    created_before: datetime | None


class OperationsService:
    """Everything that happens to an operation goes through here, whichever interface asked.

    Args:
        store: Where operations and epochs live.
        progress_interval: Minimum seconds between stored progress updates of one operation.
        max_step_points: The most points of the per-step series one run keeps (at least 2).
        history_cache_epochs: The most epochs kept in memory over all cached histories (see
            :class:`~trainops.service.history_cache.HistoryCache`).
        clock: Current time (tests pass a fake one).
    """

    def __init__(
        self,
        store: OperationStore,
        *,
        progress_interval: float = 0.5,
        max_step_points: int = 1000,
        history_cache_epochs: int = DEFAULT_MAX_EPOCHS,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if max_step_points < 2:
            raise InvalidInputError(
                f"max_step_points must be at least 2 (the first and the latest step), got {max_step_points}"
            )
        self.store = store
        self.max_step_points = max_step_points
        self._clock = clock
        self._throttle = ProgressThrottle(progress_interval)
        self._histories = HistoryCache(store, max_epochs=history_cache_epochs)
        # (operation, version) -> the tier and definition of each metric its history reports: computed once per
        # version, not on every poll (a walk over the whole history)
        self._definitions: LRUCache[tuple[str, int], dict[str, TieredDefinition]] = LRUCache(128)
        # (operation, version) -> its best value (in a 1-tuple: the cache cannot hold None): a runs list polled
        # every few seconds recomputes only the runs that changed since
        self._bests: LRUCache[tuple[str, int], tuple[BestValue | None]] = LRUCache(4096)

    # -- lifecycle ------------------------------------------------------------------------------------------

    def create(
        self,
        operation_type: str = "training",
        *,
        metadata: OperationMetadata | dict[str, Any] | None = None,
        total_epochs: int | None = None,
        operation_id: str | None = None,
        name: str | None = None,
        tags: Sequence[str] | None = None,
        notes: str | None = None,
        started_at: datetime | None = None,
    ) -> Operation:
        """Register a new pending operation, or a running one since ``started_at``.

        ``operation_id`` lets a caller choose the id (``op_{type}_{YYYYmmdd}_{HHMMSS}_{8 hex}``), so a retried
        request cannot start the same work twice: the second one is a conflict. ``name``, ``tags`` and ``notes``
        are what people find the run by later; without a ``name``, a ``name`` in ``metadata`` (how runs were
        titled before they had one) becomes it when it is a valid name. ``started_at`` registers a run that began
        before it could be registered (while the server was away) as running since then (a time in the future
        counts as now).

        Raises:
            InvalidInputError: ``operation_type`` is not a short lowercase name, ``total_epochs`` < 1, or a
                malformed name, tag or notes.
        """
        if not _TYPE.fullmatch(operation_type):
            raise InvalidInputError(
                f"operation_type {operation_type!r} is invalid: use a lowercase name such as 'training' "
                "(letters, digits and '_', at most 32 characters)"
            )
        if total_epochs is not None and not 1 <= total_epochs <= MAX_PLANNED_EPOCHS:
            raise InvalidInputError(f"total_epochs must be between 1 and {MAX_PLANNED_EPOCHS:,}, got {total_epochs}")
        if operation_id is not None and not (
            looks_like_operation_id(operation_id) and operation_id.startswith(f"op_{operation_type}_")
        ):
            raise InvalidInputError(
                f"operation id {operation_id!r} is invalid: use the form op_{operation_type}_20250610_123456_ab12cd34 "
                "(or leave it out and one is made)"
            )
        meta = metadata if isinstance(metadata, OperationMetadata) else OperationMetadata.model_validate(metadata or {})
        name = _checked(check_name, name) if name is not None else _metadata_name(meta)
        checked_tags = _checked(check_tags, tags) if tags is not None else []
        notes = _checked(check_notes, notes) if notes is not None else None
        now = self._clock()
        began = None if started_at is None else min(_checked(check_timestamp, started_at), now)
        operation = Operation(
            operation_id=operation_id or new_operation_id(operation_type, now),
            operation_type=operation_type,
            status=OperationStatus.PENDING if began is None else OperationStatus.RUNNING,
            created_at=began or now,
            started_at=began,
            updated_at=now,
            metadata=meta,
            total_epochs=total_epochs,
            name=name,
            tags=checked_tags,
            notes=notes,
        )
        return self.store.insert(operation)

    def start(self, operation_id: str, *, worker: str | None = None) -> Operation:
        """Mark a pending operation running (writing progress or metrics to it does so too)."""
        if worker is not None:
            try:
                check_text(worker, "worker")
            except ValueError as problem:
                raise InvalidInputError(str(problem)) from None
        return self.store.start(operation_id, self._clock(), worker)

    def report_progress(self, operation_id: str, state: ProgressState) -> WriteAck:
        """Record where the operation is. Throttled per operation; milestones always stored."""
        if not self._throttle.admit(operation_id, state, time.monotonic()):
            return self.store.acknowledge(operation_id)
        now = self._clock()
        try:
            return self.store.write_progress(operation_id, state.model_copy(update={"updated_at": now}), now)
        except (NotFoundError, ConflictError):
            self._throttle.forget(operation_id)  # unknown or ended: keep no state for it
            raise

    def add_epoch(self, operation_id: str, record: EpochRecord) -> WriteAck:
        return self.add_epochs(operation_id, [record])

    def add_epochs(self, operation_id: str, records: Sequence[EpochRecord]) -> WriteAck:
        """Store epoch records; re-sending an epoch replaces it. Starts a pending operation."""
        if len(records) > MAX_EPOCHS_PER_WRITE:
            raise InvalidInputError(
                f"{len(records)} epochs in one write; send at most {MAX_EPOCHS_PER_WRITE:,} per request"
            )
        return self.store.write_epochs(operation_id, records, self._clock())

    def add_steps(self, operation_id: str, points: Sequence[StepRecord]) -> WriteAck:
        """Store points of the per-step series; re-sending a step replaces it. Starts a pending operation.

        A run keeps at most :attr:`max_step_points`: past it, older points are thinned to an even spacing over
        the whole run (see :func:`~trainops.core.steps.thin_steps`). The answer counts the points received, kept
        or thinned, and says whether a stop was requested.

        Raises:
            InvalidInputError: more than 100,000 points in one write.
            ConflictError: the operation already ended.
        """
        if len(points) > MAX_STEPS_PER_WRITE:
            raise InvalidInputError(
                f"{len(points):,} steps in one write; send at most {MAX_STEPS_PER_WRITE:,} per request"
            )
        return self.store.write_steps(operation_id, points, self._clock(), max_points=self.max_step_points)

    def heartbeat(self, operation_id: str) -> WriteAck:
        return self.store.heartbeat(operation_id, self._clock())

    def complete(self, operation_id: str, result: dict[str, Any] | None = None) -> Operation:
        return self.finish(operation_id, OperationStatus.COMPLETED, result=result)

    def fail(self, operation_id: str, error: str, result: dict[str, Any] | None = None) -> Operation:
        return self.finish(operation_id, OperationStatus.FAILED, result=result, error=error)

    def finish(
        self,
        operation_id: str,
        status: OperationStatus,
        *,
        result: dict[str, Any] | None = None,
        error: str | None = None,
    ) -> Operation:
        """End an operation as completed, failed or cancelled.

        Raises:
            InvalidInputError: ``status`` is not terminal, or a failure comes without an error message.
            ConflictError: the operation already ended.
        """
        if not status.is_terminal:
            raise InvalidInputError(f"an operation ends as completed, failed or cancelled, not {status.value!r}")
        if status is OperationStatus.FAILED and not (error and error.strip()):
            raise InvalidInputError("a failed operation needs an 'error' saying what went wrong")
        try:
            result = storable(result, "result") if result is not None else None
            error = check_text(error, "error") if error is not None else None
        except ValueError as problem:
            raise InvalidInputError(str(problem)) from None
        held = self._throttle.release(operation_id)  # where the run really was: stored with its end
        return self.store.finish(operation_id, status, self._clock(), result=result, error=error, progress=held)

    def cancel(self, operation_id: str, reason: str, *, requested_by: str = "user") -> Operation:
        """Ask an operation to stop, saying why. The trainer learns of it from its next write.

        Raises:
            InvalidInputError: the reason is empty or longer than 2,000 characters.
            ConflictError: the operation already ended.
        """
        reason = reason.strip() if isinstance(reason, str) else ""
        if not reason:
            raise InvalidInputError("cancelling needs a reason, e.g. 'val_loss rising since epoch 30'")
        if len(reason) > MAX_REASON_LENGTH:
            raise InvalidInputError(f"the reason is {len(reason)} characters; keep it under {MAX_REASON_LENGTH}")
        requested_by = (requested_by or "user").strip()[:64] or "user"
        try:
            check_text(reason, "the reason")
            check_text(requested_by, "requested_by")
        except ValueError as problem:
            raise InvalidInputError(str(problem)) from None
        return self.store.request_cancel(operation_id, reason, requested_by, self._clock())

    def update_metadata(self, operation_id: str, fields: Mapping[str, Any]) -> Operation:
        """Add or change metadata fields (merged at the top level: each replaces the stored value of its name; a
        field given as ``None`` is removed). Works in any status: metadata describes the run.

        Raises:
            InvalidInputError: no fields, ``executor`` or ``worker`` (trainops' own record of who runs it), or a
                value the metadata refuses (an unknown ``task``, text that cannot be stored); nothing is written.
            NotFoundError: no such operation.
        """
        if not fields:
            raise InvalidInputError('send at least one metadata field, e.g. {"mlflow_run_id": "6f1c..."}')
        return self.update_operation(operation_id, metadata=fields)

    def update_operation(
        self,
        operation_id: str,
        *,
        metadata: Mapping[str, Any] | None = None,
        name: str | None = UNSET,
        tags: Sequence[str] | None = UNSET,
        add_tags: Sequence[str] = (),
        remove_tags: Sequence[str] = (),
        notes: str | None = UNSET,
    ) -> Operation:
        """Change what describes an operation, in any status (a run is named, tagged and annotated after it ended
        too); everything left out stays as it is, and everything is changed at once or not at all.

        Args:
            metadata: Fields to merge into the metadata, as :meth:`update_metadata` does.
            name: The new name; ``None`` clears it.
            tags: The new tags, replacing all (duplicates dropped, order kept); ``None`` or ``[]`` clears them.
            add_tags: Tags to add after the stored ones (those it already has stay where they are).
            remove_tags: Tags to remove (ones it does not have are ignored); applied after ``add_tags``.
            notes: The new notes; ``None`` clears them.

        Raises:
            InvalidInputError: nothing to change, a malformed name, tag or notes, ``tags`` with ``add_tags`` or
                ``remove_tags``, or metadata :meth:`update_metadata` refuses; nothing is written.
            NotFoundError: no such operation.
        """
        changing_tags = tags is not UNSET or bool(add_tags) or bool(remove_tags)
        if metadata is None and name is UNSET and notes is UNSET and not changing_tags:
            raise InvalidInputError(
                "nothing to change: send name, tags, add_tags, remove_tags, notes or metadata, "
                'e.g. {"name": "lr sweep"}'
            )
        if tags is not UNSET and (add_tags or remove_tags):
            raise InvalidInputError("send either tags (to replace them all) or add_tags/remove_tags, not both")
        if name is not UNSET and name is not None:
            name = _checked(check_name, name)
        if notes is not UNSET and notes is not None:
            notes = _checked(check_notes, notes)
        retag = None
        if changing_tags:
            replacing = None if tags is UNSET else _checked(check_tags, tags or [])
            adding = _checked(check_tags, add_tags) if add_tags else []
            removing = set(_checked(check_tags, remove_tags)) if remove_tags else set()

            def retag(stored: list[str]) -> list[str]:
                base = replacing if replacing is not None else list(dict.fromkeys([*stored, *adding]))
                kept: list[str] = _checked(check_tags, [tag for tag in base if tag not in removing])
                return kept

        merge = self._metadata_merge(metadata) if metadata is not None else None
        return self.store.update_operation(
            operation_id, self._clock(), merge=merge, name=name, notes=notes, retag=retag
        )

    @staticmethod
    def _metadata_merge(fields: Mapping[str, Any]) -> Callable[[dict[str, Any]], dict[str, Any]]:
        """The merge of ``fields`` into stored metadata, checked before anything is read."""
        if not fields:
            raise InvalidInputError('send at least one metadata field, e.g. {"mlflow_run_id": "6f1c..."}')
        if len(fields) > MAX_METADATA_FIELDS:
            raise InvalidInputError(f"{len(fields)} metadata fields in one update; send at most {MAX_METADATA_FIELDS}")
        protected = sorted(PROTECTED_METADATA.intersection(fields))
        if protected:
            raise InvalidInputError(
                f"metadata {' and '.join(protected)} cannot be changed: trainops records who runs the operation "
                "itself; leave them out",
                details={"fields": protected},
            )
        try:
            changes = storable(dict(fields), "metadata")
        except ValueError as problem:
            raise InvalidInputError(str(problem)) from None

        def merge(stored: dict[str, Any]) -> dict[str, Any]:
            # read as every read does (an old row's unknown task is kept aside), then checked with the changes
            current = OperationMetadata.model_validate(stored, context=STORED).model_dump(mode="json")
            merged = {name: value for name, value in {**current, **changes}.items() if value is not None}
            try:
                checked = OperationMetadata.model_validate(merged)
            except ValidationError as error:
                problems = [f"metadata.{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors()]
                raise InvalidInputError("; ".join(problems).replace("Value error, ", "")) from None
            result = checked.model_dump(mode="json")
            size = _json_size(result)
            if size > MAX_METADATA_BYTES and size > _json_size(current):
                raise InvalidInputError(
                    f"the metadata would take {size / 2**20:.1f} MiB after this update; a run keeps at most "
                    f"{MAX_METADATA_BYTES // 2**20} MiB of it: keep large values in files (the run's artifacts) "
                    "and their names here",
                    details={"bytes": size, "max_bytes": MAX_METADATA_BYTES},
                )
            return result

        return merge

    def recover_orphans(self, executor: str = "local") -> list[str]:
        """Fail the active operations of ``executor`` whose worker process on this host is gone: nobody will
        ever finish them. Runs of live processes (and of other hosts) are left alone."""
        return self.store.fail_orphans(executor, ORPHAN_REASON, self._clock(), worker_is_gone)

    def delete(self, operation_id: str) -> DeletedRows:
        """Remove an ended operation's row and its history from the database (its files are
        :func:`~trainops.service.deletion.delete_operation`'s to remove), and forget what is cached of it.

        Raises:
            NotFoundError: no such operation.
            ConflictError: it is still pending or running (cancel it first).
        """
        deleted = self.store.delete(operation_id)
        self._histories.forget(operation_id)
        self._throttle.forget(operation_id)
        return deleted

    # -- queries --------------------------------------------------------------------------------------------

    def get(self, operation_id: str) -> Operation:
        return self.store.get(operation_id)

    def version(self, operation_id: str) -> OperationVersion:
        """Cheap: what changes when anything about the operation does (for ETags)."""
        return self.store.version(operation_id)

    def history(self, operation_id: str) -> History:
        """The operation and its whole epoch history at its current version (or newer), as one consistent
        snapshot, from the history cache that the metrics reads share (loaded only when it moved).

        Raises:
            NotFoundError: no such operation.
        """
        return self._histories.current(operation_id, self.store.version(operation_id).version)

    def list_operations(
        self,
        *,
        limit: int = 100,
        offset: int = 0,
        sort: str | None = None,
        order: str | None = None,
        cursor: str | None = None,
        **filters: Unpack[ListFilters],
    ) -> OperationPage:
        """Operations matching every filter given, newest first unless ``sort`` says otherwise; ``limit`` is
        1-1000. See :class:`~trainops.core.listing.OperationFilter` for what each filter matches and
        :func:`~trainops.core.listing.parse_sort` for the sorts (``created``, ``duration``, ``best:<metric>``).

        ``next_cursor`` of the answer, passed back as ``cursor`` with the same filters and sort, gives the next
        page; paging so never skips nor repeats a run while others are created.

        Raises:
            InvalidInputError: a filter, sort, order, limit or offset out of range, a cursor this list did not
                hand out, or a cursor together with an offset.
        """
        if not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidInputError(f"limit must be between 1 and {MAX_LIST_LIMIT}, got {limit}")
        if not 0 <= offset <= MAX_LIST_OFFSET:
            raise InvalidInputError(f"offset must be between 0 and {MAX_LIST_OFFSET:,}, got {offset}")
        if cursor is not None and offset:
            raise InvalidInputError(
                "send either cursor (the next_cursor of the previous page) or offset, not both",
                details={"cursor": cursor[:200], "offset": offset},
            )
        matching = _list_filter(filters)
        if matching is None:
            return OperationPage(items=[], total=0, active=0, limit=limit, offset=offset)
        order_by = parse_sort(sort, order)
        scope = list_scope(matching, order_by)
        after = decode_cursor(cursor, scope) if cursor is not None else None
        items, total, active, ended = self.store.list_operations(
            matching, order_by, limit=limit, offset=offset, after=after
        )
        next_cursor = encode_cursor(ended, scope) if ended is not None else None
        return OperationPage(
            items=items, total=total, active=active, limit=limit, offset=offset, next_cursor=next_cursor
        )

    def list_version(self, **filters: Unpack[ListFilters]) -> ListVersion:
        """What changes whenever the operations :meth:`list_operations` matches with these filters change (one
        aggregate query, no row read): a list's ETag. A heartbeat alone does not change it.

        Raises:
            InvalidInputError: a filter out of range, as :meth:`list_operations` says.
        """
        matching = _list_filter(filters)
        if matching is None:
            return ListVersion(count=0, version_sum=0, latest_update=None, latest_seq=None)
        return self.store.list_version(matching)

    def best_values(self, listed: Sequence[Operation]) -> dict[str, BestValue | None]:
        """The best value of each operation's primary metric, by operation id, without loading a history: the
        metric the diagnosis judges it by under the default policy (the task's primary metric once the run
        reported it, else ``val_loss``; :func:`monitor_choices`), ``None`` while the run has no finite value of it.

        One query reads the operations' versions; the runs that changed since they were last asked about are
        ranked in one more query over their stored epochs (:meth:`OperationStore.best_values`)."""
        versions = self.store.versions([operation.operation_id for operation in listed])
        answer: dict[str, BestValue | None] = {}
        changed: list[Operation] = []
        for operation in listed:
            cached = self._bests.get((operation.operation_id, versions.get(operation.operation_id, -1)))
            if cached is None:
                changed.append(operation)
            else:
                answer[operation.operation_id] = cached[0]
        if changed:
            for operation_id, best in self._ranked_bests(changed).items():
                answer[operation_id] = best
                self._bests.put((operation_id, versions.get(operation_id, -1)), (best,))
        return {operation.operation_id: answer[operation.operation_id] for operation in listed}

    def _ranked_bests(self, listed: Sequence[Operation]) -> dict[str, BestValue | None]:
        choices = {
            operation.operation_id: monitor_choices(MonitorPolicy(), operation.metadata.task) for operation in listed
        }
        wanted = {
            operation_id: [(choice.monitor, choice.resolved_mode) for choice in policies]
            for operation_id, policies in choices.items()
        }
        found = self.store.best_values(wanted)
        answer: dict[str, BestValue | None] = {}
        for operation_id, policies in choices.items():
            *preferred, fallback = policies
            judged_by = next((p for p in preferred if (operation_id, p.monitor) in found), fallback)
            stored = found.get((operation_id, judged_by.monitor))
            answer[operation_id] = None
            if stored is not None and stored.value is not None and stored.epoch is not None:
                answer[operation_id] = BestValue(
                    metric=judged_by.monitor, mode=judged_by.resolved_mode, value=stored.value, epoch=stored.epoch
                )
        return answer

    def metrics(
        self,
        operation_id: str,
        *,
        since_epoch: int | None = None,
        policy: MonitorPolicy | None = None,
        points: int | None = None,
        from_epoch: int | None = None,
        to_epoch: int | None = None,
    ) -> OperationMetrics:
        """The epochs after ``since_epoch`` (all by default) and between ``from_epoch`` and ``to_epoch``
        (inclusive), thinned for display to at most ``points`` records when given, and the diagnosis over the whole
        history."""
        return self.metrics_snapshot(
            operation_id,
            since_epoch=since_epoch,
            policy=policy,
            points=points,
            from_epoch=from_epoch,
            to_epoch=to_epoch,
        )[1]

    def metrics_snapshot(
        self,
        operation_id: str,
        *,
        since_epoch: int | None = None,
        policy: MonitorPolicy | None = None,
        version: int | None = None,
        points: int | None = None,
        from_epoch: int | None = None,
        to_epoch: int | None = None,
    ) -> tuple[int, OperationMetrics]:
        """:meth:`metrics` and the operation version they were computed at (for ETags).

        ``version`` is one the caller just read (saves a query); the answer is at that version or newer. A run
        that recorded its task is judged on the task's primary metric unless ``policy`` chose a ``monitor``;
        ``metrics.definitions`` gives each reported metric's tier and definition. With ``points``, more epochs
        (after ``since_epoch``) than that are thinned for display (:func:`~trainops.core.thinning.thin_epochs`,
        around the diagnosis's best epoch) and ``metrics.thinned`` says so; the diagnosis is over every epoch.
        ``from_epoch`` and ``to_epoch`` (inclusive) keep only the epochs between them, before any thinning: a chart
        zoomed into a range asks for that range at full resolution.

        Raises:
            NotFoundError: no such operation.
            InvalidInputError: ``policy`` chose a ``monitor`` the run has never reported, ``points`` is out of
                range, or ``from_epoch`` is after ``to_epoch``.
        """
        check_points(points)
        check_epoch_range(from_epoch, to_epoch)  # before any I/O
        history, diagnosis = self._analyzed(operation_id, policy or MonitorPolicy(), version=version)
        operation, epochs = history.operation, history.epochs
        if (from_epoch, to_epoch, since_epoch) != (None, None, None):
            epochs = epochs_in_range(epochs, from_epoch, to_epoch, since_epoch=since_epoch)
        thinned = points is not None and len(epochs) > points
        if points is not None and thinned:
            epochs = thin_epochs(epochs, points, best_epoch=diagnosis.best_epoch)
        metrics = TrainingMetrics.model_construct(
            **{name: getattr(diagnosis, name) for name in Diagnosis.model_fields},
            epochs=epochs,
            thinned=thinned,
            epochs_stored=len(history.epochs),
            total_epochs_planned=operation.total_epochs,
            total_epochs_completed=operation.epochs_completed,
            definitions=self._definitions_of(history),
        )
        return history.version, OperationMetrics.model_construct(
            operation_id=operation.operation_id, operation_type=operation.operation_type, metrics=metrics
        )

    def steps(self, operation_id: str, *, since_step: int | None = None, metric: str | None = None) -> StepSeries:
        """The per-step series, oldest first: the points after ``since_step`` (all by default), and with
        ``metric`` only the points that report it, each with that metric alone.

        Raises:
            NotFoundError: no such operation.
            InvalidInputError: ``metric`` is one the run's steps never reported (the message lists those they
                did).
        """
        stored = self.store.steps(operation_id, None if metric else since_step)
        points = stored.points
        if metric is not None:
            names = {name for point in points for name in point.metrics}
            if points and metric not in names:
                raise InvalidInputError(
                    f"the steps of operation {operation_id} never reported {metric!r}; they report "
                    f"{', '.join(sorted(names)) or 'no metric'}",
                    details={"operation_id": operation_id, "metric": metric, "reported": sorted(names)},
                )
            points = [
                point.model_copy(update={"metrics": {metric: point.metrics[metric]}})
                for point in points
                if metric in point.metrics and (since_step is None or point.step > since_step)
            ]
        return StepSeries(
            operation_id=stored.operation_id,
            points=points,
            max_points=self.max_step_points,
            thinned=stored.stride > 1,
        )

    def results(self, operation_id: str) -> OperationResults:
        """What a finished operation produced.

        Raises:
            ConflictError: the operation has not ended yet (its metrics are readable meanwhile).
        """
        history, diagnosis = self._analyzed(operation_id, MonitorPolicy())
        operation, epochs = history.operation, history.epochs
        if not operation.status.is_terminal:
            where = f" at epoch {operation.last_epoch}" if operation.last_epoch is not None else ""
            raise ConflictError(
                f"operation {operation_id} is still {operation.status.value}{where}; results exist once it ends. "
                f"Follow it meanwhile with `trainops ops watch {operation_id}`, GET "
                f"/api/v1/operations/{operation_id}/metrics or the MCP tool get_training_metrics.",
                details={"operation_id": operation_id, "status": operation.status.value},
            )
        duration = None
        if operation.started_at and operation.completed_at:
            duration = (operation.completed_at - operation.started_at).total_seconds()
        return OperationResults(
            operation_id=operation.operation_id,
            operation_type=operation.operation_type,
            status=operation.status,
            created_at=operation.created_at,
            started_at=operation.started_at,
            completed_at=operation.completed_at,
            duration_seconds=duration,
            result=operation.result,
            error=operation.error,
            cancel_request=operation.cancel_request,
            epochs_completed=operation.epochs_completed,
            total_epochs_planned=operation.total_epochs,
            best_epoch=diagnosis.best_epoch if epochs else None,
            best_val_loss=diagnosis.best_val_loss if epochs else None,
            final_epoch=epochs[-1] if epochs else None,
            diagnosis=diagnosis if epochs else None,
        )

    def diagnose(
        self,
        operation_id: str,
        policy: MonitorPolicy | None = None,
        *,
        total_epochs_planned: int | None = None,
    ) -> Replay:
        """Replay ``policy`` over the operation's stored history: what it would have recommended at every epoch,
        and where it would have stopped the run. A dry run: nothing is written.

        Args:
            operation_id: The operation whose history to replay.
            policy: The policy to try; the defaults when ``None``.
            total_epochs_planned: The run's planned length; the operation's ``total_epochs`` when ``None``.

        Raises:
            NotFoundError: no such operation.
            InvalidInputError: ``total_epochs_planned`` out of range, a history longer than
                :data:`MAX_REPLAY_EPOCHS`, or a ``monitor`` the run has never reported.
        """
        if total_epochs_planned is not None and not 1 <= total_epochs_planned <= MAX_PLANNED_EPOCHS:
            raise InvalidInputError(
                f"total_epochs_planned must be between 1 and {MAX_PLANNED_EPOCHS:,}, got {total_epochs_planned}"
            )
        history = self._histories.current(operation_id, self.store.version(operation_id).version)
        if len(history.epochs) > MAX_REPLAY_EPOCHS:
            raise InvalidInputError(
                f"operation {operation_id} has {len(history.epochs):,} epochs; a replay analyses the history once "
                f"per epoch and takes at most {MAX_REPLAY_EPOCHS:,}. Judge the whole run under the policy with "
                f"`trainops ops metrics {operation_id} --patience N` (or GET /api/v1/operations/{{id}}/metrics) "
                "instead.",
                details={"operation_id": operation_id, "epochs": len(history.epochs), "limit": MAX_REPLAY_EPOCHS},
            )
        judged_by = self._judging(policy or MonitorPolicy(), history)
        planned = total_epochs_planned if total_epochs_planned is not None else history.operation.total_epochs
        return replay(history.epochs, judged_by, total_epochs_planned=planned)

    def metrics_in_memory(self, operation_id: str, policy: MonitorPolicy, version: int) -> bool:
        """Whether :meth:`metrics_snapshot` at ``version`` would be answered from memory, without I/O."""
        return self._histories.ready(operation_id, version, policy_key(policy))

    def _analyzed(
        self, operation_id: str, policy: MonitorPolicy, *, version: int | None = None
    ) -> tuple[History, Diagnosis]:
        if version is None:
            version = self.store.version(operation_id).version
        history = self._histories.current(operation_id, version)
        judged_by = self._judging(policy, history)
        diagnosis = self._histories.diagnosis(
            operation_id,
            history,
            policy_key(policy),  # one history, one task: the same request always resolves to the same policy
            lambda: analyze(history.epochs, judged_by, total_epochs_planned=history.operation.total_epochs),
        )
        return history, diagnosis

    def _definitions_of(self, history: History) -> dict[str, TieredDefinition]:
        key = (history.operation.operation_id, history.version)
        found = self._definitions.get(key)
        if found is None:
            found = reported_definitions(history_metric_names(history.epochs), history.operation.metadata.task)
            self._definitions.put(key, found)
        return found

    @staticmethod
    def _judging(policy: MonitorPolicy, history: History) -> MonitorPolicy:
        """The policy ``history`` is judged by: the task's primary metric as the monitor unless ``policy`` chose
        one, and a chosen monitor the run never reported refused (not judged "not reported yet")."""
        judged_by = policy_for_task(policy, history.operation.metadata.task, history.epochs)
        check_monitor(judged_by, history.epochs)
        return judged_by


def _list_filter(filters: ListFilters) -> OperationFilter | None:
    """The store's filter of a list's query parameters, checked; ``None`` when nothing can match (active_only
    with only ended statuses)."""
    status = filters.get("status")
    statuses: set[OperationStatus] = set()
    if isinstance(status, OperationStatus):
        statuses = {status}
    elif status is not None:
        statuses = set(status)
    if filters.get("active_only", False):
        statuses = (statuses & ACTIVE_STATUSES) if statuses else set(ACTIVE_STATUSES)
        if not statuses:
            return None
    created_after, created_before = filters.get("created_after"), filters.get("created_before")
    for moment, label in ((created_after, "created_after"), (created_before, "created_before")):
        if moment is None:
            continue
        if moment.tzinfo is None:
            raise InvalidInputError(
                f"{label} {moment.isoformat()} has no time zone: add one, e.g. {moment.isoformat()}Z (UTC)",
                details={label: moment.isoformat()},
            )
        year = utc_year(moment)  # year 1 at UTC+01:00 has no UTC time at all
        if not MIN_TIMESTAMP_YEAR <= year <= MAX_TIMESTAMP_YEAR:
            raise InvalidInputError(
                f"{label} {moment.isoformat()} is year {year} in UTC; send a time between the years "
                f"{MIN_TIMESTAMP_YEAR} and {MAX_TIMESTAMP_YEAR} (UTC), the years trainops stores",
                details={label: moment.isoformat()},
            )
    name, tags, q = filters.get("name"), filters.get("tags"), filters.get("q")
    try:
        return OperationFilter(
            statuses=frozenset(statuses),
            operation_type=filters.get("operation_type") or None,
            name=name.strip() if name is not None else None,
            tags=tuple(_checked(check_tags, tags)) if tags else (),
            q=q.strip() or None if q is not None else None,
            strategy=filters.get("strategy"),
            symbol=filters.get("symbol"),
            timeframe=filters.get("timeframe"),
            created_after=created_after,
            created_before=created_before,
        )
    except ValidationError as error:
        raise InvalidInputError(_problems(error)) from None


def _json_size(value: Any) -> int:
    """The bytes of ``value`` as compact JSON in UTF-8."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())
