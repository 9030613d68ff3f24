"""Exporting a run's history and deleting a run through the facade: the same behaviour in-process and over HTTP
(``ops``), on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import pandas as pd
import pytest

from trainops import ConflictError, EpochRecord, InvalidInputError, NotFoundError, TrainOps
from trainops.core.steps import StepRecord
from trainops.schemas.operations import DeletedOperation
from trainops.settings import Settings

NAN, INF = float("nan"), float("inf")


def history() -> list[EpochRecord]:
    records = [
        EpochRecord(epoch=e, train_loss=1 / (e + 1), val_loss=1 / (e + 1) + 0.05, learning_rate=1e-3, duration=2.0)
        for e in range(8)
    ]
    records[2] = records[2].model_copy(update={"val_loss": NAN, "metrics": {"grad_norm": INF}})
    records[5] = records[5].model_copy(update={"train_loss": -INF, "step": 500, "metrics": {"f1": 0.75}})
    return records


def same(a: float, b: float | None) -> bool:
    if b is None:
        return math.isnan(a)  # an empty cell
    return (math.isnan(a) and math.isnan(b)) or a == b


def test_export_csv_round_trips_through_pandas(ops: TrainOps) -> None:
    operation_id = ops.create_operation().operation_id
    sent = history()
    ops.add_epochs(operation_id, sent)

    text = ops.export_metrics(operation_id)  # csv by default
    frame = pd.read_csv(io.StringIO(text))
    assert list(frame.columns)[:9] == [
        "epoch", "step", "timestamp", "duration", "train_loss", "val_loss", "train_accuracy", "val_accuracy",
        "learning_rate",
    ]  # fmt: skip
    assert list(frame.columns)[9:] == ["f1", "grad_norm"]
    stored = ops.get_metrics(operation_id).metrics.epochs
    for row, record in zip(frame.to_dict("records"), stored, strict=True):
        assert row["epoch"] == record.epoch
        for name in ("duration", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "learning_rate"):
            assert same(row[name], record.value(name)), (record.epoch, name)
        for name in ("f1", "grad_norm"):
            assert same(row[name], record.metrics.get(name)), (record.epoch, name)
        assert pd.Timestamp(row["timestamp"]) == pd.Timestamp(record.timestamp)
    assert frame["train_loss"][5] == -math.inf and frame["step"][5] == 500 and frame["grad_norm"][2] == math.inf
    rows = list(csv.DictReader(io.StringIO(ops.export_metrics(operation_id, format="csv", since_epoch=4))))
    assert [row["epoch"] for row in rows] == ["5", "6", "7"]


def test_export_json_is_the_metrics_document(ops: TrainOps) -> None:
    operation_id = ops.create_operation().operation_id
    ops.add_epochs(operation_id, history())
    exported = json.loads(ops.export_metrics(operation_id, format="json"))
    assert exported == json.loads(ops.get_metrics(operation_id).model_dump_json())
    assert len(exported["metrics"]["epochs"]) == 8 and "recommendation" in exported["metrics"]


def test_export_refuses_unknown_formats_and_operations(ops: TrainOps) -> None:
    operation_id = ops.create_operation().operation_id
    with pytest.raises(InvalidInputError, match="unknown export format 'xlsx': use one of csv, json"):
        ops.export_metrics(operation_id, format="xlsx")  # type: ignore[arg-type]
    with pytest.raises(NotFoundError):
        ops.export_metrics("op_training_20250101_000000_deadbeef")


def test_delete_an_ended_run(ops: TrainOps, settings: Settings, tmp_path: Path) -> None:
    operation_id = ops.create_operation().operation_id
    ops.add_epochs(operation_id, history())
    ops.add_steps(operation_id, [StepRecord(step=s, metrics={"loss": 0.5}) for s in range(10)])
    source = tmp_path / "best.pt"
    source.write_bytes(b"x" * 100)
    ops.log_artifact(operation_id, source, artifact_path="checkpoints")
    kept = ops.create_operation().operation_id
    ops.add_epochs(kept, history()[:3])
    ops.finish_operation(operation_id, "failed", error="diverged")

    deleted = ops.delete_operation(operation_id)

    assert deleted == DeletedOperation(
        operation_id=operation_id,
        status="failed",
        epochs=8,
        steps=10,
        artifacts=1,
        artifact_bytes=100,
        model_versions=0,
        worker_log=False,
        models_kept=[],
    )
    assert not (settings.resolved_artifacts_dir / operation_id).exists()
    for call in (ops.get_operation, ops.get_metrics, ops.list_artifacts, ops.delete_operation):
        with pytest.raises(NotFoundError, match=f"no operation '{operation_id}'"):
            call(operation_id)
    assert [item.operation_id for item in ops.list_operations().items] == [kept]
    assert len(ops.get_metrics(kept).metrics.epochs) == 3


def test_delete_refuses_an_active_run_and_keeps_it(ops: TrainOps) -> None:
    running = ops.create_operation().operation_id
    ops.add_epochs(running, history())
    pending = ops.create_operation().operation_id
    for operation_id, status in ((running, "running"), (pending, "pending")):
        with pytest.raises(ConflictError, match=f"is {status}: cancel it first") as refused:
            ops.delete_operation(operation_id)
        assert refused.value.details["status"] == status
    assert len(ops.get_metrics(running).metrics.epochs) == 8
    assert ops.get_operation(pending).status == "pending"
