"""A two-process DDP fit on CPU (gloo) reporting through ``TrainOpsCallback()``, run by ``test_lightning_ddp.py``.

    python ddp_fit.py OUT_DIR MAX_EPOCHS SECONDS_PER_EPOCH

Lightning starts rank 1 by running this script again (its subprocess launcher, with ``LOCAL_RANK=1``); both
ranks take ``TRAINOPS_URL`` and ``MASTER_PORT`` from the environment the test gave. Each rank writes what its own
loop did to ``OUT_DIR/rank<N>.json``: the epochs it trained, the epoch at whose end ``trainer.should_stop`` was
set, and what its callback knows (operation id, whether it reported, the best epoch). Rank 0's process is the
one the test started and it does not wait for rank 1 (Lightning's launcher leaves it be), so rank 1's report is
the only sign that its loop ended normally. A script of its own, not an import of the test module, so the second
rank imports nothing of pytest's.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainops.integrations.lightning import TrainOpsCallback

warnings.filterwarnings("ignore")  # Lightning's advice about workers and CPU DDP: noise in the test's log


class Classifier(pl.LightningModule):
    def __init__(self, lr: float = 0.05) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train/loss", loss, on_step=True, on_epoch=True, sync_dist=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        self.log("val/loss", nn.functional.cross_entropy(self.net(x), y), sync_dist=True)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])


class Pace(pl.Callback):
    """Makes each epoch last ``seconds`` on every rank, so a stop asked from outside lands mid-fit."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        time.sleep(self.seconds)


class Witness(pl.Callback):
    """Runs after trainops' callback: records each epoch this rank's loop trained and when it was told to stop."""

    def __init__(self) -> None:
        self.epochs: list[int] = []
        self.stopped_at: int | None = None

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.epochs.append(trainer.current_epoch)
        if trainer.should_stop and self.stopped_at is None:
            self.stopped_at = trainer.current_epoch


def main(out: Path, max_epochs: int, seconds: float) -> None:
    pl.seed_everything(0, verbose=False)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(96, 8, generator=generator)
    y = (x[:, 0] + x[:, 1] > 0).long()
    train = DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16)  # 2 batches per rank and epoch
    val = DataLoader(TensorDataset(x[64:], y[64:]), batch_size=16)

    callback = TrainOpsCallback()  # TRAINOPS_URL; the rank from the trainer
    witness = Witness()
    trainer = pl.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        max_epochs=max_epochs,
        callbacks=[Pace(seconds), callback, witness],
        log_every_n_steps=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    trainer.fit(Classifier(), train, val)
    report: dict[str, Any] = {
        "global_rank": trainer.global_rank,
        "epochs": witness.epochs,
        "stopped_at": witness.stopped_at,
        "operation_id": callback.operation_id,
        "reporting": callback.tracker.is_reporting,
        "best_epoch": callback.best_epoch,
    }
    written = out / f"rank{trainer.global_rank}.json.part"
    written.write_text(json.dumps(report))
    written.rename(out / f"rank{trainer.global_rank}.json")  # whole or absent for the test polling for it


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]))
