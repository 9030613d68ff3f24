"""What a metric means, per task: three tiers of definitions, so a UI or an agent can read a run it has never seen.

1. **primary**: the one metric a task is judged by (:data:`TASK_PRIMARY_METRICS`: ``mAP50`` for detection). A run
   that records its task (``metadata.task``) is diagnosed on it by default, with its direction (mAP50 is
   maximised), so the best epoch, the plateau and the recommendation follow it.
2. **standard**: the metrics trainops knows for the task (:data:`TASK_STANDARD_METRICS`), plus trainops' own
   fields (``train_loss``, ``val_loss``, ``train_accuracy``, ``val_accuracy``, ``learning_rate``, ``duration``),
   which mean the same in every task.
3. **custom**: anything else a run reports. Its definition is inferred from its name: higher is better when
   :func:`~trainops.core.policy.mode_for` (the diagnosis's own ``auto`` mode) says so.

Names are trainops' canonical names (:mod:`trainops.core.metric_names`): Ultralytics' ``metrics/mAP50(B)`` is
``mAP50``, ``metrics/mAP50(M)`` is ``mask_mAP50``, ``train/box_loss`` is ``train_box_loss``; Hugging Face's
``eval_loss`` and Lightning's ``val/loss`` are ``val_loss``.

``percent`` values are fractions in [0, 1] shown as percentages (Keras, torchmetrics, Ultralytics and
Hugging Face all report accuracy and mAP that way); an integration whose framework reports 0-100 (timm's top-1)
scales them.

>>> definition_of("mAP50", TaskType.OBJECT_DETECTION)[0], definition_of("mAP50")[0], definition_of("grad_norm")[0]
(<MetricTier.PRIMARY: 'primary'>, <MetricTier.STANDARD: 'standard'>, <MetricTier.CUSTOM: 'custom'>)
>>> definition_of("val_f1_macro")[1].higher_is_better
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from trainops.core.epoch import EpochRecord
from trainops.core.policy import MonitorPolicy, mode_for
from trainops.errors import InvalidInputError

MetricFormat = Literal["percent", "float", "int"]


class TaskType(StrEnum):
    """What a run learns to do. The values are part of the JSON contract (``metadata.task``)."""

    IMAGE_CLASSIFICATION = "image_classification"
    OBJECT_DETECTION = "object_detection"
    INSTANCE_SEGMENTATION = "instance_segmentation"
    SEMANTIC_SEGMENTATION = "semantic_segmentation"
    POSE_ESTIMATION = "pose_estimation"
    TABULAR_CLASSIFICATION = "tabular_classification"
    TEXT_CLASSIFICATION = "text_classification"
    REGRESSION = "regression"


TASK_NAMES = frozenset(task.value for task in TaskType)


class MetricTier(StrEnum):
    """How well trainops knows a metric: the task's ``primary`` one, a ``standard`` one, or a ``custom`` one."""

    PRIMARY = "primary"
    STANDARD = "standard"
    CUSTOM = "custom"


class MetricDefinition(BaseModel):
    """What a metric is and how to show it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    label: str = Field(description="a short human name, e.g. 'mAP@0.5'")
    format: MetricFormat = Field(
        description="percent: a fraction in [0, 1] shown as a percentage; float: a number in the metric's units; "
        "int: a count"
    )
    higher_is_better: bool | None = Field(
        description="true when larger values are better, false when smaller are; null for a setting that is not a "
        "score (the learning rate)"
    )
    description: str = Field(description="what it measures, in a sentence")

    def tiered(self, tier: MetricTier) -> TieredDefinition:
        """This definition with its tier, as a run's metrics answer carries it."""
        return TieredDefinition(tier=tier, **self.model_dump())


class TieredDefinition(MetricDefinition):
    """A metric's definition and its tier, for one run (``metrics.definitions`` of the metrics answer)."""

    tier: MetricTier


def _score(label: str, description: str) -> MetricDefinition:
    return MetricDefinition(label=label, format="percent", higher_is_better=True, description=description)


def _loss(label: str, description: str) -> MetricDefinition:
    return MetricDefinition(label=label, format="float", higher_is_better=False, description=description)


COMMON_METRICS: dict[str, MetricDefinition] = {
    "train_loss": _loss("Training loss", "The loss on the training data, averaged over the epoch."),
    "val_loss": _loss(
        "Validation loss", "The loss on held-out validation data; the diagnosis's monitor unless a task names another."
    ),
    "train_accuracy": _score("Training accuracy", "Share of training examples predicted correctly."),
    "val_accuracy": _score("Validation accuracy", "Share of held-out examples whose top prediction is correct."),
    "learning_rate": MetricDefinition(
        label="Learning rate",
        format="float",
        higher_is_better=None,
        description="The optimiser's step size at the end of the epoch: a setting, not a score.",
    ),
    "duration": _loss("Epoch duration (s)", "Seconds the epoch took."),
}
"""trainops' own standard fields: the same meaning in every task."""

_TOP5 = {"top5_accuracy": _score("Top-5 accuracy", "Share of held-out examples whose true class is among the top 5.")}

_CLASS_SCORES = {
    "val_f1": _score("Validation F1", "F1 score on held-out data (macro-averaged over classes unless the loop says)."),
    "val_precision": _score("Validation precision", "Share of held-out positive predictions that are right."),
    "val_recall": _score("Validation recall", "Share of held-out positives that are found."),
    "val_auc": _score("Validation ROC AUC", "Area under the ROC curve on held-out data."),
}

_BOX_SCORES = {
    "mAP50": _score("mAP@0.5", "Mean average precision over classes at box IoU 0.5, on the validation set."),
    "mAP50-95": _score(
        "mAP@0.5:0.95", "Mean average precision averaged over box IoU thresholds 0.5 to 0.95 (COCO's main metric)."
    ),
    "precision": _score("Precision", "Share of predicted boxes that match an object, on the validation set."),
    "recall": _score("Recall", "Share of objects found by a predicted box, on the validation set."),
}


def _losses(*heads: tuple[str, str]) -> dict[str, MetricDefinition]:
    """Ultralytics' per-head losses on the training and the validation data (``train/box_loss`` and so on)."""
    split_names = {"train": ("Training", "training"), "val": ("Validation", "validation")}
    return {
        f"{split}_{head}_loss": _loss(f"{title} {label} loss", f"The {label} loss on the {data} data.")
        for split, (title, data) in split_names.items()
        for head, label in heads
    }


_BOX = ("box", "box regression")
_CLS = ("cls", "classification")
_DFL = ("dfl", "distribution focal")

_MASK_SCORES = {
    "mask_mAP50": _score("Mask mAP@0.5", "Mean average precision at mask IoU 0.5, on the validation set."),
    "mask_mAP50-95": _score("Mask mAP@0.5:0.95", "Mean average precision averaged over mask IoU 0.5 to 0.95."),
    "mask_precision": _score("Mask precision", "Share of predicted masks that match an object."),
    "mask_recall": _score("Mask recall", "Share of objects found by a predicted mask."),
}

_POSE_SCORES = {
    "pose_mAP50": _score(
        "Pose mAP@0.5",
        "Mean average precision of keypoints at object keypoint similarity (OKS) 0.5, on the validation set.",
    ),
    "pose_mAP50-95": _score("Pose mAP@0.5:0.95", "Mean average precision of keypoints averaged over OKS 0.5 to 0.95."),
    "pose_precision": _score("Pose precision", "Share of predicted poses that match a person (by OKS)."),
    "pose_recall": _score("Pose recall", "Share of people whose pose is found (by OKS)."),
    "pck": _score(
        "PCK", "Percentage of correct keypoints: predicted within a threshold of the true position (top-down loops)."
    ),
}

_SEGMENTATION_SCORES = {
    "miou": _score("mIoU", "Intersection over union of predicted and true pixels, averaged over classes."),
    "dice": _score("Dice", "Dice coefficient (F1 over pixels), averaged over classes."),
    "pixel_accuracy": _score("Pixel accuracy", "Share of pixels whose class is predicted correctly."),
}


def _error(label: str, description: str) -> MetricDefinition:
    return MetricDefinition(label=label, format="float", higher_is_better=False, description=description)


_REGRESSION = {
    "val_mae": _error("Validation MAE", "Mean absolute error on held-out data, in the target's units."),
    "val_rmse": _error("Validation RMSE", "Root mean squared error on held-out data, in the target's units."),
    "val_mse": _error("Validation MSE", "Mean squared error on held-out data."),
    "val_r2": MetricDefinition(
        label="Validation R²",
        format="float",
        higher_is_better=True,
        description="Share of the target's variance explained on held-out data (1 is perfect; it can be negative).",
    ),
    "mae": _error("MAE", "Mean absolute error, on the data the loop measures it on (Keras: the training data)."),
    "rmse": _error("RMSE", "Root mean squared error, on the data the loop measures it on (Keras: the training data)."),
    "mse": _error("MSE", "Mean squared error, on the data the loop measures it on (Keras: the training data)."),
    "r2": MetricDefinition(
        label="R²",
        format="float",
        higher_is_better=True,
        description="Share of the target's variance explained, on the data the loop measures it on.",
    ),
}

TASK_PRIMARY_METRICS: dict[TaskType, str] = {
    TaskType.IMAGE_CLASSIFICATION: "val_accuracy",
    TaskType.OBJECT_DETECTION: "mAP50",
    TaskType.INSTANCE_SEGMENTATION: "mask_mAP50",
    TaskType.SEMANTIC_SEGMENTATION: "miou",
    TaskType.POSE_ESTIMATION: "pose_mAP50",
    TaskType.TABULAR_CLASSIFICATION: "val_accuracy",
    TaskType.TEXT_CLASSIFICATION: "val_accuracy",
    TaskType.REGRESSION: "val_loss",
}
"""The metric each task is judged by, a key of its :data:`TASK_STANDARD_METRICS`.

- Classification: accuracy on held-out data, ``val_accuracy`` (Keras' bare ``accuracy`` is measured on the
  training data, so it is ``train_accuracy``; Hugging Face's ``eval_accuracy`` and timm's ``eval_top1`` are
  ``val_accuracy``).
- Detection, instance segmentation: mAP at IoU 0.5 (of boxes; of masks), what Ultralytics reports first.
- Semantic segmentation: mean IoU.
- Pose: Ultralytics' keypoint mAP at OKS 0.5 (``metrics/mAP50(P)``), not PCK: it is what the most used pose
  trainer reports every epoch, and it scores whole poses of every person in the image; ``pck`` (top-down loops)
  is a standard metric of the task.
- Regression: the validation loss. It is the objective every regression loop reports (MSE, Huber, ...), while
  MAE, RMSE and R² each appear in only some loops; they are standard metrics of the task.
"""


def _table(task: TaskType, *parts: dict[str, MetricDefinition]) -> dict[str, MetricDefinition]:
    """The standard metrics of ``task``: ``parts`` merged, the task's primary metric first."""
    merged = {name: definition for part in parts for name, definition in part.items()}
    primary = TASK_PRIMARY_METRICS[task]
    return {primary: merged[primary], **merged}


TASK_STANDARD_METRICS: dict[TaskType, dict[str, MetricDefinition]] = {
    TaskType.IMAGE_CLASSIFICATION: _table(TaskType.IMAGE_CLASSIFICATION, COMMON_METRICS, _TOP5),
    TaskType.OBJECT_DETECTION: _table(
        TaskType.OBJECT_DETECTION, _BOX_SCORES, _losses(_BOX, _CLS, _DFL), COMMON_METRICS
    ),
    TaskType.INSTANCE_SEGMENTATION: _table(
        TaskType.INSTANCE_SEGMENTATION,
        _MASK_SCORES,
        _BOX_SCORES,
        _losses(_BOX, ("seg", "mask segmentation"), _CLS, _DFL),
        COMMON_METRICS,
    ),
    TaskType.SEMANTIC_SEGMENTATION: _table(TaskType.SEMANTIC_SEGMENTATION, _SEGMENTATION_SCORES, COMMON_METRICS),
    TaskType.POSE_ESTIMATION: _table(
        TaskType.POSE_ESTIMATION,
        _POSE_SCORES,
        _BOX_SCORES,
        _losses(_BOX, ("pose", "keypoint location"), ("kobj", "keypoint visibility"), _CLS, _DFL),
        COMMON_METRICS,
    ),
    TaskType.TABULAR_CLASSIFICATION: _table(TaskType.TABULAR_CLASSIFICATION, COMMON_METRICS, _CLASS_SCORES),
    TaskType.TEXT_CLASSIFICATION: _table(TaskType.TEXT_CLASSIFICATION, COMMON_METRICS, _CLASS_SCORES),
    TaskType.REGRESSION: _table(TaskType.REGRESSION, COMMON_METRICS, _REGRESSION),
}
"""Every metric trainops knows for each task, trainops' own fields (:data:`COMMON_METRICS`) included; each task's
primary metric first among them."""

_ANY_TASK: dict[str, MetricDefinition] = {
    name: definition for metrics in TASK_STANDARD_METRICS.values() for name, definition in metrics.items()
}
"""Every standard definition, whatever the task (a name means the same in every task that defines it)."""


def parse_task(value: TaskType | str) -> TaskType:
    """``value`` as a :class:`TaskType`.

    Raises:
        InvalidInputError: not a task trainops knows; the message and ``details["valid"]`` list those it does.

    >>> parse_task("object_detection")
    <TaskType.OBJECT_DETECTION: 'object_detection'>
    >>> parse_task("detection")
    Traceback (most recent call last):
    ...
    trainops.errors.InvalidInputError: task 'detection' is not one trainops knows; use one of: ...
    """
    try:
        return TaskType(value)
    except ValueError:
        valid = [task.value for task in TaskType]
        raise InvalidInputError(
            f"task {value!r} is not one trainops knows; use one of: {', '.join(valid)} (or leave it out)",
            details={"task": value, "valid": valid},
        ) from None


def custom_definition(name: str) -> MetricDefinition:
    """The definition of a metric trainops does not know, inferred from its name as the diagnosis infers its mode."""
    return MetricDefinition(
        label=name,
        format="float",
        higher_is_better=mode_for(name) == "max",
        description="A metric this run reports that trainops has no definition of; higher is taken as better when "
        "its name reads as a score (accuracy, f1, auc, map, iou, ...) and has no loss or error in it.",
    )


def definition_of(name: str, task: TaskType | None = None) -> tuple[MetricTier, MetricDefinition]:
    """A metric's tier and definition, for a run of ``task`` (any task when ``None``).

    Without a task no metric is primary, and a name any task defines is standard.

    >>> tier, definition = definition_of("mAP50", TaskType.OBJECT_DETECTION)
    >>> tier.value, definition.label, definition.format, definition.higher_is_better
    ('primary', 'mAP@0.5', 'percent', True)
    >>> definition_of("val_loss", TaskType.OBJECT_DETECTION)[0].value
    'standard'
    >>> definition_of("mask_mAP50", TaskType.OBJECT_DETECTION)[0].value  # another task's metric: custom here
    'custom'
    """
    if task is None:
        known = _ANY_TASK.get(name)
    else:
        if TASK_PRIMARY_METRICS[task] == name:
            return MetricTier.PRIMARY, TASK_STANDARD_METRICS[task][name]
        known = TASK_STANDARD_METRICS[task].get(name)
    if known is not None:
        return MetricTier.STANDARD, known
    return MetricTier.CUSTOM, custom_definition(name)


def reported_definitions(names: Iterable[str], task: TaskType | None = None) -> dict[str, TieredDefinition]:
    """The tier and definition of each metric a run reported: the primary first, then the standard ones in the
    task's order, then the custom ones in the order given.

    >>> list(reported_definitions(["grad_norm", "val_loss", "mAP50"], TaskType.OBJECT_DETECTION))
    ['mAP50', 'val_loss', 'grad_norm']
    """
    order = {name: index for index, name in enumerate(TASK_STANDARD_METRICS[task] if task else _ANY_TASK)}
    found = []
    for position, name in enumerate(dict.fromkeys(names)):
        tier, definition = definition_of(name, task)
        rank = (
            (0, 0) if tier is MetricTier.PRIMARY else (1, order[name]) if tier is MetricTier.STANDARD else (2, position)
        )
        found.append((rank, name, definition.tiered(tier)))
    return {name: definition for _, name, definition in sorted(found, key=lambda item: item[0])}


def history_metric_names(history: Sequence[EpochRecord]) -> list[str]:
    """Every metric any epoch of ``history`` reports, ``duration`` included, in the order they first appear."""
    names: dict[str, None] = {}
    for record in history:
        names.update(dict.fromkeys(record.metric_names()))
        if record.duration is not None:
            names["duration"] = None
    return list(names)


def monitor_choices(policy: MonitorPolicy, task: TaskType | None) -> list[MonitorPolicy]:
    """The policies a run of ``task`` may be judged by, preferred first; :func:`policy_for_task` takes the first
    whose monitor the run's history reports, and the last (``policy`` itself) otherwise.

    The task's primary metric, in its direction, comes first unless the caller chose a monitor (``"monitor"`` in
    ``policy.model_fields_set``) or it is the policy's monitor already. A mode chosen explicitly is kept; ``auto``
    becomes the primary metric's direction. Readers that cannot load every history (the runs list's best values)
    ask the store which of these monitors each run reports.

    >>> choices = monitor_choices(MonitorPolicy(), TaskType.OBJECT_DETECTION)
    >>> [(choice.monitor, choice.resolved_mode) for choice in choices]
    [('mAP50', 'max'), ('val_loss', 'min')]
    >>> [choice.monitor for choice in monitor_choices(MonitorPolicy(), None)]
    ['val_loss']
    """
    if task is None or "monitor" in policy.model_fields_set:
        return [policy]
    primary = TASK_PRIMARY_METRICS[task]
    if primary == policy.monitor:
        return [policy]
    update: dict[str, str] = {"monitor": primary}
    if policy.mode == "auto":
        better = TASK_STANDARD_METRICS[task][primary].higher_is_better
        update["mode"] = "max" if better else "min"
    return [policy.model_copy(update=update), policy]


def policy_for_task(policy: MonitorPolicy, task: TaskType | None, history: Sequence[EpochRecord]) -> MonitorPolicy:
    """The policy that judges a run of ``task``: the task's primary metric becomes the monitor, in its direction,
    unless the caller chose a monitor (``"monitor"`` in ``policy.model_fields_set``); see :func:`monitor_choices`.

    Until the run has reported its primary metric it is judged as before, on the default monitor (``val_loss``):
    a detection run's first epochs, or one whose loop reports mAP under another name, are never an error. A mode
    chosen explicitly is kept; ``auto`` becomes the primary metric's direction.

    >>> history = [EpochRecord(epoch=0, val_loss=1.0, metrics={"mAP50": 0.3})]
    >>> judged = policy_for_task(MonitorPolicy(patience=5), TaskType.OBJECT_DETECTION, history)
    >>> judged.monitor, judged.mode, judged.patience
    ('mAP50', 'max', 5)
    >>> policy_for_task(MonitorPolicy(monitor="val_loss"), TaskType.OBJECT_DETECTION, history).monitor
    'val_loss'
    """
    *preferred, fallback = monitor_choices(policy, task)
    for choice in preferred:
        if any(record.value(choice.monitor) is not None for record in history):
            return choice
    return fallback
