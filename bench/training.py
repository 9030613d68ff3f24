"""Strategy training: what trainops' reporting costs, how fast the trainer is, how long preprocessing takes.

Three figures, each against a baseline run in the same process on the same data (the real sample data that
``trainops data sample`` writes):

* Reporting overhead: the same training (``strategies/mean_reversion.yaml`` with early stopping and the scheduler
  off, so every run does the same epochs) reported into a real operation on SQLite versus a reporter that drops
  everything. Runs alternate and the medians are compared. Goal: under 0.5% of wall time. On 2 shared cores the
  run-to-run spread is ~2%, larger than the goal, so the time the training thread spends inside reporter calls
  is also given: the part of the cost that does not depend on what the other core is doing.
* Trainer throughput: ``Trainer.fit`` versus a bare PyTorch loop over the same tensors (same model, optimizer
  settings, batch size, epochs; the bare loop does no validation, no metrics and no reporting). Goal: at least
  0.97 of the bare loop's samples per second.
* Preprocessing: indicators, fuzzy memberships, features and labels of ``strategies/multi_timeframe.yaml`` (EURUSD
  1h with 4h and 1d) over every sample bar: seconds, median of several runs.

Run: ``.venv/bin/python bench/training.py`` (``--quick`` for a short run). It writes the sample data to a
temporary directory and a throwaway database, so it touches nothing of yours.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch
from _report import machine, table, verdict
from torch import nn

from trainops.client.local import LocalTrainOps
from trainops.client.run import Run
from trainops.core import CancelRequest, EpochRecord, NullReporter, ProgressState
from trainops.executors.jobs import REPORT_INTERVAL
from trainops.pipeline.data_files import write_sample_data
from trainops.pipeline.model import build_mlp
from trainops.pipeline.strategy import StrategyConfig, load_strategy, parse_strategy
from trainops.pipeline.trainer import Trainer, build_optimizer
from trainops.pipeline.training import StrategyTrainingJob
from trainops.service.bootstrap import open_service
from trainops.service.training import create_training
from trainops.settings import Settings

STRATEGIES = Path(__file__).resolve().parent.parent / "strategies"
GOAL_OVERHEAD_PCT = 0.5
GOAL_THROUGHPUT_RATIO = 0.97
T = TypeVar("T")


def fixed_length(name: str, epochs: int) -> StrategyConfig:
    """The strategy with early stopping and the scheduler off: every run trains exactly ``epochs`` epochs."""
    data = load_strategy(STRATEGIES / f"{name}.yaml").to_dict()
    training = data["model"]["training"]
    training.update(epochs=epochs, early_stopping=None, lr_scheduler=None)
    return parse_strategy(data, name)


def reporting_overhead(config: StrategyConfig, data_dir: Path, home: Path, rounds: int) -> list[list[object]]:
    settings = Settings(home=home)
    ops = LocalTrainOps(open_service(settings), settings=settings)
    StrategyTrainingJob(config, data_dir=data_dir, reporter=NullReporter(), device="cpu").run()  # warm up
    silent: list[float] = []
    reported: list[float] = []
    in_thread: list[float] = []
    for _ in range(rounds):
        started = time.perf_counter()
        StrategyTrainingJob(config, data_dir=data_dir, reporter=NullReporter(), device="cpu").run()
        silent.append(time.perf_counter() - started)

        operation = create_training(ops.service, config, device="cpu")
        started = time.perf_counter()
        # what `trainops train` and the worker processes do: epochs and progress queued to a background sender
        with Run(ops, operation, flush_interval=REPORT_INTERVAL) as run:
            timed = TimedReporter(run)
            StrategyTrainingJob(config, data_dir=data_dir, reporter=timed, device="cpu").run()
        reported.append(time.perf_counter() - started)
        in_thread.append(timed.seconds / reported[-1])
        stored = ops.get_operation(operation.operation_id)
        assert stored.epochs_completed == config.model.training.epochs, stored
    ops.close()
    base, with_reporting = statistics.median(silent), statistics.median(reported)
    overhead = 100.0 * (with_reporting / base - 1.0)
    inside = 100.0 * statistics.median(in_thread)
    return [
        ["dropping reporter (median)", f"{base:.3f} s", "", ""],
        ["reported to SQLite (median)", f"{with_reporting:.3f} s", f"{overhead:+.2f}%", _overhead_verdict(overhead)],
        ["spread of the paired differences", f"{_spread(silent, reported):.2f}%", "", ""],
        ["inside reporter calls, training thread", "", f"{inside:.2f}%", _overhead_verdict(inside)],
    ]


class TimedReporter:
    """Passes every call to ``run`` and adds up the time the training thread spent inside them: the part of the
    overhead that does not depend on how busy the machine's other core is."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self.seconds = 0.0

    def _timed(self, call: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return call()
        finally:
            self.seconds += time.perf_counter() - started

    def progress(self, state: ProgressState) -> None:
        self._timed(lambda: self.run.progress(state))

    def epoch(self, record: EpochRecord) -> None:
        self._timed(lambda: self.run.epoch(record))

    def batch(
        self, epoch: int, batch: int, total_batches: int | None = None, metrics: Mapping[str, float] | None = None
    ) -> None:
        self._timed(lambda: self.run.batch(epoch, batch, total_batches, metrics))

    def artifact(self, name: str, path: str, kind: str = "file") -> None:
        self._timed(lambda: self.run.artifact(name, path, kind))

    def should_stop(self) -> CancelRequest | None:
        return self._timed(self.run.should_stop)


def _overhead_verdict(overhead_pct: float) -> str:
    return "met" if overhead_pct < GOAL_OVERHEAD_PCT else "MISSED"


def _spread(silent: list[float], reported: list[float]) -> float:
    """How much the per-round overhead varies (stdev, percent): the noise floor of the comparison."""
    diffs = [100.0 * (r / s - 1.0) for s, r in zip(silent, reported, strict=True)]
    return statistics.pstdev(diffs) if len(diffs) > 1 else float("nan")


def trainer_throughput(config: StrategyConfig, data_dir: Path, rounds: int) -> list[list[object]]:
    job = StrategyTrainingJob(config, data_dir=data_dir, reporter=NullReporter(), device="cpu")
    data = job.prepare_data()
    training = config.model.training
    x, y = data.x_train, data.y_train
    trainer_rates: list[float] = []
    bare_rates: list[float] = []
    for _ in range(rounds):
        model = build_mlp(x.shape[1], config.model.architecture, seed=training.seed)
        outcome = Trainer(training, NullReporter(), device="cpu").fit(model, x, y, data.x_val, data.y_val)
        trainer_rates.append(outcome.samples_per_second)
        bare_rates.append(_bare_loop(config, x, y))
    trainer, bare = statistics.median(trainer_rates), statistics.median(bare_rates)
    ratio = trainer / bare
    return [
        ["bare PyTorch loop (median)", f"{bare:,.0f}", "", ""],
        [
            "Trainer.fit (median)",
            f"{trainer:,.0f}",
            f"{ratio:.3f}x",
            verdict(ratio, GOAL_THROUGHPUT_RATIO, higher_is_better=True),
        ],
    ]


def _bare_loop(config: StrategyConfig, x: np.ndarray, y: np.ndarray) -> float:
    """The textbook loop over the same tensors: shuffle, forward, loss, backward, clip (when the strategy clips),
    step. No validation, no metrics, no reporting."""
    training = config.model.training
    torch.manual_seed(training.seed or 0)
    model = build_mlp(x.shape[1], config.model.architecture, seed=training.seed)
    optimizer = build_optimizer(model.parameters(), training, torch.device("cpu"))  # the same fused Adam
    features, labels = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = nn.CrossEntropyLoss()
    samples = 0
    started = time.perf_counter()
    model.train()
    for _ in range(training.epochs):
        order = torch.randperm(len(labels))
        for start in range(0, len(labels), training.batch_size):
            index = order[start : start + training.batch_size]
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(features[index]), labels[index])
            loss.backward()
            if training.gradient_clip is not None:
                nn.utils.clip_grad_norm_(model.parameters(), training.gradient_clip)
            optimizer.step()
            samples += len(index)
    return samples / (time.perf_counter() - started)


def preprocessing(data_dir: Path, rounds: int) -> list[list[object]]:
    config = load_strategy(STRATEGIES / "multi_timeframe.yaml")
    seconds: list[float] = []
    rows = features = 0
    for _ in range(rounds):
        job = StrategyTrainingJob(config, data_dir=data_dir, reporter=NullReporter(), device="cpu")
        started = time.perf_counter()
        data = job.prepare_data()
        seconds.append(time.perf_counter() - started)
        rows = len(data.y_train) + len(data.y_val) + len(data.y_test)
        features = len(data.feature_names)
    median = statistics.median(seconds)
    return [
        [
            f"{config.name}: {', '.join(config.timeframes)}, {len(config.indicators)} indicators",
            f"{median:.3f} s",
            f"{rows:,} rows x {features} features",
            "",
        ],
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and epochs")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 9)
    epochs = args.epochs or (20 if args.quick else 150)
    torch.set_num_threads(1)  # the same for every variant; 2 shared cores make more threads only noisier

    print(f"bench/training.py: {machine()}, torch {torch.__version__}, {rounds} rounds, {epochs} epochs")
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        write_sample_data(data_dir)
        config = fixed_length("mean_reversion", epochs)
        print("\nReporting overhead: mean_reversion on EURUSD 1h, wall time of the whole job")
        print(
            table(
                ["variant", "wall time", "overhead", f"goal < {GOAL_OVERHEAD_PCT}%"],
                reporting_overhead(config, data_dir, Path(tmp) / "home", rounds),
            )
        )
        print("\nTrainer throughput: training samples per second, same tensors and optimizer")
        print(
            table(
                ["variant", "samples/s", "ratio", f"goal >= {GOAL_THROUGHPUT_RATIO}"],
                trainer_throughput(config, data_dir, rounds),
            )
        )
        print("\nPreprocessing: indicators + fuzzy + features + labels over all sample bars")
        print(table(["strategy", "seconds", "output", ""], preprocessing(data_dir, rounds)))


if __name__ == "__main__":
    main()
