"""Canonical metric names: every framework's spelling of a metric mapped to trainops' one name for it.

Lightning logs whatever the user named (``val/loss``, ``val_loss_epoch``), Hugging Face's Trainer ``loss`` and
``eval_loss``, Keras ``loss`` and ``val_loss``, Ultralytics ``metrics/mAP50(B)`` and ``train/box_loss``, timm
``eval_top1``. One canonical name per metric lets the diagnosis, the definitions and every UI treat them alike;
callers keep the original spelling as an alias (:func:`canonical_names`), so nothing is renamed silently.

>>> canonical_name("eval_loss"), canonical_name("val/loss"), canonical_name("loss/val")
('val_loss', 'val_loss', 'val_loss')
>>> canonical_name("metrics/mAP50(B)"), canonical_name("metrics/mAP50-95(M)"), canonical_name("train/box_loss")
('mAP50', 'mask_mAP50-95', 'train_box_loss')
>>> canonical_name("f1")
'f1'
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TypeVar

V = TypeVar("V")

INDEX_NAMES = frozenset({"epoch", "step", "global_step", "_step", "_runtime", "_timestamp", "total_flos"})
"""Names frameworks log beside the metrics that are positions or bookkeeping, not metrics."""

_ALIASES: dict[str, str] = {
    # training loss: Keras, Hugging Face and Lightning's bare "loss" is the training loss
    "loss": "train_loss",
    "train_loss": "train_loss",
    "training_loss": "train_loss",
    # accuracy: Keras' bare "accuracy"/"acc" is measured on the training data
    "accuracy": "train_accuracy",
    "acc": "train_accuracy",
    # Keras' accuracy metrics by their class names (integer labels, one-hot labels, one output)
    "sparse_categorical_accuracy": "train_accuracy",
    "categorical_accuracy": "train_accuracy",
    "binary_accuracy": "train_accuracy",
    "train_acc": "train_accuracy",
    "training_accuracy": "train_accuracy",
    "val_acc": "val_accuracy",
    # learning rate: Hugging Face, timm, Keras 3 and Lightning's LearningRateMonitor
    "lr": "learning_rate",
    "learning_rate": "learning_rate",
    # timm's top-k accuracies (in percent there: the integration scales them)
    "eval_top1": "val_accuracy",
    "eval_top5": "top5_accuracy",
    "top1": "val_accuracy",
    "top5": "top5_accuracy",
    "val_top5_accuracy": "top5_accuracy",
    # Ultralytics' classification metrics
    "accuracy_top1": "val_accuracy",
    "accuracy_top5": "top5_accuracy",
    # mean intersection over union (semantic segmentation), as Hugging Face's evaluate and others name it
    "mIoU": "miou",
    "mean_iou": "miou",
    "val_miou": "miou",
    "val_mIoU": "miou",
    "eval_mean_iou": "miou",
    "val_mean_iou": "miou",
    # Ultralytics' detection metrics (box: "(B)") without their suffix
    "precision(B)": "precision",
    "recall(B)": "recall",
    "mAP50(B)": "mAP50",
    "mAP50-95(B)": "mAP50-95",
}

_SPLITS: dict[str, str] = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "eval": "val",
    "evaluation": "val",
    "test": "test",
}

# Ultralytics' other heads: mask (instance segmentation) and pose keep a prefix so they never collide with boxes
_YOLO_HEADS = {"M": "mask_", "P": "pose_"}
_YOLO_METRIC = re.compile(r"^(?P<name>.+)\((?P<head>[BMP])\)$")
_LIGHTNING_EPOCH = re.compile(r"^(?P<name>.+)_epoch$")
# Lightning's metrics of each of several validation (or test) dataloaders: val_loss/dataloader_idx_1
_LIGHTNING_DATALOADER = re.compile(r"^(?P<name>.+)/dataloader_idx_(?P<index>\d+)$")
_ACCURACIES = {
    "acc": "accuracy",
    "sparse_categorical_accuracy": "accuracy",
    "categorical_accuracy": "accuracy",
    "binary_accuracy": "accuracy",
}
# Lightning's LearningRateMonitor: lr-Adam, lr-Adam/pg1, lr-SGD-momentum; Ultralytics: lr/pg0
_LR_GROUP = re.compile(r"^(?:lr|learning_rate)[/-][A-Za-z0-9_/\-]+$")
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_.\-/]")


def canonical_name(name: str) -> str:
    """trainops' name for a metric a framework reported as ``name`` (unchanged when it has no other).

    The result is always a valid metric name for :class:`~trainops.core.epoch.EpochRecord`: characters it does
    not allow become ``_``.
    """
    text = name.strip()
    if text.startswith("metrics/"):  # Ultralytics: metrics/mAP50(B)
        text = text.removeprefix("metrics/")
    if text in _ALIASES:
        return _ALIASES[text]
    yolo = _YOLO_METRIC.match(text)
    if yolo:
        head = yolo["head"]
        base = _ALIASES.get(f"{yolo['name']}(B)", yolo["name"])
        return _valid(base if head == "B" else f"{_YOLO_HEADS[head]}{base}")
    if _LR_GROUP.match(text):
        return "learning_rate"
    loader = _LIGHTNING_DATALOADER.match(text)
    if loader:
        # the first dataloader's metrics are the run's own (val_loss, which the diagnosis reads); the others'
        # keep their index
        base = canonical_name(loader["name"])
        return base if loader["index"] == "0" else _valid(f"{base}_dataloader_idx_{loader['index']}")
    lightning = _LIGHTNING_EPOCH.match(text)
    if lightning and (lightning["name"] in _ALIASES or _split_and_name(lightning["name"])):
        # Lightning's epoch aggregate of a metric logged with on_step and on_epoch (time_per_epoch stays)
        return canonical_name(lightning["name"])
    split_name = _split_and_name(text)
    if split_name is not None:
        split, metric = split_name
        metric = _ACCURACIES.get(metric, metric)
        if split == "train" and metric in {"loss", "accuracy"}:
            return f"train_{metric}"
        candidate = f"{split}_{metric}"
        return _ALIASES.get(candidate, _valid(candidate))
    return _valid(text)


def canonical_names(names: Iterable[str]) -> dict[str, str]:
    """``{canonical: original}`` for every name whose canonical name differs from it, in the order given.

    Index names (``epoch``, ``step``, ...) are left out. When two originals map to one canonical name, the first
    wins; the caller keeps the others under their own names.

    >>> canonical_names(["eval_loss", "f1", "loss", "epoch"])
    {'val_loss': 'eval_loss', 'train_loss': 'loss'}
    """
    aliases: dict[str, str] = {}
    for name in names:
        if name in INDEX_NAMES:
            continue
        canonical = canonical_name(name)
        if canonical != name and canonical not in aliases:
            aliases[canonical] = name
    return aliases


def normalize_metrics(metrics: Mapping[str, V]) -> tuple[dict[str, V], dict[str, str]]:
    """A framework's metrics under canonical names, and the aliases (``{canonical: original}``) used.

    Index names are dropped. A metric whose canonical name is already taken (a framework that logs both
    ``val_loss`` and ``val/loss``) keeps its original name, so no value is lost.

    >>> values, aliases = normalize_metrics({"eval_loss": 0.5, "eval_f1": 0.8, "loss": 0.4, "epoch": 3.0})
    >>> values
    {'val_loss': 0.5, 'val_f1': 0.8, 'train_loss': 0.4}
    >>> aliases
    {'val_loss': 'eval_loss', 'val_f1': 'eval_f1', 'train_loss': 'loss'}
    """
    values: dict[str, V] = {}
    aliases: dict[str, str] = {}
    # names already canonical go first, so an alias never displaces a metric reported under its own name
    ordered = sorted(metrics.items(), key=lambda item: canonical_name(item[0]) != item[0])
    for name, value in ordered:
        if name in INDEX_NAMES:
            continue
        canonical = canonical_name(name)
        if canonical in values:
            canonical = _valid(name)
            if canonical in values:
                continue
        values[canonical] = value
        if canonical != name:
            aliases[canonical] = name
    order = {name: index for index, name in enumerate(metrics)}
    reordered = dict(sorted(values.items(), key=lambda item: order.get(aliases.get(item[0], item[0]), 0)))
    return reordered, aliases


def _split_and_name(text: str) -> tuple[str, str] | None:
    """``("val", "loss")`` for ``val/loss``, ``loss/val``, ``eval_loss``, ``validation_loss``, ``val-loss``."""
    for separator in ("/", "_", "-", "."):
        head, found, tail = text.partition(separator)
        if not found or not head or not tail:
            continue
        if head in _SPLITS:
            return _SPLITS[head], _valid(tail.replace("/", "_"))
        if separator == "/" and tail in _SPLITS:
            return _SPLITS[tail], _valid(head)
    return None


def _valid(name: str) -> str:
    cleaned = _NOT_ALLOWED.sub("_", name)[:128]
    return cleaned if cleaned[:1].isalpha() or cleaned[:1] == "_" else f"_{cleaned}"[:128]
