"""Hugging Face Transformers: a real Trainer on a tiny BERT built from its config (nothing downloaded) lands every
epoch in trainops, and a stop asked through trainops ends the training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import (
    BertConfig,
    BertForSequenceClassification,
    EvalPrediction,
    Trainer,
    TrainerCallback,
    TrainerControl,
    TrainerState,
    TrainingArguments,
)

from tests.integrations.recording import RecordingSink
from tests.integrations.stops import until_the_run_hears_of_the_stop
from trainops.client import TrainOps
from trainops.core.operation import OperationStatus
from trainops.integrations.transformers import TrainOpsCallback


class Tokens(torch.utils.data.Dataset[dict[str, torch.Tensor]]):
    """Random sequences of 8 token ids; the label says whether the first token is in the upper half."""

    def __init__(self, size: int, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.ids = torch.randint(1, 100, (size, 8), generator=generator)
        self.labels = (self.ids[:, 0] >= 50).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[index], "labels": self.labels[index]}


def accuracy(prediction: EvalPrediction) -> dict[str, float]:
    return {"accuracy": float((np.argmax(prediction.predictions, axis=-1) == prediction.label_ids).mean())}


def train(
    callbacks: list[TrainerCallback],
    tmp_path: Path,
    *,
    epochs: int = 3,
    train_size: int = 64,
    eval_dataset: Tokens | dict[str, Tokens] | None = None,
    evaluate_first: bool = False,
    **arguments: Any,
) -> Trainer:
    """Train a one-layer BERT of hidden size 16 on the CPU: ``train_size / 16`` steps an epoch (``evaluate_first``:
    ``trainer.evaluate()`` before ``trainer.train()``, as a baseline)."""
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=100, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32
    )
    settings: dict[str, Any] = {"eval_strategy": "epoch", "logging_steps": 2} | arguments
    args = TrainingArguments(
        output_dir=str(tmp_path / "trainer"),
        num_train_epochs=epochs,
        per_device_train_batch_size=16,
        learning_rate=1e-3,
        report_to=[],
        use_cpu=True,
        save_strategy="no",
        disable_tqdm=True,
        **settings,
    )
    trainer = Trainer(
        model=BertForSequenceClassification(config),
        args=args,
        train_dataset=Tokens(train_size, seed=0),
        eval_dataset=eval_dataset if eval_dataset is not None else Tokens(32, seed=1),
        compute_metrics=accuracy,
        callbacks=callbacks,
    )
    if evaluate_first:
        trainer.evaluate()
    trainer.train()
    return trainer


class Agent(TrainerCallback):
    """An agent that decides at an evaluation that the run should stop (before trainops' callback sees it: the
    Trainer calls callbacks in the order given). The evaluation then takes a second: a run's reporter sends epochs
    from a background thread and asks trainops whether to stop at least once a second, so it knows by then."""

    def __init__(self, ops: TrainOps, callback: TrainOpsCallback, *, at_step: int) -> None:
        self.ops, self.callback, self.at_step = ops, callback, at_step

    def on_evaluate(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if state.global_step == self.at_step:
            assert self.callback.operation_id is not None
            self.ops.cancel_operation(self.callback.operation_id, "eval_loss has plateaued", requested_by="agent")
            until_the_run_hears_of_the_stop(self.callback.tracker)


def test_a_training_lands_every_epoch_under_canonical_names(local_ops: TrainOps, tmp_path: Path) -> None:
    sink = RecordingSink()
    callback = TrainOpsCallback(local_ops, task="text_classification", sinks=[sink])
    trainer = train([callback], tmp_path)

    assert sink.epochs == [0, 1, 2]  # one record an epoch, sent once the epoch's evaluation is known
    assert callback.operation_id is not None
    operation = local_ops.get_operation(callback.operation_id)
    metrics = local_ops.get_metrics(callback.operation_id).metrics
    assert operation.status is OperationStatus.COMPLETED
    assert [(record.epoch, record.step) for record in metrics.epochs] == [(0, 4), (1, 8), (2, 12)]
    evaluations = [entry["eval_loss"] for entry in trainer.state.log_history if "eval_loss" in entry]
    assert [record.val_loss for record in metrics.epochs] == pytest.approx(evaluations)
    for record in metrics.epochs:
        assert record.train_loss is not None and record.val_accuracy is not None
        assert record.learning_rate is not None
        assert set(record.metrics) == {"grad_norm"}  # the evaluation's timing (eval_runtime, ...) is left out
    assert operation.result is not None
    aliases = operation.result["metric_aliases"]
    assert {"train_loss": "loss", "val_loss": "eval_loss", "val_accuracy": "eval_accuracy"}.items() <= aliases.items()
    assert {"train_runtime", "train_loss"} <= set(operation.result["final_metrics"])
    parameters = operation.metadata.parameters
    assert (parameters["learning_rate"], parameters["num_train_epochs"], parameters["eval_strategy"]) == (
        1e-3,
        3,
        "epoch",
    )
    assert parameters["model"]["hidden_size"] == 16 and parameters["model"]["model_type"] == "bert"
    assert "output_dir" not in parameters and "hub_token" not in parameters
    assert operation.total_epochs == 3
    # the training logs (every logging_steps=2) are the per-step series, at the Trainer's global steps
    points = local_ops.get_steps(callback.operation_id).points
    assert [point.step for point in points] == [2, 4, 6, 8, 10, 12]
    assert all({"train_loss", "learning_rate", "grad_norm"} <= set(point.metrics) for point in points)
    assert metrics.best_epoch is not None and callback.best_epoch == metrics.best_epoch


@pytest.mark.parametrize(
    ("transport", "database_url"),
    [("local", "sqlite"), pytest.param("local", "postgresql", marks=pytest.mark.postgres), ("http", "sqlite")],
    indirect=["database_url"],
)
def test_a_stop_asked_through_trainops_ends_the_training_after_the_epoch(
    transport: str, database_url: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    ops: TrainOps = request.getfixturevalue(f"{transport}_ops")
    callback = TrainOpsCallback(ops)
    trainer = train([Agent(ops, callback, at_step=8), callback], tmp_path, epochs=20)  # epoch 1 ends at step 8

    assert trainer.state.global_step == 8 and trainer.state.epoch == 2.0  # 2 of 20 epochs ran
    assert callback.operation_id is not None
    operation = ops.get_operation(callback.operation_id)
    assert operation.status is OperationStatus.CANCELLED
    assert operation.cancel_request is not None and operation.cancel_request.requested_by == "agent"
    metrics = ops.get_metrics(callback.operation_id).metrics
    assert [record.epoch for record in metrics.epochs] == [0, 1]
    assert metrics.total_epochs_planned == 20
    assert metrics.best_epoch is not None and callback.best_epoch == metrics.best_epoch


def test_a_stop_at_an_evaluation_inside_an_epoch_ends_the_training_there(local_ops: TrainOps, tmp_path: Path) -> None:
    callback = TrainOpsCallback(local_ops)
    # one long epoch of 16 steps, evaluated every 4
    agent = Agent(local_ops, callback, at_step=4)
    trainer = train([agent, callback], tmp_path, epochs=1, train_size=256, eval_strategy="steps", eval_steps=4)

    assert trainer.state.global_step == 4
    assert callback.operation_id is not None
    assert local_ops.get_operation(callback.operation_id).status is OperationStatus.CANCELLED
    (record,) = local_ops.get_metrics(callback.operation_id).metrics.epochs
    assert (record.epoch, record.step, record.val_loss is not None) == (0, 4, True)


def test_each_evaluation_data_set_lands_on_the_epoch(local_ops: TrainOps, tmp_path: Path) -> None:
    sink = RecordingSink()
    callback = TrainOpsCallback(local_ops, sinks=[sink])
    # one evaluation a data set, each its own on_evaluate after the epoch: the record is sent again with each
    train([callback], tmp_path, epochs=2, eval_dataset={"short": Tokens(16, seed=1), "long": Tokens(32, seed=2)})

    assert sink.epochs == [0, 0, 1, 1]
    assert callback.operation_id is not None
    for record in local_ops.get_metrics(callback.operation_id).metrics.epochs:
        assert {"val_short_loss", "val_short_accuracy", "val_long_loss", "val_long_accuracy"} <= set(record.metrics)
        assert record.train_loss is not None


class Crash(TrainerCallback):
    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if state.global_step == 6:
            raise RuntimeError("CUDA out of memory")


def test_the_context_manager_fails_the_run_when_training_raises(local_ops: TrainOps, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="CUDA out of memory"), TrainOpsCallback(local_ops) as callback:
        train([callback, Crash()], tmp_path)

    assert callback.operation_id is not None
    operation = local_ops.get_operation(callback.operation_id)
    assert operation.status is OperationStatus.FAILED
    assert operation.error == "RuntimeError: CUDA out of memory"
    assert [record.epoch for record in local_ops.get_metrics(callback.operation_id).metrics.epochs] == [0]


def test_a_train_after_one_that_raised_outside_a_with_block_is_its_own_operation(
    local_ops: TrainOps, tmp_path: Path
) -> None:
    """What the module says of a ``train()`` that raised without a ``with`` block: the next ``train()`` with the
    same callback ends its operation failed and reports into a new one."""
    callback = TrainOpsCallback(local_ops)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        train([callback, Crash()], tmp_path, epochs=5)
    failed = callback.operation_id
    train([callback], tmp_path, epochs=2)

    assert failed is not None and callback.operation_id not in (None, failed)
    abandoned = local_ops.get_operation(failed)
    assert abandoned.status is OperationStatus.FAILED and abandoned.total_epochs == 5
    assert abandoned.error is not None and abandoned.error.startswith("AbandonedFit: a later fit with the same")
    assert callback.operation_id is not None
    retried = local_ops.get_operation(callback.operation_id)
    assert (retried.status, retried.total_epochs) == (OperationStatus.COMPLETED, 2)
    assert [record.epoch for record in local_ops.get_metrics(callback.operation_id).metrics.epochs] == [0, 1]


@pytest.mark.parametrize("eval_strategy", ["epoch", "no"])
def test_epochs_shorter_than_logging_steps_carry_their_training_loss(
    eval_strategy: str, local_ops: TrainOps, tmp_path: Path
) -> None:
    """The Trainer's default logging_steps (500) is longer than most epochs: without a log at the epoch's end, no
    record had a training loss or a learning rate, and the diagnosis could not see overfitting."""
    sink = RecordingSink()
    callback = TrainOpsCallback(local_ops, sinks=[sink])
    trainer = train([callback], tmp_path, logging_steps=500, eval_strategy=eval_strategy)  # 4 steps an epoch

    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert [entry["step"] for entry in logged] == [4, 8, 12]  # one training log an epoch, at its end
    assert sink.epochs == [0, 1, 2]  # each record sent once
    assert callback.operation_id is not None
    records = local_ops.get_metrics(callback.operation_id).metrics.epochs
    assert [(record.epoch, record.step) for record in records] == [(0, 4), (1, 8), (2, 12)]  # each at its epoch's end
    assert [record.train_loss for record in records] == pytest.approx([entry["loss"] for entry in logged])
    assert [record.learning_rate for record in records] == pytest.approx([entry["learning_rate"] for entry in logged])
    assert all(record.val_loss is not None for record in records) is (eval_strategy == "epoch")


def test_a_log_cadence_shorter_than_an_epoch_keeps_its_step_logs(local_ops: TrainOps, tmp_path: Path) -> None:
    callback = TrainOpsCallback(local_ops)
    trainer = train([callback], tmp_path, logging_steps=3)  # 4 steps an epoch

    logged = {entry["step"]: entry["loss"] for entry in trainer.state.log_history if "loss" in entry}
    assert list(logged) == [3, 4, 6, 8, 9, 12]  # every 3 steps, and at the end of an epoch that had steps unlogged
    assert callback.operation_id is not None
    points = local_ops.get_steps(callback.operation_id).points
    assert [point.step for point in points] == [3, 4, 6, 8, 9, 12]
    records = local_ops.get_metrics(callback.operation_id).metrics.epochs
    # each log is the mean since the previous one: weighted by the steps it covers
    expected = [
        (3 * logged[3] + logged[4]) / 4,
        (2 * logged[6] + 2 * logged[8]) / 4,
        (logged[9] + 3 * logged[12]) / 4,
    ]
    assert [record.train_loss for record in records] == pytest.approx(expected)


def test_the_timing_of_every_evaluation_is_left_out(local_ops: TrainOps, tmp_path: Path) -> None:
    """The Trainer names each data set's timing after it (``eval_short_runtime``), and adds
    ``eval_model_preparation_time`` to every evaluation once ``trainer.evaluate()`` ran before ``train()``."""
    callback = TrainOpsCallback(local_ops)
    train(
        [callback],
        tmp_path,
        epochs=2,
        eval_dataset={"short": Tokens(16, seed=1), "long": Tokens(32, seed=2)},
        evaluate_first=True,
    )

    assert callback.operation_id is not None
    records = local_ops.get_metrics(callback.operation_id).metrics.epochs
    assert len(records) == 2
    for record in records:
        assert {"val_short_loss", "val_long_loss"} <= set(record.metrics)
        timing = [name for name in record.metrics if name.endswith(("runtime", "per_second", "preparation_time"))]
        assert timing == []


def test_the_first_evaluation_data_set_is_the_standard_validation(local_ops: TrainOps, tmp_path: Path) -> None:
    """With ``eval_dataset`` a dict no record had a ``val_loss``: the diagnosis said "No val_loss reported yet" for
    the whole run. The dict's first key (not the first by name: ``long`` sorts first) is the standard one."""
    callback = TrainOpsCallback(local_ops)
    trainer = train(
        [callback], tmp_path, epochs=2, eval_dataset={"short": Tokens(16, seed=1), "long": Tokens(32, seed=2)}
    )

    short = [entry for entry in trainer.state.log_history if "eval_short_loss" in entry]
    assert callback.operation_id is not None
    metrics = local_ops.get_metrics(callback.operation_id).metrics
    assert [record.val_loss for record in metrics.epochs] == pytest.approx(
        [entry["eval_short_loss"] for entry in short]
    )
    assert [record.val_accuracy for record in metrics.epochs] == pytest.approx(
        [entry["eval_short_accuracy"] for entry in short]
    )
    for record in metrics.epochs:  # the named metrics are kept, the first set's under its name too
        assert {"val_short_loss", "val_short_accuracy", "val_long_loss", "val_long_accuracy"} <= set(record.metrics)
        assert "val_long_loss" in record.metrics and record.metrics["val_long_loss"] != record.val_loss
    assert metrics.best_epoch is not None and "No val_loss" not in metrics.recommendation.reason
    result = local_ops.get_operation(callback.operation_id).result
    assert result is not None
    aliases = result["metric_aliases"]
    assert (aliases["val_loss"], aliases["val_accuracy"]) == ("eval_short_loss", "eval_short_accuracy")
    assert aliases["val_long_loss"] == "eval_long_loss"


def test_the_evaluation_before_training_is_no_epochs_validation(local_ops: TrainOps, tmp_path: Path) -> None:
    """``eval_on_start`` evaluates the untrained model at step 0: it was stored as epoch 0's ``val_loss`` when no
    other evaluation fell in epoch 0 (the worst value, taken for the first epoch's)."""
    callback = TrainOpsCallback(local_ops)
    # 4 steps an epoch, 8 in all: evaluations at 0 (on start), 6 (in epoch 1) and 8 (the last step)
    trainer = train([callback], tmp_path, epochs=2, eval_strategy="steps", eval_steps=6, eval_on_start=True)

    evaluations = {entry["step"]: entry for entry in trainer.state.log_history if "eval_loss" in entry}
    assert list(evaluations) == [0, 6, 8]
    assert callback.operation_id is not None
    records = local_ops.get_metrics(callback.operation_id).metrics.epochs
    assert [(record.epoch, record.step) for record in records] == [(0, 4), (1, 8)]
    assert (records[0].val_loss, records[0].val_accuracy) == (None, None)
    assert records[1].val_loss == pytest.approx(evaluations[8]["eval_loss"])
    # kept beside the epochs, in the operation's result
    result = local_ops.get_operation(callback.operation_id).result
    assert result is not None
    assert result["initial_evaluation"] == {
        "step": 0,
        "val_loss": pytest.approx(evaluations[0]["eval_loss"]),
        "val_accuracy": pytest.approx(evaluations[0]["eval_accuracy"]),
    }
