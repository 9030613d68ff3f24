"""The trainer: learning, reproducibility, epoch records, schedules, early stopping, clipping, cancellation,
divergence, and what a reporter sees."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import torch
import torch.nn.functional as F
from pydantic import ValidationError
from torch import nn

from trainops.core import CancelRequest, EpochRecord, NullReporter, ProgressState
from trainops.core.rules import Best, find_best
from trainops.errors import InvalidInputError
from trainops.pipeline.model import ArchitectureConfig, build_mlp
from trainops.pipeline.trainer import (
    EarlyStoppingConfig,
    SchedulerConfig,
    Trainer,
    TrainingConfig,
    TrainingOutcome,
    predict_logits,
    predict_proba,
    resolve_device,
    should_stop_early,
    update_best,
)

Arrays = tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]
CENTERS = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], dtype=np.float32)


def blobs(rows: int, seed: int, spread: float = 1.0) -> Arrays:
    """Three gaussian blobs in 4-D, one per class."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, rows)
    features = CENTERS[labels] + rng.normal(scale=spread, size=(rows, 4))
    return features.astype(np.float32), labels.astype(np.int64)


@pytest.fixture(scope="module")
def train() -> Arrays:
    return blobs(600, seed=0)


@pytest.fixture(scope="module")
def val() -> Arrays:
    return blobs(300, seed=1)


def mlp(hidden: list[int] | None = None, dropout: float = 0.2, seed: int = 0) -> nn.Sequential:
    return build_mlp(4, ArchitectureConfig(hidden_layers=hidden or [16], dropout=dropout), seed=seed)


def fit(
    train: Arrays, val: Arrays, model: nn.Module | None = None, reporter: Any = None, **config: Any
) -> TrainingOutcome:
    settings = {"batch_size": 64, "epochs": 3, "learning_rate": 0.01, **config}
    trainer = Trainer(TrainingConfig(**settings), reporter or NullReporter(), device="cpu")
    return trainer.fit(model if model is not None else mlp(), *train, *val)


def loss_of(model: nn.Module, data: Arrays) -> float:
    logits = torch.from_numpy(predict_logits(model, data[0], "cpu"))
    return float(F.cross_entropy(logits, torch.from_numpy(data[1])))


def comparable(record: EpochRecord) -> dict[str, Any]:
    return record.model_dump(exclude={"duration", "timestamp"})


class RecordingReporter(NullReporter):
    """Logs every call in order; from the ``cancel_after``-th ``should_stop`` call on, asks to stop."""

    def __init__(self, cancel_after: int | None = None) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.cancel_after = cancel_after
        self.stop_checks = 0
        self.request = CancelRequest(reason="val_loss rising", requested_by="agent", requested_at=datetime.now(UTC))

    def progress(self, state: ProgressState) -> None:
        self.events.append(("progress", state))

    def epoch(self, record: EpochRecord) -> None:
        self.events.append(("epoch", record))

    def batch(
        self, epoch: int, batch: int, total_batches: int | None = None, metrics: Mapping[str, float] | None = None
    ) -> None:
        self.events.append(("batch", epoch, batch, total_batches))

    def should_stop(self) -> CancelRequest | None:
        self.stop_checks += 1
        self.events.append(("should_stop",))
        if self.cancel_after is not None and self.stop_checks > self.cancel_after:
            return self.request
        return None

    def of(self, kind: str) -> list[tuple[Any, ...]]:
        return [event for event in self.events if event[0] == kind]


# ------------------------------------------------------------------------------------------------- learning


def test_learns_separable_blobs(train: Arrays, val: Arrays) -> None:
    outcome = fit(train, val, epochs=5)

    assert outcome.history[-1].val_accuracy is not None
    assert outcome.history[-1].val_accuracy > 0.9
    assert outcome.epochs_completed == len(outcome.history) == 5
    assert (outcome.early_stopped, outcome.stopped_epoch, outcome.cancelled, outcome.diverged) == (
        False,
        None,
        None,
        None,
    )
    assert outcome.stop_reason is None
    assert not outcome.restored_best_weights
    assert outcome.device == "cpu"
    assert outcome.samples_per_second > 0
    assert outcome.duration_seconds >= sum(record.duration or 0 for record in outcome.history)


def test_same_seed_gives_identical_histories_and_weights(train: Arrays, val: Arrays) -> None:
    first_model, second_model = mlp(), mlp()
    first = fit(train, val, first_model, seed=3)
    second = fit(train, val, second_model, seed=3)
    other = fit(train, val, mlp(), seed=4)

    assert [comparable(r) for r in first.history] == [comparable(r) for r in second.history]
    assert all(torch.equal(a, b) for a, b in zip(first_model.parameters(), second_model.parameters(), strict=True))
    assert [comparable(r) for r in first.history] != [comparable(r) for r in other.history]


def test_epoch_records_carry_every_field(train: Arrays, val: Arrays) -> None:
    outcome = fit(train, val, epochs=2)

    for epoch, record in enumerate(outcome.history):
        assert record.epoch == epoch
        for name in ("train_loss", "val_loss", "train_accuracy", "val_accuracy", "duration"):
            value = getattr(record, name)
            assert value is not None
            assert math.isfinite(value)
        assert record.learning_rate == 0.01
        assert record.timestamp is not None
        assert record.metrics["grad_norm"] > 0
        assert 0 <= (record.train_accuracy or 0) <= 1


def test_grad_norm_is_the_norm_of_the_gradient_before_the_step(train: Arrays, val: Arrays) -> None:
    """With one batch per epoch, epoch 0's grad_norm is the full-batch gradient norm at the initial weights."""
    model = mlp(dropout=0.0)
    reference = mlp(dropout=0.0)
    loss = F.cross_entropy(reference(torch.from_numpy(train[0])), torch.from_numpy(train[1]))
    loss.backward()  # type: ignore[no-untyped-call]
    expected = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in reference.parameters()]))  # type: ignore[union-attr]

    outcome = fit(train, val, model, batch_size=len(train[1]), epochs=1)

    assert outcome.history[0].metrics["grad_norm"] == pytest.approx(float(expected), rel=1e-4)


def test_train_loss_and_accuracy_are_running_values_over_the_epoch(train: Arrays, val: Arrays) -> None:
    """One full batch, no dropout: epoch 0's train metrics are those of the initial weights on the whole split."""
    model = mlp(dropout=0.0)
    with torch.no_grad():
        logits = mlp(dropout=0.0)(torch.from_numpy(train[0]))
    expected_loss = float(F.cross_entropy(logits, torch.from_numpy(train[1])))
    expected_accuracy = float((logits.argmax(1).numpy() == train[1]).mean())

    outcome = fit(train, val, model, batch_size=len(train[1]), epochs=1)

    assert outcome.history[0].train_loss == pytest.approx(expected_loss, rel=1e-5)
    assert outcome.history[0].train_accuracy == pytest.approx(expected_accuracy)
    assert outcome.history[0].val_loss == pytest.approx(loss_of(model, val), rel=1e-5)


@pytest.mark.parametrize("optimizer", ["adam", "sgd", "rmsprop"])
def test_each_optimizer_trains(train: Arrays, val: Arrays, optimizer: str) -> None:
    model = mlp()
    before = [p.detach().clone() for p in model.parameters()]

    outcome = fit(train, val, model, optimizer=optimizer, learning_rate=0.05 if optimizer == "sgd" else 0.01)

    losses = [record.train_loss or math.nan for record in outcome.history]
    assert all(math.isfinite(loss) for loss in losses)
    assert losses[-1] < losses[0]
    assert not all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_class_weights_weigh_the_training_criterion(train: Arrays, val: Arrays) -> None:
    weights = [1.0, 5.0, 1.0]
    with torch.no_grad():
        logits = mlp(dropout=0.0)(torch.from_numpy(train[0]))
    expected = float(F.cross_entropy(logits, torch.from_numpy(train[1]), weight=torch.tensor(weights)))
    trainer = Trainer(TrainingConfig(batch_size=len(train[1]), epochs=1), NullReporter(), device="cpu")

    outcome = trainer.fit(mlp(dropout=0.0), *train, *val, class_weights=weights)

    assert outcome.history[0].train_loss == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------------------------------------------- schedules


@pytest.mark.parametrize(
    ("scheduler", "learning_rate", "expected"),
    [
        ({"type": "step", "step_size": 2, "gamma": 0.5}, 0.01, [1, 1, 0.5, 0.5, 0.25, 0.25, 0.125]),
        ({"type": "exponential", "gamma": 0.9}, 0.01, [0.9**epoch for epoch in range(7)]),
        # SGD at lr 1e-7 barely moves the weights: val_loss is flat, so the rate halves after patience + 1 epochs
        ({"type": "reduce_on_plateau", "patience": 1, "factor": 0.5}, 1e-7, [1, 1, 1, 0.5, 0.5, 0.25, 0.25]),
    ],
)
def test_learning_rate_follows_the_scheduler(
    train: Arrays, val: Arrays, scheduler: dict[str, Any], learning_rate: float, expected: list[float]
) -> None:
    outcome = fit(train, val, epochs=7, optimizer="sgd", learning_rate=learning_rate, lr_scheduler=scheduler)

    rates = [record.learning_rate for record in outcome.history]
    assert rates == pytest.approx([learning_rate * factor for factor in expected])


def test_reduce_on_plateau_stops_at_min_lr(train: Arrays, val: Arrays) -> None:
    scheduler = {"type": "reduce_on_plateau", "patience": 0, "factor": 0.1, "min_lr": 5e-8}
    outcome = fit(train, val, epochs=4, optimizer="sgd", learning_rate=1e-7, lr_scheduler=scheduler)
    assert [record.learning_rate for record in outcome.history] == pytest.approx([1e-7, 1e-7, 5e-8, 5e-8], rel=1e-9)


# ------------------------------------------------------------------------------------------- early stopping


@pytest.mark.parametrize(
    ("values", "mode", "min_delta", "patience", "stop_epoch", "best_epoch"),
    [
        ([1.0, 0.9, 0.8, 0.85, 0.86, 0.87], "min", 0.0, 3, 5, 2),
        ([1.0, 0.9, 0.8, 0.85, 0.86, 0.87], "min", 0.0, 4, None, 2),
        ([1.0, 0.99, 0.98, 0.97, 0.96], "min", 0.05, 2, 2, 0),  # improvements smaller than min_delta don't count
        ([0.5, 0.6, 0.6, 0.6], "max", 0.0, 2, 3, 1),  # equal is not better
        ([math.nan, math.nan, 0.3, 0.2], "min", 0.0, 2, 1, None),  # never finite: patience runs from the start
        ([1.0, math.nan, math.inf, 0.9], "min", 0.0, 3, None, 3),
    ],
)
def test_early_stopping_decisions(
    values: list[float], mode: Any, min_delta: float, patience: int, stop_epoch: int | None, best_epoch: int | None
) -> None:
    best: Best | None = None
    stopped = None
    for epoch, value in enumerate(values):
        best = update_best(best, epoch, value, mode, min_delta)
        assert best == find_best(list(enumerate(values[: epoch + 1])), mode, min_delta)
        if should_stop_early(best, epoch + 1, patience):
            stopped = epoch
            break
    assert stopped == stop_epoch
    assert (best.epoch if best else None) == best_epoch


def overfitting_data() -> tuple[Arrays, Arrays]:
    """Few, overlapping samples and a wide net: val_loss falls for a few epochs, then rises."""
    return blobs(150, seed=0, spread=2.0), blobs(300, seed=1, spread=2.0)


def test_early_stopping_stops_at_best_plus_patience_and_restores_the_best_weights() -> None:
    train, val = overfitting_data()
    model = mlp([128, 128], dropout=0.0)

    outcome = fit(
        train, val, model, epochs=200, batch_size=16, learning_rate=0.001, early_stopping={"patience": 3}, seed=0
    )

    val_losses = [record.val_loss or math.nan for record in outcome.history]
    assert outcome.early_stopped
    assert outcome.best_epoch is not None
    assert outcome.stopped_epoch == outcome.best_epoch + 3
    assert len(outcome.history) == outcome.stopped_epoch + 1
    assert outcome.best_value == min(val_losses) == val_losses[outcome.best_epoch]
    assert outcome.restored_best_weights
    assert loss_of(model, val) == pytest.approx(outcome.best_value, rel=1e-5)
    assert loss_of(model, val) != pytest.approx(val_losses[-1], rel=1e-5)
    assert outcome.stop_reason is not None
    assert "did not improve" in outcome.stop_reason
    assert "patience 3" in outcome.stop_reason


def test_early_stopping_on_accuracy_maximises_it() -> None:
    train, val = overfitting_data()
    stopping = {"monitor": "val_accuracy", "patience": 2}
    outcome = fit(train, val, mlp([128, 128], dropout=0.0), epochs=200, batch_size=16, early_stopping=stopping)

    accuracies = [record.val_accuracy or 0.0 for record in outcome.history]
    assert outcome.monitor == "val_accuracy"
    assert outcome.early_stopped
    assert outcome.best_epoch == accuracies.index(max(accuracies))
    assert outcome.best_value == max(accuracies)
    assert outcome.stopped_epoch == outcome.best_epoch + 2


def test_without_early_stopping_the_last_weights_are_kept(train: Arrays, val: Arrays) -> None:
    model = mlp()
    outcome = fit(train, val, model, epochs=3)
    assert not outcome.restored_best_weights
    assert outcome.best_epoch is not None
    assert loss_of(model, val) == pytest.approx(outcome.history[-1].val_loss, rel=1e-5)


# ---------------------------------------------------------------------------------------------- clipping


def test_grad_norm_is_recorded_before_clipping(train: Arrays, val: Arrays) -> None:
    full_batch = {"batch_size": len(train[1]), "epochs": 1}
    unclipped = fit(train, val, mlp(), **full_batch)
    clipped = fit(train, val, mlp(), gradient_clip=0.01, **full_batch)

    norm = unclipped.history[0].metrics["grad_norm"]
    assert norm > 0.01
    assert clipped.history[0].metrics["grad_norm"] == pytest.approx(norm, rel=1e-6)


@pytest.mark.parametrize("batch_size", [600, 200])
def test_clipping_bounds_each_sgd_step_to_lr_times_clip(train: Arrays, val: Arrays, batch_size: int) -> None:
    model = mlp(dropout=0.0)
    before = torch.cat([p.detach().flatten().clone() for p in model.parameters()])
    learning_rate, clip = 0.5, 0.01

    fit(
        train,
        val,
        model,
        optimizer="sgd",
        learning_rate=learning_rate,
        gradient_clip=clip,
        batch_size=batch_size,
        epochs=1,
    )

    steps = len(train[1]) // batch_size
    moved = float(torch.linalg.vector_norm(torch.cat([p.detach().flatten() for p in model.parameters()]) - before))
    assert moved <= steps * learning_rate * clip * (1 + 1e-5)
    if steps == 1:  # the raw gradient is far above the clip, so the one step is exactly lr * clip long
        assert moved == pytest.approx(learning_rate * clip, rel=1e-3)


# ----------------------------------------------------------------------------------- reporting, cancellation


def summary(event: tuple[Any, ...]) -> tuple[Any, ...]:
    """An event with its record or state reduced to the epoch it is about."""
    if event[0] == "epoch":
        return ("epoch", event[1].epoch)
    if event[0] == "progress":
        return ("progress", event[1].items_done)
    return event


def test_reporter_sees_should_stop_every_batch_and_epoch_ends_in_order(train: Arrays, val: Arrays) -> None:
    reporter = RecordingReporter()
    outcome = fit(train, val, reporter=reporter, epochs=3, batch_size=64)
    batches = 10  # ceil(600 / 64)

    expected: list[tuple[Any, ...]] = []
    for epoch in range(3):
        for batch in range(1, batches + 1):
            expected += [("should_stop",), ("batch", epoch, batch, batches)]
        expected += [("epoch", epoch), ("progress", epoch + 1)]
    assert reporter.events[0] == ("progress", ProgressState.training(1, 3, batch=0, total_batches=batches))
    assert [summary(event) for event in reporter.events[1:]] == expected
    assert reporter.stop_checks == 3 * batches
    assert [record for _, record in reporter.of("epoch")] == outcome.history

    percentages = [state.percentage for _, state in reporter.of("progress")]
    assert percentages == sorted(percentages)
    assert (percentages[0], percentages[-1]) == (5.0, 95.0)
    assert reporter.of("progress")[-1][1].message == "Epoch 3/3"


def test_cancel_stops_within_the_batch_keeps_finished_epochs_and_restores_the_best(train: Arrays, val: Arrays) -> None:
    reporter = RecordingReporter(cancel_after=25)  # 10 batches per epoch: the request arrives in epoch 2
    model = mlp()

    outcome = fit(train, val, model, reporter=reporter, epochs=50)

    assert outcome.cancelled == reporter.request
    assert len(reporter.of("batch")) == 25
    assert reporter.stop_checks == 26
    assert [record.epoch for record in outcome.history] == [0, 1]
    assert outcome.epochs_completed == 2
    assert outcome.stopped_epoch == 2
    assert not outcome.early_stopped
    assert outcome.restored_best_weights
    val_losses = [record.val_loss or math.nan for record in outcome.history]
    assert outcome.best_value == min(val_losses)
    assert loss_of(model, val) == pytest.approx(outcome.best_value, rel=1e-5)
    assert outcome.stop_reason == "cancelled by agent: val_loss rising"
    assert outcome.samples_per_second > 0


def test_cancel_before_any_epoch_finishes_returns_an_empty_history(train: Arrays, val: Arrays) -> None:
    outcome = fit(train, val, reporter=RecordingReporter(cancel_after=3), epochs=5)

    assert outcome.cancelled is not None
    assert outcome.history == []
    assert (outcome.best_epoch, outcome.best_value, outcome.stopped_epoch) == (None, None, 0)
    assert not outcome.restored_best_weights


# --------------------------------------------------------------------------------------------- divergence


def test_huge_learning_rate_ends_with_diverged(train: Arrays, val: Arrays) -> None:
    outcome = fit(train, val, optimizer="sgd", learning_rate=1e6, epochs=50)

    assert outcome.diverged is not None
    assert outcome.diverged.startswith("train_loss became nan at epoch 0")
    assert "lower learning_rate (now 1e+06)" in outcome.diverged
    assert outcome.stop_reason == outcome.diverged
    assert len(outcome.history) == 1
    assert outcome.stopped_epoch == 0
    assert math.isnan(outcome.history[0].train_loss or 0.0)


def test_infinite_features_end_with_diverged_naming_them(train: Arrays, val: Arrays) -> None:
    features = train[0].copy()
    features[5, 1] = np.inf

    outcome = fit((features, train[1]), val, epochs=50)

    assert outcome.diverged is not None
    assert "x_train holds 1 NaN or infinite values" in outcome.diverged
    assert len(outcome.history) == 1


# ------------------------------------------------------------------------------------------ inputs, configs


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"y_train": lambda a: a.astype(np.float64)}, r"y_train must hold integer class indices, got dtype float64"),
        (
            {"y_train": lambda a: np.where(a == 2, 3, a)},
            r"y_train holds the label 3, outside the model's classes 0\.\.2",
        ),
        ({"y_val": lambda a: a - 1}, r"y_val holds the label -1"),
        ({"y_train": lambda a: a[:-1]}, r"y_train must be a 1-D array with one label per sample \(600\)"),
        ({"x_train": lambda a: a[:, :3]}, r"x_train has 3 features but the model expects 4"),
        ({"x_val": lambda a: a[:0]}, r"x_val must be a non-empty 2-D array .* got shape \(0, 4\)"),
        ({"x_train": lambda a: a.astype(str)}, r"x_train must hold numbers, got dtype <U"),
        ({"class_weights": [1.0, 2.0]}, r"class_weights has 2 values but the model has 3 classes"),
        ({"class_weights": [1.0, 0.0, 1.0]}, r"class_weights must all be positive and finite"),
    ],
)
def test_fit_refuses_inputs_that_do_not_fit(train: Arrays, val: Arrays, change: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {"x_train": train[0], "y_train": train[1], "x_val": val[0], "y_val": val[1]}
    for name, value in change.items():
        arguments[name] = value(arguments[name]) if callable(value) else value
    trainer = Trainer(TrainingConfig(epochs=1), NullReporter(), device="cpu")

    with pytest.raises(InvalidInputError, match=message):
        trainer.fit(mlp(), **arguments)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"learning_rate": 0}, r"learning_rate\n.*greater than 0"),
        ({"learning_rate": math.inf}, r"learning_rate\n.*finite number"),
        ({"batch_size": 0}, r"batch_size\n.*greater than or equal to 1"),
        ({"batch_size": 70_000}, r"batch_size\n.*less than or equal to 65536"),
        ({"epochs": 0}, r"epochs\n.*greater than or equal to 1"),
        ({"optimizer": "adamw"}, r"optimizer\n.*'adam', 'sgd' or 'rmsprop'"),
        ({"gradient_clip": 0.0}, r"gradient_clip\n.*greater than 0"),
        ({"seed": -1}, r"seed\n.*greater than or equal to 0"),
        ({"batch_size": True}, r"batch_size\n.*valid integer"),
        (
            {"early_stopping": {"monitor": "val_f1"}},
            r"'val_f1' is not a metric .* use one of val_loss, val_acc",
        ),
        ({"early_stopping": {"patience": 0}}, r"early_stopping.patience\n.*greater than or equal to 1"),
        ({"lr_scheduler": {"type": "cosine"}}, r"lr_scheduler.type\n.*'step', 'exponential' or 'reduce_on_plateau'"),
        ({"lr_scheduler": {"type": "step", "gamma": 1.5}}, r"lr_scheduler.gamma\n.*less than or equal to 1"),
        ({"lr_scheduler": {"type": "reduce_on_plateau", "factor": 1.0}}, r"lr_scheduler.factor\n.*less than 1"),
        ({"momentum": 0.9}, r"momentum\n.*Extra inputs are not permitted"),
    ],
)
def test_config_errors_name_the_field_and_the_rule(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        TrainingConfig.model_validate(fields)


def test_config_reads_the_strategy_yaml_section() -> None:
    config = TrainingConfig.model_validate(
        {
            "learning_rate": 0.001,
            "epochs": 100,
            "early_stopping": {"patience": 5, "min_delta": 0.001},
            "lr_scheduler": {"type": "step", "step_size": 20},
            "gradient_clip": 1,
        }
    )
    assert config.early_stopping == EarlyStoppingConfig(patience=5, min_delta=0.001)
    assert config.lr_scheduler == SchedulerConfig(type="step", step_size=20)
    assert config.gradient_clip == 1.0
    assert config.monitor == "val_loss"
    assert TrainingConfig().seed == 42


def test_device_errors_say_what_to_pass() -> None:
    with pytest.raises(InvalidInputError, match=r"device 'gpu0' is not a device torch knows; use 'cpu', 'cuda'"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(InvalidInputError, match=r"asks for CUDA, but torch sees no GPU here"):
            Trainer(TrainingConfig(), NullReporter(), device="cuda")
        assert resolve_device() == torch.device("cpu")


# ------------------------------------------------------------------------------------------------ predict


def test_predict_proba_gives_rows_summing_to_one_and_keeps_the_mode(train: Arrays) -> None:
    model = mlp()
    model.train()

    probabilities = predict_proba(model, train[0], "cpu", batch_size=128)

    assert probabilities.shape == (600, 3)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    assert model.training
    whole = predict_proba(model, train[0], "cpu", batch_size=10_000)
    np.testing.assert_allclose(probabilities, whole, rtol=1e-5, atol=1e-6)
    assert predict_proba(model, train[0][:0], "cpu").shape == (0, 3)


def test_predict_refuses_a_bad_batch_size_and_bad_features(train: Arrays) -> None:
    with pytest.raises(InvalidInputError, match="batch_size must be at least 1, got 0"):
        predict_proba(mlp(), train[0], "cpu", batch_size=0)
    with pytest.raises(InvalidInputError, match=r"x must be a 2-D numeric array .* got shape \(600,\)"):
        predict_proba(mlp(), train[1], "cpu")
