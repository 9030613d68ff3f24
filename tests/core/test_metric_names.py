"""Canonical metric names: each framework's spelling maps to one name, and nothing is lost on the way."""

from __future__ import annotations

import pytest

from trainops.core.epoch import EpochRecord
from trainops.core.metric_names import canonical_name, canonical_names, normalize_metrics


@pytest.mark.parametrize(
    ("name", "canonical"),
    [
        # validation loss, every way frameworks write it
        ("val_loss", "val_loss"),
        ("eval_loss", "val_loss"),
        ("val/loss", "val_loss"),
        ("loss/val", "val_loss"),
        ("validation_loss", "val_loss"),
        ("valid_loss", "val_loss"),
        ("val_loss_epoch", "val_loss"),  # Lightning's epoch aggregate
        # training loss and accuracy: Keras' and Hugging Face's bare names are the training ones
        ("loss", "train_loss"),
        ("train/loss", "train_loss"),
        ("loss_epoch", "train_loss"),
        ("accuracy", "train_accuracy"),
        ("acc", "train_accuracy"),
        ("val_acc", "val_accuracy"),
        ("val/acc", "val_accuracy"),
        ("eval_accuracy", "val_accuracy"),
        ("test/acc", "test_accuracy"),
        # Keras' accuracies by class name
        ("sparse_categorical_accuracy", "train_accuracy"),
        ("val_sparse_categorical_accuracy", "val_accuracy"),
        ("val_binary_accuracy", "val_accuracy"),
        ("categorical_accuracy", "train_accuracy"),
        # Lightning's several validation dataloaders: the first is the run's validation set
        ("val_loss/dataloader_idx_0", "val_loss"),
        ("val/acc/dataloader_idx_0", "val_accuracy"),
        ("val_loss/dataloader_idx_1", "val_loss_dataloader_idx_1"),
        ("val_acc/dataloader_idx_1", "val_accuracy_dataloader_idx_1"),
        # learning rates
        ("lr", "learning_rate"),
        ("lr-Adam", "learning_rate"),
        ("lr-AdamW/pg1", "learning_rate"),
        ("lr/pg0", "learning_rate"),
        ("learning_rate_decay", "learning_rate_decay"),
        # timm
        ("eval_top1", "val_accuracy"),
        ("eval_top5", "top5_accuracy"),
        # Ultralytics
        ("metrics/mAP50(B)", "mAP50"),
        ("metrics/mAP50-95(B)", "mAP50-95"),
        ("metrics/precision(B)", "precision"),
        ("metrics/recall(B)", "recall"),
        ("metrics/mAP50-95(M)", "mask_mAP50-95"),
        ("metrics/mAP50(P)", "pose_mAP50"),
        ("metrics/accuracy_top1", "val_accuracy"),
        ("metrics/accuracy_top5", "top5_accuracy"),
        ("mIoU", "miou"),
        ("eval_mean_iou", "miou"),
        ("val/miou", "miou"),
        ("train/box_loss", "train_box_loss"),
        ("val/dfl_loss", "val_dfl_loss"),
        # left alone
        ("f1", "f1"),
        ("grad_norm", "grad_norm"),
        ("time_per_epoch", "time_per_epoch"),
        ("train_loss_step", "train_loss_step"),
        # made valid
        ("Val Loss", "Val_Loss"),
        ("1cycle", "_1cycle"),
    ],
)
def test_canonical_names(name: str, canonical: str) -> None:
    assert canonical_name(name) == canonical
    EpochRecord(epoch=0, **{canonical: 1.0})  # always a name an epoch record takes


def test_a_metric_reported_under_its_own_name_is_never_displaced_by_an_alias() -> None:
    values, aliases = normalize_metrics({"val/loss": 0.7, "val_loss": 0.5, "step": 10})
    # the framework's own val_loss keeps the name; the other spelling keeps its own, so no value is lost
    assert values == {"val/loss": 0.7, "val_loss": 0.5}
    assert aliases == {}


def test_aliases_name_the_original_of_every_renamed_metric() -> None:
    assert canonical_names(["eval_loss", "f1", "loss", "epoch", "lr"]) == {
        "val_loss": "eval_loss",
        "train_loss": "loss",
        "learning_rate": "lr",
    }
