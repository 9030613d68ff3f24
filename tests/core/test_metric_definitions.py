"""Metric definitions in three tiers, the task an operation records, and the monitor a task implies."""

from __future__ import annotations

import doctest

import pytest
from pydantic import ValidationError

from trainops.core import metric_definitions
from trainops.core.analysis import analyze
from trainops.core.epoch import EpochRecord
from trainops.core.metric_definitions import (
    COMMON_METRICS,
    TASK_PRIMARY_METRICS,
    TASK_STANDARD_METRICS,
    MetricDefinition,
    TaskType,
    definition_of,
    history_metric_names,
    parse_task,
    policy_for_task,
    reported_definitions,
)
from trainops.core.operation import STORED, OperationMetadata
from trainops.core.policy import MonitorPolicy, mode_for
from trainops.errors import InvalidInputError

DETECTION = TaskType.OBJECT_DETECTION

# Where a definition's direction differs from what the diagnosis's mode "auto" reads in the name, and why.
MODE_EXCEPTIONS: dict[str, bool | None] = {
    "learning_rate": None,  # a setting, not a score: neither direction is better (auto reads "min")
}


def every_definition() -> list[tuple[TaskType, str, MetricDefinition]]:
    return [
        (task, name, definition) for task, table in TASK_STANDARD_METRICS.items() for name, definition in table.items()
    ]


def test_the_docstring_examples_run() -> None:
    result = doctest.testmod(metric_definitions, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0


def test_task_values_are_the_contract() -> None:
    assert [task.value for task in TaskType] == [
        "image_classification",
        "object_detection",
        "instance_segmentation",
        "semantic_segmentation",
        "pose_estimation",
        "tabular_classification",
        "text_classification",
        "regression",
    ]


@pytest.mark.parametrize(
    ("task", "primary"),
    [
        (TaskType.IMAGE_CLASSIFICATION, "val_accuracy"),
        (TaskType.OBJECT_DETECTION, "mAP50"),
        (TaskType.INSTANCE_SEGMENTATION, "mask_mAP50"),
        (TaskType.SEMANTIC_SEGMENTATION, "miou"),
        (TaskType.POSE_ESTIMATION, "pose_mAP50"),
        (TaskType.TABULAR_CLASSIFICATION, "val_accuracy"),
        (TaskType.TEXT_CLASSIFICATION, "val_accuracy"),
        (TaskType.REGRESSION, "val_loss"),
    ],
)
def test_each_task_has_its_primary_metric_first_among_its_standard_ones(task: TaskType, primary: str) -> None:
    assert TASK_PRIMARY_METRICS[task] == primary
    assert next(iter(TASK_STANDARD_METRICS[task])) == primary
    assert set(COMMON_METRICS) <= set(TASK_STANDARD_METRICS[task])  # trainops' own fields apply to every task


@pytest.mark.parametrize(("task", "name", "definition"), every_definition(), ids=lambda value: str(value))
def test_every_direction_agrees_with_the_diagnosis_auto_mode_or_is_a_listed_exception(
    task: TaskType, name: str, definition: MetricDefinition
) -> None:
    # The diagnosis picks min or max from the name (mode auto): a definition that disagrees would draw a curve as
    # improving while the diagnosis judges it worsening.
    if name in MODE_EXCEPTIONS:
        assert definition.higher_is_better is MODE_EXCEPTIONS[name]
        assert (mode_for(name) == "max") is not MODE_EXCEPTIONS[name]  # still an exception: else drop it above
    else:
        assert definition.higher_is_better is (mode_for(name) == "max")


def test_the_primary_metrics_are_never_exceptions() -> None:
    # policy_for_task sets the mode from the definition, but a monitor chosen by name alone uses auto
    assert not set(TASK_PRIMARY_METRICS.values()) & set(MODE_EXCEPTIONS)


def test_a_name_means_the_same_in_every_task_that_defines_it() -> None:
    seen: dict[str, MetricDefinition] = {}
    for _, name, definition in every_definition():
        assert seen.setdefault(name, definition) == definition, name


def test_scores_are_percent_and_losses_float() -> None:
    for _, name, definition in every_definition():
        if definition.format == "percent":
            assert definition.higher_is_better is True, name
        if name.endswith("_loss"):
            assert (definition.format, definition.higher_is_better) == ("float", False), name


@pytest.mark.parametrize(
    ("name", "task", "tier", "label", "format", "higher_is_better"),
    [
        ("mAP50", DETECTION, "primary", "mAP@0.5", "percent", True),
        ("mAP50", None, "standard", "mAP@0.5", "percent", True),  # no task: nothing is primary
        ("mAP50", TaskType.INSTANCE_SEGMENTATION, "standard", "mAP@0.5", "percent", True),  # box mAP there
        ("mask_mAP50", TaskType.INSTANCE_SEGMENTATION, "primary", "Mask mAP@0.5", "percent", True),
        ("mask_mAP50", DETECTION, "custom", "mask_mAP50", "float", True),  # another task's metric
        ("mAP50-95", DETECTION, "standard", "mAP@0.5:0.95", "percent", True),
        ("val_box_loss", DETECTION, "standard", "Validation box regression loss", "float", False),
        ("train_dfl_loss", DETECTION, "standard", "Training distribution focal loss", "float", False),
        (
            "train_seg_loss",
            TaskType.INSTANCE_SEGMENTATION,
            "standard",
            "Training mask segmentation loss",
            "float",
            False,
        ),
        ("val_kobj_loss", TaskType.POSE_ESTIMATION, "standard", "Validation keypoint visibility loss", "float", False),
        ("pose_mAP50", TaskType.POSE_ESTIMATION, "primary", "Pose mAP@0.5", "percent", True),
        ("pck", TaskType.POSE_ESTIMATION, "standard", "PCK", "percent", True),
        ("miou", TaskType.SEMANTIC_SEGMENTATION, "primary", "mIoU", "percent", True),
        ("val_accuracy", TaskType.IMAGE_CLASSIFICATION, "primary", "Validation accuracy", "percent", True),
        ("val_accuracy", DETECTION, "standard", "Validation accuracy", "percent", True),
        ("top5_accuracy", TaskType.IMAGE_CLASSIFICATION, "standard", "Top-5 accuracy", "percent", True),
        ("val_f1", TaskType.TEXT_CLASSIFICATION, "standard", "Validation F1", "percent", True),
        ("val_loss", TaskType.REGRESSION, "primary", "Validation loss", "float", False),
        ("val_loss", DETECTION, "standard", "Validation loss", "float", False),
        ("val_r2", TaskType.REGRESSION, "standard", "Validation R²", "float", True),
        ("rmse", TaskType.REGRESSION, "standard", "RMSE", "float", False),
        ("learning_rate", TaskType.REGRESSION, "standard", "Learning rate", "float", None),
        ("duration", None, "standard", "Epoch duration (s)", "float", False),
        # tier three: the direction the diagnosis would infer from the name
        ("grad_norm", DETECTION, "custom", "grad_norm", "float", False),
        ("val_f1_macro", DETECTION, "custom", "val_f1_macro", "float", True),
        ("val_heatmap_loss", None, "custom", "val_heatmap_loss", "float", False),
        ("sharpe", None, "custom", "sharpe", "float", True),
    ],
)
def test_definition_of(
    name: str, task: TaskType | None, tier: str, label: str, format: str, higher_is_better: bool | None
) -> None:
    found_tier, definition = definition_of(name, task)
    assert (found_tier.value, definition.label, definition.format, definition.higher_is_better) == (
        tier,
        label,
        format,
        higher_is_better,
    )


def test_definitions_are_frozen_and_refuse_unknown_formats() -> None:
    definition = definition_of("mAP50")[1]
    with pytest.raises(ValidationError):
        definition.label = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="format"):
        MetricDefinition(label="x", format="ratio", higher_is_better=True, description="x")  # type: ignore[arg-type]


def test_parse_task_names_the_valid_tasks() -> None:
    assert parse_task("regression") is TaskType.REGRESSION
    assert parse_task(TaskType.REGRESSION) is TaskType.REGRESSION
    with pytest.raises(InvalidInputError, match=r"task 'detection' is not one trainops knows; use one of: .*object_de"):
        parse_task("detection")
    with pytest.raises(InvalidInputError) as refused:
        parse_task("Object_Detection")
    assert refused.value.details == {"task": "Object_Detection", "valid": [task.value for task in TaskType]}


def test_reported_definitions_put_the_primary_first_then_standard_then_custom() -> None:
    names = ["grad_norm", "train_loss", "val_box_loss", "mAP50", "lr_scale", "val_loss"]
    found = reported_definitions(names, DETECTION)
    assert list(found) == ["mAP50", "val_box_loss", "train_loss", "val_loss", "grad_norm", "lr_scale"]
    assert [found[name].tier for name in found] == ["primary"] + ["standard"] * 3 + ["custom"] * 2
    assert reported_definitions([], DETECTION) == {}
    # without a task: no primary; standard ones in the order of the tables
    assert [definition.tier for definition in reported_definitions(names).values()] == ["standard"] * 4 + ["custom"] * 2


def test_history_metric_names_in_first_reported_order_with_duration() -> None:
    history = [
        EpochRecord(epoch=0, train_loss=1.0, metrics={"mAP50": 0.1}),
        EpochRecord(epoch=1, val_loss=0.9, duration=2.0, metrics={"mAP50": 0.2, "grad_norm": 1.0}),
    ]
    assert history_metric_names(history) == ["train_loss", "mAP50", "val_loss", "grad_norm", "duration"]


def detection_history(epochs: int = 12, peak: int = 4) -> list[EpochRecord]:
    """mAP50 rises to its peak, then falls; validation loss falls all along (it would choose the last epoch)."""
    records = []
    for epoch in range(epochs):
        m_ap = 0.1 + 0.1 * epoch if epoch <= peak else 0.1 + 0.1 * peak - 0.04 * (epoch - peak)
        records.append(
            EpochRecord(epoch=epoch, train_loss=1 - 0.05 * epoch, val_loss=1 - 0.04 * epoch, metrics={"mAP50": m_ap})
        )
    return records


@pytest.mark.parametrize(
    ("policy", "task", "history", "monitor", "mode"),
    [
        (MonitorPolicy(), None, detection_history(), "val_loss", "auto"),  # no task: unchanged
        (MonitorPolicy(), DETECTION, detection_history(), "mAP50", "max"),
        (MonitorPolicy(patience=3, stop_rule="patience"), DETECTION, detection_history(), "mAP50", "max"),
        (MonitorPolicy(monitor="val_loss"), DETECTION, detection_history(), "val_loss", "auto"),  # chosen: kept
        (MonitorPolicy(monitor="mAP50"), DETECTION, detection_history(), "mAP50", "auto"),
        (MonitorPolicy(mode="min"), DETECTION, detection_history(), "mAP50", "min"),  # a chosen mode is kept
        (MonitorPolicy(mode="auto"), DETECTION, detection_history(), "mAP50", "max"),
        # the primary metric not reported (yet): judged on val_loss, as before
        (MonitorPolicy(), DETECTION, [EpochRecord(epoch=0, val_loss=1.0)], "val_loss", "auto"),
        (MonitorPolicy(), DETECTION, [], "val_loss", "auto"),
        (MonitorPolicy(), TaskType.SEMANTIC_SEGMENTATION, detection_history(), "val_loss", "auto"),
        (MonitorPolicy(), TaskType.REGRESSION, detection_history(), "val_loss", "auto"),  # its primary is val_loss
    ],
)
def test_policy_for_task(
    policy: MonitorPolicy, task: TaskType | None, history: list[EpochRecord], monitor: str, mode: str
) -> None:
    judged_by = policy_for_task(policy, task, history)
    assert (judged_by.monitor, judged_by.mode) == (monitor, mode)
    assert judged_by.model_dump(exclude={"monitor", "mode"}) == policy.model_dump(exclude={"monitor", "mode"})


def test_a_detection_run_is_judged_on_map50() -> None:
    history = detection_history(epochs=12, peak=4)
    by_default = analyze(history, MonitorPolicy(), total_epochs_planned=40)
    by_task = analyze(history, policy_for_task(MonitorPolicy(), DETECTION, history), total_epochs_planned=40)

    assert (by_default.monitor, by_default.best_epoch) == ("val_loss", 11)
    assert (by_task.monitor, by_task.mode, by_task.best_epoch, by_task.best_value) == ("mAP50", "max", 4, 0.5)
    assert by_task.recommendation.action == "stop_and_restore_best"
    assert by_task.recommendation.restore_epoch == 4
    assert "mAP50" in by_task.recommendation.reason


# -- an operation records its task ------------------------------------------------------------------------------


def test_operation_metadata_records_a_known_task() -> None:
    assert OperationMetadata().task is None
    assert OperationMetadata.model_validate({"task": "object_detection"}).task is DETECTION
    assert OperationMetadata(task=DETECTION).model_dump(mode="json")["task"] == "object_detection"


@pytest.mark.parametrize("task", ["detection", "", "OBJECT_DETECTION"])
def test_operation_metadata_refuses_an_unknown_task_listing_the_known_ones(task: str) -> None:
    with pytest.raises(ValidationError, match=r"task .* is not one trainops knows; use one of: image_classification"):
        OperationMetadata.model_validate({"task": task})


def test_stored_metadata_with_a_task_trainops_does_not_know_still_reads() -> None:
    # rows written before task was a known key kept any value: the operation must stay readable
    stored = {"symbol": "EURUSD", "task": "keypoints", "note": "kept"}
    metadata = OperationMetadata.model_validate(stored, context=STORED)
    assert metadata.task is None
    assert metadata.model_extra == {"note": "kept", "unrecognized_task": "keypoints"}
    assert OperationMetadata.model_validate({"task": "regression"}, context=STORED).task is TaskType.REGRESSION
    assert OperationMetadata.model_validate({"symbol": "X"}, context=STORED).task is None  # old rows: no task
