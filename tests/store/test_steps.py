"""The per-step series in SQL on SQLite and PostgreSQL: upserts, the cap and its thinning, the epoch's step, and
migration 0003 on a database that holds data."""

from __future__ import annotations

import itertools
import math
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, insert, select, text

from trainops.core import EpochRecord, Operation, OperationStatus
from trainops.core.operation import OperationMetadata, new_operation_id
from trainops.core.steps import StepRecord
from trainops.errors import ConflictError, NotFoundError
from trainops.store import OperationStore, create_database_engine, current_revision, upgrade
from trainops.store.migrate import SCHEMA_REVISION
from trainops.store.tables import epoch_metrics, operations, step_metrics

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def insert_operation(store: OperationStore) -> str:
    operation = Operation(
        operation_id=new_operation_id("training", NOW),
        operation_type="training",
        status=OperationStatus.PENDING,
        created_at=NOW,
        updated_at=NOW,
        metadata=OperationMetadata(),
    )
    return store.insert(operation).operation_id


def points(steps: Iterator[int] | range | list[int], **metrics: float) -> list[StepRecord]:
    return [StepRecord(step=step, metrics={"loss": 1.0 / (step + 1), **metrics}) for step in steps]


def stored_rows(store: OperationStore) -> int:
    with store.engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(step_metrics)).scalar_one())


def step_count(store: OperationStore, operation_id: str) -> int:
    with store.engine.connect() as connection:
        return int(
            connection.execute(select(operations.c.step_count).where(operations.c.id == operation_id)).scalar_one()
        )


def test_steps_are_upserted_one_row_per_step_and_start_the_operation(store: OperationStore) -> None:
    operation_id = insert_operation(store)
    ack = store.write_steps(operation_id, points(range(3)), NOW, max_points=1000)
    store.write_steps(
        operation_id, [StepRecord(step=1, epoch=0, metrics={"loss": 0.25, "lr": 0.1})], NOW, max_points=1000
    )

    series = store.steps(operation_id)
    assert ack.accepted == 3 and ack.status is OperationStatus.RUNNING
    assert [point.step for point in series.points] == [0, 1, 2]
    assert series.points[1].metrics == {"loss": 0.25, "lr": 0.1}  # replaced, not duplicated
    assert series.points[1].epoch == 0 and series.points[1].timestamp == NOW
    assert series.stride == 1
    assert stored_rows(store) == 3 == step_count(store, operation_id)
    assert store.get(operation_id).status is OperationStatus.RUNNING
    assert [point.step for point in store.steps(operation_id, since_step=0).points] == [1, 2]


def test_steps_do_not_change_the_epochs_version_once_the_operation_runs(store: OperationStore) -> None:
    operation_id = insert_operation(store)
    store.write_steps(operation_id, points([0]), NOW, max_points=1000)  # starts it: a change the ETag must see
    started = store.version(operation_id).version
    store.write_steps(operation_id, points([1, 2]), NOW, max_points=1000)
    assert store.version(operation_id).version == started


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
def test_non_finite_step_metrics_survive_both_databases(store: OperationStore, value: float) -> None:
    operation_id = insert_operation(store)
    store.write_steps(operation_id, [StepRecord(step=0, metrics={"loss": value, "lr": 0.1})], NOW, max_points=10)

    [point] = store.steps(operation_id).points
    assert point.metrics["lr"] == 0.1
    loss = point.metrics["loss"]
    assert math.isnan(loss) if math.isnan(value) else loss == value


@pytest.mark.parametrize("batch", [1, 7, 250, 5000], ids=lambda size: f"batches-of-{size}")
def test_the_cap_holds_the_span_and_the_latest_stay_and_older_points_are_evenly_spaced(
    store: OperationStore, batch: int
) -> None:
    operation_id = insert_operation(store)
    steps = list(range(0, 50_000, 10))  # 5,000 points: a loop that logs every 10th step
    for start in range(0, len(steps), batch):
        store.write_steps(operation_id, points(steps[start : start + batch]), NOW, max_points=100)

    series = store.steps(operation_id)
    kept = [point.step for point in series.points]
    assert len(kept) <= 100
    assert stored_rows(store) == len(kept) == step_count(store, operation_id)  # the count the writes keep is exact
    assert kept[0] == 0 and kept[-1] == 49_990
    assert series.stride > 1
    gaps = [later - earlier for earlier, later in itertools.pairwise(kept)]
    spacing = math.lcm(10, series.stride)  # on the grid of the stride, among the steps the loop logged
    older = [gap for gap in gaps if gap > 10]
    assert set(older[:-1]) <= {spacing}  # evenly spaced; only the step before the dense tail may be closer
    assert max(gaps) == spacing


def test_re_sending_thinned_and_kept_steps_keeps_the_count_exact(store: OperationStore) -> None:
    operation_id = insert_operation(store)
    store.write_steps(operation_id, points(range(30)), NOW, max_points=10)
    store.write_steps(operation_id, points(range(30)), NOW, max_points=10)  # a retried batch
    store.write_steps(operation_id, points(range(30, 33)), NOW, max_points=10)

    kept = [point.step for point in store.steps(operation_id).points]
    assert len(kept) <= 10 and kept[0] == 0 and kept[-1] == 32
    assert stored_rows(store) == len(kept) == step_count(store, operation_id)


def test_an_ended_operation_refuses_steps_and_keeps_its_series(store: OperationStore) -> None:
    operation_id = insert_operation(store)
    store.write_steps(operation_id, points([0, 1]), NOW, max_points=10)
    store.finish(operation_id, OperationStatus.COMPLETED, NOW)

    with pytest.raises(ConflictError, match="already completed; it accepts no more steps"):
        store.write_steps(operation_id, points([2]), NOW, max_points=10)
    assert [point.step for point in store.steps(operation_id).points] == [0, 1]


def test_unknown_operations_are_not_found(store: OperationStore) -> None:
    with pytest.raises(NotFoundError):
        store.write_steps("op_training_20260101_000000_deadbeef", points([0]), NOW, max_points=10)
    with pytest.raises(NotFoundError):
        store.steps("op_training_20260101_000000_deadbeef")


def test_the_epoch_keeps_its_global_step(store: OperationStore) -> None:
    operation_id = insert_operation(store)
    store.write_epochs(operation_id, [EpochRecord(epoch=0, step=2**40, val_loss=0.5), EpochRecord(epoch=1)], NOW)

    _, _, epochs = store.history(operation_id)
    assert [record.step for record in epochs] == [2**40, None]


# -- migration 0003 -----------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database no migration has touched (the shared PostgreSQL test database is already at head)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    shared: str = request.getfixturevalue("postgres_database_url")
    base = shared.rsplit("/", 1)[0]
    name = f"trainops_migration_{secrets.token_hex(4)}"
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f"CREATE DATABASE {name}"))
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f"DROP DATABASE {name} WITH (FORCE)"))
        admin.dispose()


def test_a_0002_database_with_data_upgrades_to_0003_and_keeps_it(fresh_database_url: str) -> None:
    engine = create_database_engine(fresh_database_url)
    try:
        assert upgrade(engine, "0002") == "0002"
        with engine.begin() as connection:
            seq = connection.execute(
                insert(operations)
                .values(
                    id="op_training_20260102_030405_0123abcd",
                    operation_type="training",
                    status="running",
                    created_at=NOW,
                    updated_at=NOW,
                    epochs_completed=3,
                    last_epoch=2,
                    version=3,
                )
                .returning(operations.c.seq)
            ).scalar_one()
            columns = ("operation_seq", "epoch", "val_loss", "timestamp", "extra", "non_finite")
            rows = [
                # a loop that logged its global step as a custom metric, before step was a field
                (seq, 0, 0.9, 1.0, {"step": 100, "f1": 0.5}, None),
                (seq, 1, None, 2.0, {"step": 2.5, "step_metric": 1}, {"val_loss": "NaN"}),  # not a step: renamed
                (seq, 2, 0.7, 3.0, None, None),
            ]
            connection.execute(
                epoch_metrics.insert(), [dict(zip(columns, row, strict=True)) for row in rows]
            )  # the 0002 columns only

        assert upgrade(engine) == SCHEMA_REVISION == current_revision(engine)  # through 0003 and past it
        store = OperationStore(engine)
        operation, version, epochs = store.history("op_training_20260102_030405_0123abcd")
        assert operation.epochs_completed == 3 and version == 3
        assert [(record.epoch, record.step) for record in epochs] == [(0, 100), (1, None), (2, None)]
        assert epochs[0].metrics == {"f1": 0.5} and epochs[0].val_loss == 0.9
        assert epochs[1].metrics == {"step_metric": 1, "step_metric_": 2.5}
        assert epochs[1].val_loss is not None and math.isnan(epochs[1].val_loss)
        for record in epochs:  # every stored epoch reads back as a valid record (over HTTP it is re-validated)
            EpochRecord.model_validate_json(record.model_dump_json())
        # the new table and bookkeeping work on the migrated database
        store.write_steps(operation.operation_id, points(range(5)), NOW, max_points=3)
        kept = [point.step for point in store.steps(operation.operation_id).points]
        assert kept[0] == 0 and kept[-1] == 4 and len(kept) <= 3
    finally:
        engine.dispose()
