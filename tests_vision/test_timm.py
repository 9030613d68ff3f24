"""timm: a timm-style loop (``train_one_epoch``/``validate`` returning dicts, as timm's train.py has them) on a tiny
timm model built from its config lands every epoch in trainops with the top-k accuracies as fractions, a stop asked
through trainops ends it, and the summary.csv timm's own ``update_summary`` writes imports to the same history."""

from __future__ import annotations

import doctest
import time
from collections import OrderedDict
from pathlib import Path

import pytest
import timm
import torch
import yaml
from timm.utils import AverageMeter, accuracy, update_summary
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainops.integrations.timm
from trainops.callbacks import TrainingCallbacks
from trainops.client import TrainOps
from trainops.core.metric_definitions import TaskType
from trainops.core.operation import OperationStatus
from trainops.errors import InvalidInputError
from trainops.integrations.timm import import_summary, report_epoch

CLASSES = 5
ARGS = {"model": "test_resnet", "num_classes": CLASSES, "lr": 0.05, "epochs": 3, "batch_size": 10}
"""What timm's train.py would have in ``args`` (and writes to args.yaml)."""


def loaders(seed: int = 0) -> tuple[DataLoader[tuple[torch.Tensor, ...]], DataLoader[tuple[torch.Tensor, ...]]]:
    """32x32 images of 5 classes, each class a colour plus noise: 40 to train on, 20 to validate on."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.arange(60) % CLASSES
    colours = torch.rand(CLASSES, 3, 1, 1, generator=generator)
    images = colours[labels] + 0.3 * torch.randn(60, 3, 32, 32, generator=generator)
    train = TensorDataset(images[:40], labels[:40])
    val = TensorDataset(images[40:], labels[40:])
    return DataLoader(train, batch_size=10, shuffle=True, generator=generator), DataLoader(val, batch_size=20)


def train_one_epoch(model: nn.Module, loader: DataLoader[tuple[torch.Tensor, ...]], optimizer: torch.optim.Optimizer):
    """As timm's train.py: the epoch's mean loss, in an OrderedDict."""
    losses = AverageMeter()
    model.train()
    for images, labels in loader:
        loss = nn.functional.cross_entropy(model(images), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.update(loss.item(), images.size(0))
    return OrderedDict([("loss", losses.avg)])


def validate(model: nn.Module, loader: DataLoader[tuple[torch.Tensor, ...]]):
    """As timm's train.py: loss, top-1 and top-5 accuracy, the accuracies in percent (timm.utils.accuracy)."""
    losses, top1, top5 = AverageMeter(), AverageMeter(), AverageMeter()
    model.eval()
    with torch.no_grad():
        for images, labels in loader:
            output = model(images)
            acc1, acc5 = accuracy(output, labels, topk=(1, 5))
            losses.update(nn.functional.cross_entropy(output, labels).item(), images.size(0))
            top1.update(acc1.item(), images.size(0))
            top5.update(acc5.item(), images.size(0))
    return OrderedDict([("loss", losses.avg), ("top1", top1.avg), ("top5", top5.avg)])


def train(tracker: TrainingCallbacks, output: Path, epochs: int = 3, stop_at: tuple[TrainOps, int] | None = None):
    """timm's train.py loop in small: each epoch trained, validated, written to summary.csv, reported to trainops.
    With ``stop_at``, an agent asks trainops to stop the run during that epoch. Returns each epoch's dicts."""
    torch.manual_seed(0)
    model = timm.create_model("test_resnet", pretrained=False, num_classes=CLASSES)
    optimizer = torch.optim.SGD(model.parameters(), lr=ARGS["lr"], momentum=0.9)
    train_loader, val_loader = loaders()
    output.mkdir(parents=True, exist_ok=True)
    (output / "args.yaml").write_text(yaml.safe_dump({**ARGS, "epochs": epochs}))
    seen: dict[int, tuple[dict[str, float], dict[str, float], float]] = {}
    with tracker:
        for epoch in range(epochs):
            tracker.on_epoch_begin(epoch)
            train_metrics = train_one_epoch(model, train_loader, optimizer)
            eval_metrics = validate(model, val_loader)
            lrs = [group["lr"] for group in optimizer.param_groups]
            lr = sum(lrs) / len(lrs)
            update_summary(epoch, train_metrics, eval_metrics, filename=output / "summary.csv", lr=lr)
            seen[epoch] = (dict(train_metrics), dict(eval_metrics), lr)
            if stop_at is not None and stop_at[1] == epoch:
                ops = stop_at[0]
                assert tracker.operation_id is not None
                ops.cancel_operation(tracker.operation_id, "top-1 has plateaued", requested_by="agent")
                time.sleep(1.2)  # the run hears of it at its next exchange with trainops (epochs go in the background)
            if report_epoch(tracker, epoch, train_metrics, eval_metrics, lr=lr):
                break
    return seen


def test_a_timm_loop_lands_every_epoch_with_accuracies_as_fractions(local_ops: TrainOps, tmp_path: Path) -> None:
    tracker = TrainingCallbacks(local_ops, task="image_classification", config=ARGS, total_epochs=3)
    seen = train(tracker, tmp_path / "output")

    assert tracker.operation_id is not None
    operation = local_ops.get_operation(tracker.operation_id)
    assert operation.status is OperationStatus.COMPLETED
    assert operation.metadata.task is TaskType.IMAGE_CLASSIFICATION
    epochs = local_ops.get_metrics(tracker.operation_id).metrics.epochs
    assert [record.epoch for record in epochs] == [0, 1, 2]
    for record in epochs:
        train_metrics, eval_metrics, lr = seen[record.epoch]
        assert record.train_loss == pytest.approx(train_metrics["loss"])
        assert record.val_loss == pytest.approx(eval_metrics["loss"])
        assert record.val_accuracy == pytest.approx(eval_metrics["top1"] / 100)  # timm's percent, as a fraction
        assert record.metrics["top5_accuracy"] == pytest.approx(eval_metrics["top5"] / 100)
        assert record.learning_rate == pytest.approx(lr)
        assert record.duration is not None and record.duration > 0
        assert 0 <= record.val_accuracy <= 1
    assert operation.result is not None
    assert operation.result["metric_aliases"] == {
        "val_loss": "eval_loss",
        "val_accuracy": "eval_top1",
        "top5_accuracy": "eval_top5",
        "learning_rate": "lr",
    }
    assert tracker.best_epoch in {0, 1, 2}


def test_timms_summary_csv_imports_to_the_same_history(local_ops: TrainOps, tmp_path: Path) -> None:
    tracker = TrainingCallbacks(local_ops, task="image_classification")
    train(tracker, tmp_path / "output")
    assert tracker.operation_id is not None

    imported = import_summary(tmp_path / "output", local_ops)  # the output folder: summary.csv and args.yaml

    fields = ("epoch", "train_loss", "val_loss", "val_accuracy", "learning_rate")
    live, copy = (local_ops.get_metrics(op).metrics.epochs for op in (tracker.operation_id, imported))
    assert [record.model_dump(include=set(fields)) for record in copy] == [
        record.model_dump(include=set(fields)) for record in live
    ]
    assert [record.metrics for record in copy] == [record.metrics for record in live]
    operation = local_ops.get_operation(imported)
    assert operation.status is OperationStatus.COMPLETED
    assert operation.metadata.task is TaskType.IMAGE_CLASSIFICATION  # timm trains image classifiers
    assert operation.total_epochs == 3 and operation.metadata.parameters["model"] == "test_resnet"  # args.yaml
    assert operation.result is not None and operation.result["metric_aliases"]["val_accuracy"] == "eval_top1"


@pytest.mark.parametrize("transport", ["local", "http"])
def test_a_stop_asked_through_trainops_ends_the_loop_after_the_epoch(
    transport: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ops: TrainOps = request.getfixturevalue(f"{transport}_ops")
    tracker = TrainingCallbacks(ops, task="image_classification", total_epochs=10)
    seen = train(tracker, tmp_path / "output", epochs=10, stop_at=(ops, 1))

    assert list(seen) == [0, 1]  # the epoch the stop was asked in was the last
    assert tracker.operation_id is not None
    operation = ops.get_operation(tracker.operation_id)
    assert operation.status is OperationStatus.CANCELLED
    assert operation.cancel_request is not None and operation.cancel_request.requested_by == "agent"
    metrics = ops.get_metrics(tracker.operation_id).metrics
    assert [record.epoch for record in metrics.epochs] == [0, 1]
    assert metrics.best_epoch is not None and tracker.best_epoch == metrics.best_epoch


def test_a_summary_with_epochs_without_evaluation_imports_what_each_has(local_ops: TrainOps, tmp_path: Path) -> None:
    """timm evaluates only some epochs when asked; the cells of the others are empty."""
    summary = tmp_path / "summary.csv"
    summary.write_text(
        "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n"
        "0,2.1,,,,0.1\n"
        "1,1.7,1.9,41.5,88.0,0.1\n"
        "2,1.4,nan,52.25,93.5,0.05\n"
    )
    imported = import_summary(summary, local_ops)

    epochs = local_ops.get_metrics(imported).metrics.epochs
    assert [(record.epoch, record.train_loss, record.val_accuracy) for record in epochs] == [
        (0, 2.1, None),
        (1, 1.7, 0.415),
        (2, 1.4, 0.5225),
    ]
    assert [record.metrics.get("top5_accuracy") for record in epochs] == [None, 0.88, 0.935]
    assert epochs[2].val_loss is not None and epochs[2].val_loss != epochs[2].val_loss  # NaN kept, as evidence
    assert local_ops.get_operation(imported).total_epochs is None  # no args.yaml


def test_a_summary_timm_wrote_for_epochs_without_evaluation_imports_what_each_has(
    local_ops: TrainOps, tmp_path: Path
) -> None:
    """timm's ``update_summary`` writes each row with that epoch's own keys: an epoch without evaluation is a short
    row (epoch, train_loss, lr), whose last value is the learning rate, not an evaluation loss."""
    summary = tmp_path / "summary.csv"
    epochs = [
        (0, {"loss": 2.3}, {"loss": 2.2, "top1": 10.0, "top5": 50.0}, 0.1),
        (1, {"loss": 2.0}, None, 0.05),
        (2, {"loss": 1.8}, {"loss": 1.9, "top1": 30.0, "top5": 70.0}, 0.025),
    ]
    for epoch, train_metrics, eval_metrics, lr in epochs:
        update_summary(epoch, train_metrics, eval_metrics, filename=summary, lr=lr)
    assert summary.read_text().splitlines()[2] == "1,2.0,0.05"  # as timm writes it: no empty cells

    imported = import_summary(summary, local_ops)

    records = local_ops.get_metrics(imported).metrics.epochs
    assert [(record.epoch, record.train_loss, record.learning_rate) for record in records] == [
        (0, 2.3, 0.1),
        (1, 2.0, 0.05),
        (2, 1.8, 0.025),
    ]
    assert [(record.val_loss, record.val_accuracy) for record in records] == [(2.2, 0.1), (None, None), (1.9, 0.3)]
    assert [record.metrics.get("top5_accuracy") for record in records] == [0.5, None, 0.7]


def test_a_summary_row_that_its_header_does_not_describe_is_refused_with_where(
    local_ops: TrainOps, tmp_path: Path
) -> None:
    """timm names the columns after the first epoch it writes: when that one had no evaluation, the evaluation
    values of the later epochs have no names, and nothing is imported."""
    summary = tmp_path / "summary.csv"
    update_summary(0, {"loss": 2.3}, None, filename=summary, lr=0.1)
    update_summary(1, {"loss": 2.0}, {"loss": 1.9, "top1": 30.0, "top5": 70.0}, filename=summary, lr=0.1)

    with pytest.raises(InvalidInputError, match=r"summary\.csv, line 3 has 6 fields where the header names 3 \(ep"):
        import_summary(summary, local_ops)
    assert local_ops.list_operations().total == 0


def test_the_module_examples_hold() -> None:
    result = doctest.testmod(trainops.integrations.timm)
    assert result.failed == 0 and result.attempted >= 3
