"""Lightning: one callback reports every epoch to trainops; a stop asked through trainops ends the fit after the
epoch it was asked in.

    python examples/integrations/lightning_example.py     # local database, or a server when TRAINOPS_URL is set
    trainops ops watch <operation id>                     # in another terminal, while it runs
    trainops ops cancel <operation id> --reason "enough"  # the fit ends after the current epoch
"""

from __future__ import annotations

import argparse

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from trainops.integrations.lightning import TrainOpsCallback


class Classifier(L.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 32) -> None:
        super().__init__()
        self.save_hyperparameters()  # trainops records them as the run's parameters
        self.net = nn.Sequential(nn.Linear(20, hidden), nn.ReLU(), nn.Linear(hidden, 2))

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train/loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log("val/loss", nn.functional.cross_entropy(logits, y))
        self.log("val/acc", (logits.argmax(dim=1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams["lr"])


def synthetic_data() -> tuple[DataLoader[tuple[torch.Tensor, ...]], DataLoader[tuple[torch.Tensor, ...]]]:
    """1,000 points in 20 dimensions, labelled by the sign of the sum of the first two plus noise."""
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(1000, 20, generator=generator)
    y = (x[:, 0] + x[:, 1] + 0.5 * torch.randn(1000, generator=generator) > 0).long()
    train, val = TensorDataset(x[:800], y[:800]), TensorDataset(x[800:], y[800:])
    return DataLoader(train, batch_size=64, shuffle=True), DataLoader(val, batch_size=200)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    epochs = parser.parse_args().epochs

    callback = TrainOpsCallback(task="tabular_classification")
    trainer = L.Trainer(max_epochs=epochs, callbacks=[callback], logger=False, enable_checkpointing=False)
    trainer.fit(Classifier(), *synthetic_data())
    print(f"trainops: {callback.operation_id} ended; best epoch {callback.best_epoch}")
    print(f"see it with: trainops ops metrics {callback.operation_id}")


if __name__ == "__main__":
    main()
