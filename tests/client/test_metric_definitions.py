"""Metric definitions and a run's task through the facade: the same in-process and over HTTP, on SQLite and
PostgreSQL (the ``ops`` fixture)."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from trainops import Action, InvalidInputError, MonitorPolicy, TrainOps
from trainops.core.epoch import EpochRecord
from trainops.core.metric_definitions import TASK_STANDARD_METRICS, TaskType
from trainops.core.operation import OperationMetadata
from trainops.service.operations import OperationsService
from trainops.store.tables import operations

PEAK = 4


def detection_epochs(epochs: int = 12) -> list[EpochRecord]:
    """An Ultralytics-like run: mAP50 rises to epoch 4, then falls; the losses fall all along, so a diagnosis on
    val_loss would choose the last epoch."""
    records = []
    for epoch in range(epochs):
        m_ap = 0.1 + 0.1 * epoch if epoch <= PEAK else 0.1 + 0.1 * PEAK - 0.04 * (epoch - PEAK)
        records.append(
            EpochRecord(
                epoch=epoch,
                train_loss=1 - 0.05 * epoch,
                val_loss=1 - 0.04 * epoch,
                learning_rate=0.01,
                metrics={"mAP50": m_ap, "mAP50-95": m_ap / 2, "val_box_loss": 1 - 0.03 * epoch, "grad_norm": 1.0},
            )
        )
    return records


def test_every_tasks_definitions(ops: TrainOps) -> None:
    answer = ops.get_metric_definitions()

    assert list(answer.tasks) == list(TaskType)
    detection = answer.tasks[TaskType.OBJECT_DETECTION]
    assert detection.primary_metric == "mAP50"
    assert list(detection.definitions) == list(TASK_STANDARD_METRICS[TaskType.OBJECT_DETECTION])
    m_ap = detection.definitions["mAP50"]
    assert (m_ap.tier, m_ap.label, m_ap.format, m_ap.higher_is_better) == ("primary", "mAP@0.5", "percent", True)
    assert {definition.tier for name, definition in detection.definitions.items() if name != "mAP50"} == {"standard"}
    assert answer.tasks[TaskType.SEMANTIC_SEGMENTATION].primary_metric == "miou"
    assert set(answer.tiers) == {"primary", "standard", "custom"}


@pytest.mark.parametrize("task", ["regression", TaskType.REGRESSION])
def test_one_tasks_definitions(ops: TrainOps, task: str) -> None:
    answer = ops.get_metric_definitions(task)

    assert list(answer.tasks) == [TaskType.REGRESSION]
    regression = answer.tasks[TaskType.REGRESSION]
    assert regression.primary_metric == "val_loss"
    assert regression.definitions["val_loss"].tier == "primary"
    assert regression.definitions["val_r2"].higher_is_better is True
    assert regression.definitions["learning_rate"].higher_is_better is None


def test_an_unknown_task_is_refused_listing_the_known_ones(ops: TrainOps) -> None:
    with pytest.raises(
        InvalidInputError, match="task 'detection' is not one trainops knows; use one of: image_cl"
    ) as e:
        ops.get_metric_definitions("detection")
    assert e.value.details["valid"] == [task.value for task in TaskType]

    with pytest.raises(InvalidInputError, match=r"metadata\.task: task 'yolo' is not one trainops knows; use one of"):
        ops.create_operation(metadata={"task": "yolo"})
    with pytest.raises(InvalidInputError, match=r"metadata\.task: .*object_detection"):
        ops.run(metadata={"task": "yolo"})
    assert ops.list_operations().total == 0  # nothing was registered


def test_an_operation_records_its_task(ops: TrainOps) -> None:
    created = ops.create_operation(metadata={"task": "object_detection", "symbol": "COCO"})
    typed = ops.create_operation(metadata=OperationMetadata(task=TaskType.POSE_ESTIMATION))
    untasked = ops.create_operation()

    assert ops.get_operation(created.operation_id).metadata.task is TaskType.OBJECT_DETECTION
    assert ops.get_operation(typed.operation_id).metadata.task is TaskType.POSE_ESTIMATION
    assert ops.get_operation(untasked.operation_id).metadata.task is None


def test_a_detection_run_is_judged_on_map50(ops: TrainOps) -> None:
    with ops.run(metadata={"task": "object_detection"}, total_epochs=40, flush_interval=None) as run:
        ops.add_epochs(run.operation_id, detection_epochs())
        block = ops.get_metrics(run.operation_id).metrics

        assert (block.monitor, block.mode) == ("mAP50", "max")
        assert block.best_epoch == PEAK
        assert block.best_value == pytest.approx(0.5)
        assert block.best_val_loss == pytest.approx(1 - 0.04 * 11)  # still reported, as the field promises
        assert block.recommendation.action is Action.STOP_AND_RESTORE_BEST
        assert block.recommendation.restore_epoch == PEAK
        assert "mAP50" in block.recommendation.reason
        assert block.trend.metric == "mAP50"

        # a monitor chosen explicitly is kept, val_loss included
        by_loss = ops.get_metrics(run.operation_id, policy=MonitorPolicy(monitor="val_loss")).metrics
        assert (by_loss.monitor, by_loss.best_epoch) == ("val_loss", 11)
        # the rest of a policy applies to the primary metric
        patient = ops.get_metrics(run.operation_id, policy=MonitorPolicy(stop_rule="patience", patience=20)).metrics
        assert (patient.monitor, patient.best_epoch, patient.recommendation.action) == ("mAP50", PEAK, Action.CONTINUE)

        # the replay follows the primary metric too, and keeps a chosen monitor
        assert (ops.diagnose(run.operation_id).policy.monitor, ops.diagnose(run.operation_id).policy.mode) == (
            "mAP50",
            "max",
        )
        assert ops.diagnose(run.operation_id, {"monitor": "val_loss"}).policy.monitor == "val_loss"
    assert ops.get_results(run.operation_id).best_epoch == PEAK


def test_a_task_run_without_its_primary_metric_is_judged_on_val_loss(ops: TrainOps) -> None:
    operation = ops.create_operation(metadata={"task": "object_detection"})
    ops.add_epochs(operation.operation_id, [EpochRecord(epoch=e, val_loss=1.0 - 0.1 * e) for e in range(3)])

    block = ops.get_metrics(operation.operation_id).metrics
    assert (block.monitor, block.best_epoch) == ("val_loss", 2)

    ops.add_epoch(operation.operation_id, EpochRecord(epoch=3, val_loss=0.6, metrics={"mAP50": 0.2}))
    assert ops.get_metrics(operation.operation_id).metrics.monitor == "mAP50"  # reported now: judged on it


def test_the_metrics_answer_defines_each_reported_metric_primary_first(ops: TrainOps) -> None:
    operation = ops.create_operation(metadata={"task": "object_detection"})
    epochs = detection_epochs(3)
    epochs[-1] = epochs[-1].model_copy(update={"duration": 1.5})
    ops.add_epochs(operation.operation_id, epochs)

    block = ops.get_metrics(operation.operation_id, since_epoch=1).metrics

    assert [record.epoch for record in block.epochs] == [2]
    # every metric of the whole history, whatever since_epoch returned
    assert list(block.definitions) == [
        "mAP50",
        "mAP50-95",
        "val_box_loss",
        "train_loss",
        "val_loss",
        "learning_rate",
        "duration",
        "grad_norm",
    ]
    tiers = [definition.tier.value for definition in block.definitions.values()]
    assert tiers == ["primary"] + ["standard"] * 6 + ["custom"]
    assert block.definitions["grad_norm"].higher_is_better is False
    assert block.definitions["mAP50-95"].format == "percent"


def test_a_run_without_a_task_has_standard_and_custom_definitions(ops: TrainOps) -> None:
    operation = ops.create_operation()
    ops.add_epoch(operation.operation_id, EpochRecord(epoch=0, val_loss=1.0, metrics={"f1": 0.4, "mAP50": 0.3}))

    block = ops.get_metrics(operation.operation_id).metrics

    assert block.monitor == "val_loss"
    assert {name: definition.tier.value for name, definition in block.definitions.items()} == {
        "mAP50": "standard",
        "val_loss": "standard",
        "f1": "custom",
    }
    assert list(block.definitions)[-1] == "f1"
    assert ops.get_metrics(ops.create_operation().operation_id).metrics.definitions == {}


def test_a_stored_task_trainops_does_not_know_still_reads(service: OperationsService) -> None:
    # before task was a known key, metadata kept any value under it: such rows must stay readable
    operation = service.create(metadata={"symbol": "COCO"})
    with service.store.engine.begin() as connection:
        connection.execute(
            update(operations)
            .where(operations.c.id == operation.operation_id)
            .values(metadata={"symbol": "COCO", "task": "keypoints"})
        )

    read = service.get(operation.operation_id)

    assert read.metadata.task is None
    assert read.metadata.model_extra == {"unrecognized_task": "keypoints"}
    assert service.list_operations().items[0].operation_id == operation.operation_id
