"""Lightning: real fits of a tiny model land every epoch in trainops, and a stop asked through trainops ends them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import pytest
import pytorch_lightning
import torch
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tests.integrations.recording import RecordingSink
from tests.integrations.stops import until_the_run_hears_of_the_stop
from trainops.client import TrainOps
from trainops.core.operation import OperationStatus
from trainops.integrations.lightning import TrainOpsCallback

# Lightning's own use of a torch API it calls deprecated
pytestmark = pytest.mark.filterwarnings("ignore:`isinstance\\(treespec, LeafSpec\\)` is deprecated")


def loaders(seed: int = 0) -> tuple[DataLoader[Any], DataLoader[Any]]:
    """Two separable classes in 8 dimensions: 64 samples to train on in 4 batches, 32 to validate on."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(96, 8, generator=generator)
    y = (x[:, 0] + x[:, 1] > 0).long()
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16)
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32)
    return train, val


class Classifier(pl.LightningModule):
    """Logs as Lightning users do: ``train/loss`` per step and per epoch, ``val/loss`` and ``val/acc``."""

    def __init__(self, lr: float = 0.05, hidden: int = 16, fail_at_epoch: int | None = None) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(8, hidden), nn.ReLU(), nn.Linear(hidden, 2))
        self.validated: dict[int, float] = {}  # epoch -> val/loss, as the module itself saw it

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if self.hparams["fail_at_epoch"] == self.current_epoch:
            raise RuntimeError("CUDA out of memory")
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train/loss", loss, on_step=True, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        loss = nn.functional.cross_entropy(logits, y)
        self.log("val/loss", loss)
        self.log("val/acc", (logits.argmax(dim=1) == y).float().mean())
        if not self.trainer.sanity_checking:
            self.validated[self.current_epoch] = float(loss)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])


class EpochEndMetric(Classifier):
    """Also logs a metric in its own ``on_train_epoch_end``, which Lightning runs after the callbacks'."""

    def on_train_epoch_end(self) -> None:
        self.log("train/auc", 0.5 + self.current_epoch / 10)


def trainer(callbacks: list[Any], max_epochs: int = 3, **options: Any) -> pl.Trainer:
    defaults: dict[str, Any] = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False}
    return pl.Trainer(
        max_epochs=max_epochs, callbacks=callbacks, accelerator="cpu", enable_model_summary=False, **defaults | options
    )


class Agent(pl.Callback):
    """An agent that decides, at the end of epoch ``at``, that the run should stop (before trainops' callback
    runs: Lightning calls callbacks in the order given). The epoch then takes a second: a run's reporter sends
    epochs from a background thread and asks trainops whether to stop at least once a second, so it knows by then."""

    def __init__(self, ops: TrainOps, callback: TrainOpsCallback, at: int = 1) -> None:
        self.ops, self.callback, self.at = ops, callback, at
        self.epochs_seen: list[int] = []

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epochs_seen.append(trainer.current_epoch)
        if trainer.current_epoch == self.at:
            assert self.callback.operation_id is not None
            self.ops.cancel_operation(self.callback.operation_id, "val/loss has plateaued", requested_by="agent")
            until_the_run_hears_of_the_stop(self.callback.tracker)


@pytest.fixture(autouse=True)
def _seeded() -> None:
    pl.seed_everything(0, verbose=False)


def test_a_fit_lands_every_epoch_under_canonical_names(local_ops: TrainOps) -> None:
    sink = RecordingSink()
    callback = TrainOpsCallback(local_ops, task="tabular_classification", sinks=[sink])
    model = Classifier()
    trainer([callback], log_every_n_steps=1).fit(model, *loaders())  # every batch in the step series
    assert sink.epochs == [0, 1, 2]  # each epoch reported once

    assert callback.operation_id is not None
    operation = local_ops.get_operation(callback.operation_id)
    metrics = local_ops.get_metrics(callback.operation_id).metrics
    assert operation.status is OperationStatus.COMPLETED
    assert [record.epoch for record in metrics.epochs] == [0, 1, 2]
    assert [record.step for record in metrics.epochs] == [4, 8, 12]  # trainer.global_step: 4 batches an epoch
    # each epoch holds its own validation (the sanity check's is never reported), under trainops' names
    assert [record.val_loss for record in metrics.epochs] == pytest.approx([model.validated[e] for e in range(3)])
    for record in metrics.epochs:
        assert record.train_loss is not None and record.val_accuracy is not None and record.duration is not None
        assert record.metrics == {}  # train/loss_step and train/loss_epoch are the same metric, reported once
    assert operation.result is not None
    assert operation.result["final_metrics"] == {
        "train_loss": pytest.approx(metrics.epochs[-1].train_loss),
        "val_loss": pytest.approx(metrics.epochs[-1].val_loss),
        "val_accuracy": pytest.approx(metrics.epochs[-1].val_accuracy),
    }
    assert operation.result["metric_aliases"] == {
        "train_loss": "train/loss",
        "val_loss": "val/loss",
        "val_accuracy": "val/acc",
    }
    parameters = operation.metadata.parameters
    assert (parameters["lr"], parameters["hidden"], parameters["max_epochs"]) == (0.05, 16, 3)
    assert operation.total_epochs == 3 and operation.metadata.task is not None
    points = local_ops.get_steps(callback.operation_id).points  # each batch's loss, at the global step
    assert [(point.step, set(point.metrics)) for point in points] == [(step, {"train_loss"}) for step in range(1, 13)]
    assert metrics.best_epoch is not None and callback.best_epoch == metrics.best_epoch


@pytest.mark.parametrize(
    ("transport", "database_url"),
    [("local", "sqlite"), pytest.param("local", "postgresql", marks=pytest.mark.postgres), ("http", "sqlite")],
    indirect=["database_url"],
)
def test_a_stop_asked_through_trainops_ends_the_fit_after_the_epoch(
    transport: str, database_url: str, request: pytest.FixtureRequest
) -> None:
    ops: TrainOps = request.getfixturevalue(f"{transport}_ops")
    callback = TrainOpsCallback(ops)
    agent = Agent(ops, callback, at=1)
    trainer([agent, callback], max_epochs=20).fit(Classifier(), *loaders())

    assert agent.epochs_seen == [0, 1]  # the epoch the stop was asked in was the last
    assert callback.operation_id is not None
    operation = ops.get_operation(callback.operation_id)
    assert operation.status is OperationStatus.CANCELLED
    assert operation.cancel_request is not None and operation.cancel_request.requested_by == "agent"
    metrics = ops.get_metrics(callback.operation_id).metrics
    assert [record.epoch for record in metrics.epochs] == [0, 1]
    assert metrics.total_epochs_planned == 20
    assert metrics.best_epoch is not None and callback.best_epoch == metrics.best_epoch


def test_metrics_logged_after_the_callbacks_land_on_their_own_epoch(local_ops: TrainOps) -> None:
    sink = RecordingSink()
    callback = TrainOpsCallback(local_ops, sinks=[sink])
    model = EpochEndMetric()
    # validation every second epoch: the epochs without it report no validation metric (not an older one)
    trainer([callback], max_epochs=4, check_val_every_n_epoch=2).fit(model, *loaders())
    assert sink.epochs == [0, 0, 1, 1, 2, 2, 3, 3]  # each sent again with the metric logged after the callbacks

    assert callback.operation_id is not None
    epochs = local_ops.get_metrics(callback.operation_id).metrics.epochs
    assert [record.metrics.get("train_auc") for record in epochs] == pytest.approx([0.5, 0.6, 0.7, 0.8])
    assert [record.val_loss is not None for record in epochs] == [False, True, False, True]
    assert [record.val_loss for record in epochs if record.val_loss is not None] == pytest.approx(
        [model.validated[1], model.validated[3]]
    )
    assert all(record.train_loss is not None for record in epochs)


def test_a_fit_that_raises_fails_the_run_with_the_message(local_ops: TrainOps) -> None:
    callback = TrainOpsCallback(local_ops)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        trainer([callback]).fit(Classifier(fail_at_epoch=1), *loaders())

    assert callback.operation_id is not None
    operation = local_ops.get_operation(callback.operation_id)
    assert operation.status is OperationStatus.FAILED
    assert operation.error == "RuntimeError: CUDA out of memory"
    assert [record.epoch for record in local_ops.get_metrics(callback.operation_id).metrics.epochs] == [0]


def resume(callback: TrainOpsCallback, checkpoint: Path, directory: Path) -> None:
    """Fit to epoch 4 from a checkpoint (with a ModelCheckpoint again, as Lightning asks)."""
    callbacks = [callback, ModelCheckpoint(directory)]
    trainer(callbacks, max_epochs=4, enable_checkpointing=True).fit(Classifier(), *loaders(), ckpt_path=checkpoint)


@pytest.mark.filterwarnings("ignore:The dirpath has changed")
def test_a_fit_resumed_from_a_checkpoint_continues_where_it_can(local_ops: TrainOps, tmp_path: Path) -> None:
    first = TrainOpsCallback(local_ops)
    saved = tmp_path / "checkpoints"
    checkpoints = ModelCheckpoint(dirpath=saved, save_last=True)
    trainer([first, checkpoints], max_epochs=2, enable_checkpointing=True).fit(Classifier(), *loaders())
    assert first.operation_id is not None
    assert torch.load(saved / "last.ckpt", weights_only=False)["callbacks"]["TrainOpsCallback"] == {
        "version": 1,
        "operation_id": first.operation_id,
    }

    # the first operation ended (completed) and takes no more epochs: the resumed fit is a new one naming it
    resumed = TrainOpsCallback(local_ops)
    resume(resumed, saved / "last.ckpt", tmp_path / "resumed")
    assert resumed.operation_id not in {None, first.operation_id}
    assert resumed.operation_id is not None
    operation = local_ops.get_operation(resumed.operation_id)
    assert operation.status is OperationStatus.COMPLETED
    assert operation.metadata.model_extra == {"resumed_from": first.operation_id}
    assert [record.epoch for record in local_ops.get_metrics(resumed.operation_id).metrics.epochs] == [2, 3]

    # a process killed mid-fit leaves its operation running: the resumed fit reports into it
    killed = local_ops.create_operation("training", total_epochs=4)
    local_ops.start_operation(killed.operation_id)
    checkpoint = torch.load(saved / "last.ckpt", weights_only=False)
    checkpoint["callbacks"]["TrainOpsCallback"]["operation_id"] = killed.operation_id
    torch.save(checkpoint, saved / "killed.ckpt")
    continued = TrainOpsCallback(local_ops)
    resume(continued, saved / "killed.ckpt", tmp_path / "continued")
    assert continued.operation_id == killed.operation_id
    assert local_ops.get_operation(killed.operation_id).status is OperationStatus.COMPLETED
    assert [record.epoch for record in local_ops.get_metrics(killed.operation_id).metrics.epochs] == [2, 3]

    # the same callback's next fit, not resumed, is a run of its own: it went into the resumed operation (ended,
    # so nothing was stored), or named the checkpoint's operation as the one it resumed
    earlier = {None, first.operation_id, resumed.operation_id, killed.operation_id}
    for callback in (continued, resumed):
        trainer([callback], max_epochs=2).fit(Classifier(), *loaders())
        assert callback.operation_id not in earlier
        assert callback.operation_id is not None
        fresh = local_ops.get_operation(callback.operation_id)
        assert fresh.status is OperationStatus.COMPLETED and fresh.metadata.model_extra == {}
        assert [record.epoch for record in local_ops.get_metrics(callback.operation_id).metrics.epochs] == [0, 1]


class LegacyClassifier(pytorch_lightning.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(8, 2)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = nn.functional.cross_entropy(self.net(batch[0]), batch[1])
        self.log("loss", loss, on_epoch=True)
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.05)


def test_the_pytorch_lightning_package_takes_the_callback_too(local_ops: TrainOps) -> None:
    callback = TrainOpsCallback(local_ops)
    legacy = pytorch_lightning.Trainer(
        max_epochs=2, callbacks=[callback], logger=False, enable_checkpointing=False, enable_progress_bar=False
    )
    legacy.fit(LegacyClassifier(), loaders()[0])
    assert callback.operation_id is not None
    epochs = local_ops.get_metrics(callback.operation_id).metrics.epochs
    assert [(record.epoch, record.train_loss is not None) for record in epochs] == [(0, True), (1, True)]


def test_the_step_series_follows_the_trainers_logging_rate(local_ops: TrainOps) -> None:
    callback = TrainOpsCallback(local_ops)
    trainer([callback], log_every_n_steps=5).fit(Classifier(), *loaders())
    assert callback.operation_id is not None
    points = local_ops.get_steps(callback.operation_id).points
    assert [point.step for point in points] == [5, 10]  # 12 batches; a tensor is read only for those


class Scheduled(Classifier):
    """The learning rate halves every epoch: 0.1, 0.05, 0.025."""

    def configure_optimizers(self) -> Any:
        optimizer = torch.optim.SGD(self.parameters(), lr=0.1)
        return {"optimizer": optimizer, "lr_scheduler": torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=0.5)}


def test_the_learning_rate_lands_on_its_own_epoch_whatever_the_callbacks_order(
    local_ops: TrainOps, tmp_path: Path
) -> None:
    """LearningRateMonitor listed first (as one writes it) logs the new epoch's rate in its on_train_epoch_start,
    before trainops' callback closed the last epoch: each epoch held the next epoch's rate, the last none."""
    for order in ("monitor first", "trainops first"):
        callback, monitor = TrainOpsCallback(local_ops), LearningRateMonitor(logging_interval="epoch")
        callbacks: list[Any] = [monitor, callback] if order == "monitor first" else [callback, monitor]
        trainer(callbacks, logger=CSVLogger(tmp_path / order.replace(" ", "_"))).fit(Scheduled(), *loaders())

        assert callback.operation_id is not None
        epochs = local_ops.get_metrics(callback.operation_id).metrics.epochs
        assert [record.learning_rate for record in epochs] == pytest.approx([0.1, 0.05, 0.025]), order


class DefaultLogging(Classifier):
    """Logs its training loss as Lightning's first example does: ``self.log("train_loss", loss)``, which is
    ``on_step=True, on_epoch=False`` in ``training_step``; or, with ``log_loss=False``, only returns it."""

    def __init__(self, log_loss: bool = True) -> None:
        super().__init__()
        self.log_loss = log_loss
        self.losses: dict[int, list[float]] = {}

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        if self.log_loss:
            self.log("train_loss", loss)
        self.losses.setdefault(self.current_epoch, []).append(float(loss.detach()))
        return loss


@pytest.mark.parametrize("log_loss", [True, False], ids=["logged-per-step", "only-returned"])
def test_the_training_loss_is_the_epochs_mean_when_the_module_logs_it_per_step_or_not_at_all(
    local_ops: TrainOps, log_loss: bool
) -> None:
    """A per-step log left the last batch's loss as the epoch's; a module that only returned it had none."""
    callback = TrainOpsCallback(local_ops)
    model = DefaultLogging(log_loss=log_loss)
    trainer([callback]).fit(model, *loaders())

    assert callback.operation_id is not None
    epochs = local_ops.get_metrics(callback.operation_id).metrics.epochs
    means = [sum(model.losses[epoch]) / len(model.losses[epoch]) for epoch in range(3)]
    assert [record.train_loss for record in epochs] == pytest.approx(means, rel=1e-5)
    assert [record.train_loss for record in epochs] != pytest.approx([model.losses[e][-1] for e in range(3)])
    assert all(record.metrics == {} for record in epochs)


class TwoValidationSets(Classifier):
    """Validates on two dataloaders: Lightning suffixes each metric with its dataloader's index."""

    def validation_step(
        self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int, dataloader_idx: int = 0
    ) -> None:
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("val/loss", loss)
        if not self.trainer.sanity_checking and dataloader_idx == 0:
            self.validated[self.current_epoch] = float(loss)


def test_with_several_validation_sets_the_first_is_the_runs_validation(local_ops: TrainOps) -> None:
    """The metrics were stored only as val_loss_dataloader_idx_0 and _1: the diagnosis said "No val_loss
    reported yet" for the whole run."""
    callback = TrainOpsCallback(local_ops)
    model = TwoValidationSets()
    train, val = loaders()
    trainer([callback]).fit(model, train, [val, loaders(seed=1)[1]])

    assert callback.operation_id is not None
    history = local_ops.get_metrics(callback.operation_id).metrics
    assert [record.val_loss for record in history.epochs] == pytest.approx([model.validated[e] for e in range(3)])
    assert all(set(record.metrics) == {"val_loss_dataloader_idx_1"} for record in history.epochs)
    assert history.best_epoch is not None
