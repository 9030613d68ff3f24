"""Wire types of ``GET /metrics/definitions``: what each task's metrics mean, for a UI or an agent."""

from __future__ import annotations

from pydantic import BaseModel, Field

from trainops.core.metric_definitions import (
    TASK_PRIMARY_METRICS,
    TASK_STANDARD_METRICS,
    MetricTier,
    TaskType,
    TieredDefinition,
    definition_of,
    parse_task,
)

TIERS: dict[MetricTier, str] = {
    MetricTier.PRIMARY: "the metric the task is judged by: a run that records its task (metadata.task) is "
    "diagnosed on it by default, in its direction",
    MetricTier.STANDARD: "a metric trainops knows for the task, and trainops' own fields (train_loss, val_loss, "
    "train_accuracy, val_accuracy, learning_rate, duration) in every task",
    MetricTier.CUSTOM: "any other metric a run reports: format float, higher is better when its name reads as a "
    "score (accuracy, f1, auc, map, iou, ...) and has no loss or error in it, as the diagnosis's mode auto decides",
}


class TaskMetrics(BaseModel):
    """One task's metrics: the one it is judged by, and the definition of every metric trainops knows for it."""

    primary_metric: str = Field(description="the diagnosis's default monitor for a run of this task")
    definitions: dict[str, TieredDefinition] = Field(description="by canonical name, the primary metric first")


class MetricDefinitions(BaseModel):
    """``GET /metrics/definitions``: each task's metrics (or one task's, when asked), and what the tiers mean."""

    tasks: dict[TaskType, TaskMetrics]
    tiers: dict[MetricTier, str] = Field(default_factory=lambda: dict(TIERS))


def metric_definitions(task: TaskType | str | None = None) -> MetricDefinitions:
    """Every task's metric definitions, or only ``task``'s.

    Raises:
        InvalidInputError: ``task`` is not one trainops knows (the message lists those it does).

    >>> answer = metric_definitions("object_detection")
    >>> detection = answer.tasks[TaskType.OBJECT_DETECTION]
    >>> detection.primary_metric, detection.definitions["mAP50"].tier.value, list(detection.definitions)[:2]
    ('mAP50', 'primary', ['mAP50', 'mAP50-95'])
    """
    tasks = [parse_task(task)] if task is not None else list(TaskType)
    return MetricDefinitions(
        tasks={
            each: TaskMetrics(
                primary_metric=TASK_PRIMARY_METRICS[each],
                definitions={name: _tiered(name, each) for name in TASK_STANDARD_METRICS[each]},
            )
            for each in tasks
        }
    )


def _tiered(name: str, task: TaskType) -> TieredDefinition:
    tier, definition = definition_of(name, task)
    return definition.tiered(tier)
