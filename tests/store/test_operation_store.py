"""The SQL store on SQLite and PostgreSQL: upserts, non-finite values, versions, migrations, concurrency."""

from __future__ import annotations

import importlib
import math
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, func, select

from trainops.core import EpochRecord, Operation, OperationStatus
from trainops.core.listing import OperationFilter
from trainops.core.operation import OperationMetadata, new_operation_id
from trainops.errors import ConfigurationError, ConflictError, NotFoundError
from trainops.store import (
    OperationStore,
    create_database_engine,
    current_revision,
    ensure_schema,
    head_revision,
    upgrade,
)
from trainops.store.engine import parse_database_url
from trainops.store.migrate import SCHEMA_REVISION
from trainops.store.tables import epoch_metrics
from trainops.store.transactions import reading

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def insert(store: OperationStore, executor: str = "external", created: datetime = NOW) -> Operation:
    operation = Operation(
        operation_id=new_operation_id("training", created),
        operation_type="training",
        status=OperationStatus.PENDING,
        created_at=created,
        updated_at=created,
        metadata=OperationMetadata(executor=executor),
        total_epochs=10,
    )
    return store.insert(operation)


def test_epochs_are_upserted_one_row_per_epoch(store: OperationStore) -> None:
    operation = insert(store)
    store.write_epochs(operation.operation_id, [EpochRecord(epoch=0, val_loss=1.0)], NOW)
    store.write_epochs(
        operation.operation_id,
        [EpochRecord(epoch=0, val_loss=0.5, metrics={"f1": 0.2}), EpochRecord(epoch=1, val_loss=0.4)],
        NOW,
    )

    with store.engine.connect() as connection:
        rows = connection.execute(select(func.count()).select_from(epoch_metrics)).scalar_one()
    stored, version, epochs = store.history(operation.operation_id)
    assert rows == 2
    assert [(record.epoch, record.val_loss) for record in epochs] == [(0, 0.5), (1, 0.4)]
    assert epochs[0].metrics == {"f1": 0.2}
    assert stored.epochs_completed == 2 and stored.last_epoch == 1
    assert stored.status is OperationStatus.RUNNING and stored.started_at == NOW
    assert version == 2


def test_a_snapshot_read_does_not_see_writes_committed_during_it(store: OperationStore) -> None:
    # what keeps history()'s operation row and its epoch rows in agreement; PostgreSQL's default READ COMMITTED
    # would let the second statement see the epoch written between the two
    operation = insert(store)
    store.write_epochs(operation.operation_id, [EpochRecord(epoch=0, val_loss=1.0)], NOW)
    count = select(func.count()).select_from(epoch_metrics)

    with reading(store.engine, snapshot=True) as connection:
        before = connection.execute(count).scalar_one()
        store.write_epochs(operation.operation_id, [EpochRecord(epoch=1, val_loss=0.9)], NOW)  # commits meanwhile
        during = connection.execute(count).scalar_one()
    with reading(store.engine) as connection:
        after = connection.execute(count).scalar_one()

    assert (before, during, after) == (1, 1, 2)
    _, version, epochs = store.history(operation.operation_id)
    assert version == 2 and [record.epoch for record in epochs] == [0, 1]


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_values_survive_both_databases(store: OperationStore, value: float) -> None:
    operation = insert(store)
    record = EpochRecord(epoch=0, train_loss=value, val_loss=0.5, learning_rate=value, metrics={"g": value})
    store.write_epochs(operation.operation_id, [record], NOW)

    (stored,) = store.history(operation.operation_id)[2]
    for got in (stored.train_loss, stored.learning_rate, stored.metrics["g"]):
        assert got is not None
        assert (math.isnan(got) and math.isnan(value)) or got == value
    assert stored.val_loss == 0.5


def test_timestamps_are_utc_and_default_to_the_write_time(store: OperationStore) -> None:
    operation = insert(store)
    given = datetime(2025, 6, 10, 12, 0, tzinfo=UTC)
    store.write_epochs(operation.operation_id, [EpochRecord(epoch=0, timestamp=given), EpochRecord(epoch=1)], NOW)
    first, second = store.history(operation.operation_id)[2]
    assert first.timestamp == given
    assert second.timestamp == NOW
    assert store.get(operation.operation_id).created_at.tzinfo is not None


def test_version_changes_with_every_write(store: OperationStore) -> None:
    operation = insert(store)
    versions = [store.version(operation.operation_id).version]
    store.write_epochs(operation.operation_id, [EpochRecord(epoch=0)], NOW)
    versions.append(store.version(operation.operation_id).version)
    store.request_cancel(operation.operation_id, "why", "user", NOW)
    versions.append(store.version(operation.operation_id).version)
    store.finish(operation.operation_id, OperationStatus.CANCELLED, NOW)
    versions.append(store.version(operation.operation_id).version)
    assert versions == sorted(set(versions))


def test_a_late_cancel_is_told_the_run_has_ended_and_where_to_read_how(store: OperationStore) -> None:
    """It was told to "register a new operation to record another run", advice for a reporter, not a canceller."""
    operation = insert(store)
    store.finish(operation.operation_id, OperationStatus.COMPLETED, NOW)

    with pytest.raises(ConflictError) as late:
        store.request_cancel(operation.operation_id, "too slow", "agent", NOW)
    with pytest.raises(ConflictError) as written:
        store.write_epochs(operation.operation_id, [EpochRecord(epoch=0)], NOW)

    assert late.value.message == (
        f"operation {operation.operation_id} is already completed; it accepts no more cancel requests: there is "
        "nothing left to stop; its results say how it ended"
    )
    assert written.value.message.endswith("accepts no more metrics. Register a new operation to record another run.")


def test_fail_orphans_only_touches_active_operations_of_that_executor(store: OperationStore) -> None:
    running_local = insert(store, "local")
    store.start(running_local.operation_id, NOW)
    pending_local = insert(store, "local")
    finished_local = insert(store, "local")
    store.finish(finished_local.operation_id, OperationStatus.COMPLETED, NOW)
    external = insert(store, "external")
    store.start(external.operation_id, NOW)

    failed = store.fail_orphans("local", "server restarted", NOW, lambda worker, recorded_at: True)

    assert set(failed) == {running_local.operation_id, pending_local.operation_id}
    assert store.get(running_local.operation_id).status is OperationStatus.FAILED
    assert store.get(running_local.operation_id).error == "server restarted"
    assert store.get(finished_local.operation_id).status is OperationStatus.COMPLETED
    assert store.get(external.operation_id).status is OperationStatus.RUNNING


def test_fail_orphans_asks_about_each_worker(store: OperationStore) -> None:
    alive, gone = insert(store, "local"), insert(store, "local")
    store.start(alive.operation_id, NOW, worker="host:1")
    store.start(gone.operation_id, NOW, worker="host:2")

    asked: list[tuple[str | None, datetime | None]] = []

    def gone_if_2(worker: str | None, recorded_at: datetime | None) -> bool:
        asked.append((worker, recorded_at))
        return worker == "host:2"

    assert store.fail_orphans("local", "gone", NOW, gone_if_2) == [gone.operation_id]
    assert store.get(alive.operation_id).status is OperationStatus.RUNNING
    assert sorted(asked, key=str) == [("host:1", NOW), ("host:2", NOW)]  # each with when it was recorded


def test_an_orphan_asked_to_stop_ends_cancelled_not_failed(store: OperationStore) -> None:
    """A worker that died after its cancel was asked ended failed here, cancelled when the reaper saw it."""
    stopping = insert(store, "local")
    store.start(stopping.operation_id, NOW, worker="host:3")
    store.request_cancel(stopping.operation_id, "stuck run", "user", NOW)

    assert store.fail_orphans("local", "The server stopped.", NOW, lambda worker, recorded_at: True) == [
        stopping.operation_id
    ]
    ended = store.get(stopping.operation_id)
    assert ended.status is OperationStatus.CANCELLED
    assert (
        ended.error
        == "its job ended after the cancel (stuck run) before the training ended itself: the server stopped."
    )


def test_list_orders_newest_first_and_counts(store: OperationStore) -> None:
    older = insert(store, created=NOW - timedelta(hours=1))
    newer = insert(store, created=NOW)
    store.finish(older.operation_id, OperationStatus.FAILED, NOW, error="x")

    items, total, active, ended = store.list_operations(limit=10)
    assert [op.operation_id for op in items] == [newer.operation_id, older.operation_id]
    assert (total, active, ended) == (2, 1, None)
    items, total, active, _ = store.list_operations(OperationFilter(statuses=frozenset({OperationStatus.FAILED})))
    assert [op.operation_id for op in items] == [older.operation_id]
    assert (total, active) == (1, 0)


def test_errors_are_domain_errors(store: OperationStore) -> None:
    operation = insert(store)
    with pytest.raises(ConflictError, match="already exists"):
        store.insert(operation)
    with pytest.raises(NotFoundError):
        store.get("op_training_20200101_000000_00000000")
    store.finish(operation.operation_id, OperationStatus.COMPLETED, NOW)
    with pytest.raises(ConflictError):
        store.start(operation.operation_id, NOW)


def test_concurrent_writers_lose_nothing(store: OperationStore) -> None:
    operation = insert(store)
    errors: list[BaseException] = []

    def write(offset: int) -> None:
        try:
            for epoch in range(offset, offset + 25):
                store.write_epochs(operation.operation_id, [EpochRecord(epoch=epoch, val_loss=1.0)], NOW)
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=write, args=(start,)) for start in (0, 25, 50, 75)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    stored = store.get(operation.operation_id)
    assert stored.epochs_completed == 100 and stored.last_epoch == 99


def test_schema_is_at_head(database_url: str) -> None:
    engine = create_database_engine(database_url)
    try:
        assert current_revision(engine) == head_revision()
        ensure_schema(engine, auto_migrate=False)  # current: nothing to do, no error
    finally:
        engine.dispose()


def test_the_schema_revision_trainops_needs_is_the_head_of_its_migrations() -> None:
    # ensure_schema compares with SCHEMA_REVISION so that opening a database never loads Alembic's scripts
    assert head_revision() == SCHEMA_REVISION


def test_an_outdated_schema_is_refused_unless_migration_is_allowed(tmp_path: object) -> None:
    engine = create_database_engine(f"sqlite:///{tmp_path}/empty.db")
    try:
        with pytest.raises(ConfigurationError, match="trainops db upgrade"):
            ensure_schema(engine, auto_migrate=False)
        ensure_schema(engine, auto_migrate=True)
        assert current_revision(engine) == head_revision()
    finally:
        engine.dispose()


@pytest.mark.parametrize("auto_migrate", [True, False])
def test_a_first_migration_committed_by_another_process_meanwhile_is_not_another_applications_schema(
    tmp_path: object, monkeypatch: pytest.MonkeyPatch, auto_migrate: bool
) -> None:
    url = f"sqlite:///{tmp_path}/starting.db"
    engine, other = create_database_engine(url), create_database_engine(url)
    migrations = importlib.import_module("trainops.store.migrate")  # the package's `migrate` is the function

    looks: list[str | None] = []

    def look_then_another_process_migrates(engine: Engine, **options: bool) -> str | None:
        looks.append(current_revision(engine, **options))
        if len(looks) == 1:  # processes starting together: another one migrates right after this one's first look
            monkeypatch.undo()
            upgrade(other)
        return looks[-1]

    monkeypatch.setattr(migrations, "current_revision", look_then_another_process_migrates)
    try:
        ensure_schema(engine, auto_migrate=auto_migrate)  # no "tables that trainops did not create"
        assert current_revision(engine) == SCHEMA_REVISION
    finally:
        engine.dispose()
        other.dispose()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL"),
        ("mysql://localhost/db", "unsupported database 'mysql'"),
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
    ],
)
def test_bad_database_urls_are_explained(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        create_database_engine(url)


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    assert parse_database_url("postgresql://u@h/db").drivername == "postgresql+psycopg"


def test_a_run_ended_before_it_started_has_no_start(store: OperationStore) -> None:
    """A queue that stopped, a worker that could not be spawned: it said it started the moment it was failed."""
    never = insert(store, "local")
    finished = insert(store, "external")

    assert store.finish(never.operation_id, OperationStatus.FAILED, NOW, error="the server stopped").started_at is None
    assert store.finish(finished.operation_id, OperationStatus.COMPLETED, NOW).started_at == NOW  # it ran
