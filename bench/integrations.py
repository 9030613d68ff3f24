"""Framework integrations: what trainops' Lightning callback costs a real ``trainer.fit``.

The same fit (an MLP on synthetic tabular data: 8,000 training and 2,000 validation rows, batch 32, so 250
training batches an epoch, 8 epochs, one torch thread) is run three ways, alternating so machine noise hits each
alike, for two widths: a tiny MLP whose batch takes about a millisecond (the worst case: the fixed costs of
starting and ending a run, about 15 ms, and a few microseconds a batch weigh most there) and a wider one whose
batch takes several milliseconds, still far below a real model's:

* no callback (the baseline);
* ``TrainOpsCallback()`` reporting into a real operation on a throwaway SQLite database;
* ``TrainOpsCallback(mlflow=URI)`` also mirroring to MLflow (a SQLite store in a temporary folder).

Two figures per way: the wall time against the baseline's (medians; on 2 shared cores the run-to-run spread is a
few percent, so the spread is printed beside it) and the time the training thread spends inside the callback's
hooks, in percent of the fit's wall time: the part of the cost that does not depend on what the other core is
doing. Goal: under 0.5% in-thread. That time is split in two: what a batch costs on average (epoch hooks
included), and the fixed cost of starting and ending the run (creating and finishing the operation; with MLflow,
creating its run, which the operation records, and draining the queue at the end). From those the last line says
how long a fit with batches of that size must last for the goal to hold.

Run: ``.venv/bin/python bench/integrations.py`` (``--quick`` for 3 rounds). It needs the dev environment
(Lightning, mlflow-skinny) and writes nothing outside a temporary folder. MLflow's telemetry is switched off.
"""

from __future__ import annotations

import argparse
import functools
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")

import lightning
import torch
from _report import machine, table
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import trainops
from trainops.integrations.lightning import TrainOpsCallback
from trainops.settings import Settings

GOAL_IN_THREAD_PCT = 0.5
EPOCHS = 8
HOOKS = (
    "on_fit_start",
    "on_train_epoch_start",
    "on_train_batch_end",
    "on_validation_epoch_end",
    "on_train_epoch_end",
    "on_fit_end",
)


class TabularMLP(lightning.LightningModule):
    def __init__(self, hidden: int = 64, features: int = 32, classes: int = 4) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.Linear(features, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, classes)
        )

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        x, y = batch
        loss = nn.functional.cross_entropy(self.net(x), y)
        self.log("train_loss", loss, on_step=False, on_epoch=True)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        x, y = batch
        logits = self.net(x)
        self.log("val_loss", nn.functional.cross_entropy(logits, y))
        self.log("val_accuracy", (logits.argmax(1) == y).float().mean())

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def loaders() -> tuple[DataLoader[Any], DataLoader[Any]]:
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(10_000, 32, generator=generator)
    y = (x[:, :4].argmax(1) + (torch.rand(10_000, generator=generator) < 0.2).long()) % 4
    train = TensorDataset(x[:8_000], y[:8_000])
    val = TensorDataset(x[8_000:], y[8_000:])
    return DataLoader(train, batch_size=32, shuffle=True, generator=generator), DataLoader(val, batch_size=256)


class HookTimer:
    """Wraps a callback's hooks and adds up the time the training thread spends inside them."""

    def __init__(self, callback: Any) -> None:
        self.by_hook: dict[str, float] = dict.fromkeys(HOOKS, 0.0)
        for name in HOOKS:
            hook = getattr(callback, name, None)
            if callable(hook):
                setattr(callback, name, self._timed(hook))

    def _timed(self, hook: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(hook)
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return hook(*args, **kwargs)
            finally:
                self.by_hook[hook.__name__] += time.perf_counter() - started

        return timed

    @property
    def seconds(self) -> float:
        return sum(self.by_hook.values())

    @property
    def fixed(self) -> float:
        """Seconds spent starting and ending the run, whatever the fit's length."""
        return self.by_hook["on_fit_start"] + self.by_hook["on_fit_end"]


def fit(callback: Any | None, hidden: int = 64) -> float:
    torch.manual_seed(0)
    train, val = loaders()
    trainer = lightning.Trainer(
        max_epochs=EPOCHS,
        callbacks=[callback] if callback is not None else [],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        accelerator="cpu",
    )
    started = time.perf_counter()
    trainer.fit(TabularMLP(hidden), train, val)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 rounds")
    args = parser.parse_args()
    rounds = 3 if args.quick else args.rounds
    torch.set_num_threads(1)
    print(f"bench/integrations.py: {machine()}; Lightning {lightning.__version__}, torch {torch.__version__}")
    print(f"{rounds} rounds of 3 fits ({EPOCHS} epochs x 250 batches each), alternating; one torch thread\n")

    with tempfile.TemporaryDirectory(prefix="trainops-bench-") as tmp:
        home = Path(tmp)
        settings = Settings(home=home / "home")
        mlflow_uri = f"sqlite:///{home / 'mlflow.db'}"
        for label, hidden in (("tiny MLP (hidden 64)", 64), ("wider MLP (hidden 1024)", 1024)):
            print(f"{label}:")
            print(measure(settings, mlflow_uri, hidden, rounds) + "\n")


def measure(settings: Settings, mlflow_uri: str, hidden: int, rounds: int) -> str:
    walls: dict[str, list[float]] = {"none": [], "trainops": [], "trainops + mlflow": []}
    inside: dict[str, list[float]] = {"trainops": [], "trainops + mlflow": []}
    fixed: dict[str, list[float]] = {"trainops": [], "trainops + mlflow": []}
    per_batch: dict[str, list[float]] = {"trainops": [], "trainops + mlflow": []}
    fit(None, hidden)  # warm-up: imports, allocator, first use of the kernels
    with trainops.connect(settings=settings) as ops:
        for _ in range(rounds):
            walls["none"].append(fit(None, hidden))
            for name, options in (("trainops", {}), ("trainops + mlflow", {"mlflow": mlflow_uri})):
                callback = TrainOpsCallback(ops, **options)  # type: ignore[arg-type]
                timer = HookTimer(callback)
                wall = fit(callback, hidden)
                walls[name].append(wall)
                inside[name].append(100.0 * timer.seconds / wall)
                fixed[name].append(timer.fixed)
                per_batch[name].append((timer.seconds - timer.fixed) / (EPOCHS * 250))
        last = ops.list_operations(limit=1).items[0]
        epochs = ops.get_metrics(last.operation_id).metrics.total_epochs_completed
        mirrored = "mlflow_run_id" in last.metadata.model_dump()

    base = statistics.median(walls["none"])
    spread = 100.0 * (max(walls["none"]) - min(walls["none"])) / base
    per_batch_ms = 1000.0 * base / (EPOCHS * 250)
    rows: list[list[object]] = [
        [f"no callback ({per_batch_ms:.1f} ms a batch)", base, "", f"+-{spread:.1f}% (spread)", "", "", "", "", ""]
    ]
    shortest: list[str] = []
    for name in ("trainops", "trainops + mlflow"):
        median = statistics.median(walls[name])
        in_thread = statistics.median(inside[name])
        start_end = statistics.median(fixed[name])
        batch_cost = statistics.median(per_batch[name])
        verdict = "met" if in_thread < GOAL_IN_THREAD_PCT else "MISSED"
        rows.append(
            [
                name,
                median,
                f"{median / base:.3f}x",
                f"{100 * (median / base - 1):+.2f}%",
                f"{in_thread:.3f}%",
                verdict,
                f"{1e6 * batch_cost:.1f} us",
                f"{100 * batch_cost / (base / (EPOCHS * 250)):.2f}%",
                f"{1e3 * start_end:.1f} ms",
            ]
        )
        # the fit length from which the goal holds: start and end costs spread over enough batches of this size
        room = GOAL_IN_THREAD_PCT / 100 - batch_cost / (base / (EPOCHS * 250))
        shortest.append(f"{name} {start_end / room:.1f} s" if room > 0 else f"{name}: never (the batches alone)")
    headers = [
        "fit",
        "median s",
        "vs none",
        "end to end",
        "in-thread",
        f"< {GOAL_IN_THREAD_PCT}% in-thread",
        "a batch",
        "of a batch",
        "start + end",
    ]
    footer = (
        f"the last operation stored {epochs} of {EPOCHS} epochs; mirrored to MLflow: {mirrored}\n"
        f"in-thread under {GOAL_IN_THREAD_PCT}% for fits with batches this size lasting at least: "
        + "; ".join(shortest)
    )
    return table(headers, rows) + "\n" + footer


if __name__ == "__main__":
    main()
