"""``TrainOps.update_metadata`` on both transports: fields added, replaced and removed at the top level of an
operation's metadata; trainops' own fields refused; the diagnosis following a task set afterwards."""

from __future__ import annotations

import threading

import pytest

from trainops.client.base import TrainOps
from trainops.core.epoch import EpochRecord
from trainops.core.metric_definitions import TaskType
from trainops.errors import ConflictError, InvalidInputError, NotFoundError


def test_fields_are_merged_at_the_top_level_and_none_removes_one(ops: TrainOps) -> None:
    operation = ops.create_operation(metadata={"strategy": "resnet18", "parameters": {"lr": 0.1, "epochs": 9}})
    updated = ops.update_metadata(
        operation.operation_id, {"mlflow_experiment_id": "4", "mlflow_run_id": "6f1c2d", "notes": "lr sweep"}
    )
    assert updated.metadata.model_dump() == ops.get_operation(operation.operation_id).metadata.model_dump()
    fields = updated.metadata.model_dump()
    assert (fields["mlflow_experiment_id"], fields["mlflow_run_id"], fields["notes"]) == ("4", "6f1c2d", "lr sweep")
    assert updated.metadata.strategy == "resnet18" and updated.metadata.executor == "external"

    again = ops.update_metadata(operation.operation_id, {"notes": None, "parameters": {"lr": 0.2}, "strategy": None})
    fields = again.metadata.model_dump()
    assert "notes" not in fields and fields["mlflow_run_id"] == "6f1c2d"
    assert again.metadata.parameters == {"lr": 0.2}  # a mapping is replaced whole
    assert again.metadata.strategy is None
    assert again.updated_at >= operation.updated_at


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"executor": "local"}, "metadata executor cannot be changed"),
        ({"worker": "host:1", "executor": "ray", "notes": "x"}, "metadata executor and worker cannot be changed"),
        ({"task": "telepathy"}, "telepathy"),
        ({"notes": "nul \x00 inside"}, "NUL"),
        ({}, "metadata"),
    ],
)
def test_refused_fields_change_nothing(ops: TrainOps, fields: dict[str, object], message: str) -> None:
    operation = ops.create_operation(metadata={"strategy": "kept"})
    with pytest.raises(InvalidInputError, match=message):
        ops.update_metadata(operation.operation_id, fields)
    stored = ops.get_operation(operation.operation_id)
    assert stored.metadata.model_dump() == operation.metadata.model_dump()
    assert stored.updated_at == operation.updated_at


def test_an_unknown_operation_is_not_found(ops: TrainOps) -> None:
    with pytest.raises(NotFoundError, match="op_training_20250101_000000_00000000"):
        ops.update_metadata("op_training_20250101_000000_00000000", {"notes": "x"})


def test_an_ended_operation_can_still_be_annotated(ops: TrainOps) -> None:
    operation = ops.create_operation()
    ops.finish_operation(operation.operation_id, "completed")
    assert ops.update_metadata(operation.operation_id, {"notes": "best of the sweep"}).metadata.model_dump()["notes"]
    with pytest.raises(ConflictError):  # the operation itself stays ended
        ops.add_epoch(operation.operation_id, EpochRecord(epoch=0, val_loss=1.0))


def test_a_task_set_afterwards_is_what_the_diagnosis_follows(ops: TrainOps) -> None:
    operation = ops.create_operation()
    records = [EpochRecord(epoch=e, val_loss=1.0 + e / 10, metrics={"mAP50": 0.3 + e / 10}) for e in range(5)]
    ops.add_epochs(operation.operation_id, records)
    assert ops.get_metrics(operation.operation_id).metrics.best_epoch == 0  # val_loss, minimised
    updated = ops.update_metadata(operation.operation_id, {"task": "object_detection"})
    assert updated.metadata.task is TaskType.OBJECT_DETECTION
    assert ops.get_metrics(operation.operation_id).metrics.best_epoch == 4  # now mAP50, maximised


def test_concurrent_updates_keep_every_field(ops: TrainOps) -> None:
    operation = ops.create_operation()
    errors: list[BaseException] = []

    def annotate(index: int) -> None:
        try:
            ops.update_metadata(operation.operation_id, {f"field_{index}": index})
        except BaseException as error:  # reported below: a thread's failure would otherwise vanish
            errors.append(error)

    threads = [threading.Thread(target=annotate, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    fields = ops.get_operation(operation.operation_id).metadata.model_dump()
    assert {fields[f"field_{index}"] for index in range(8)} == set(range(8))
