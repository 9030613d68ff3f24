"""Keras 3 (torch backend): real fits of a tiny model land every epoch in trainops, and a stop asked through
trainops ends them."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

from tests.integrations.recording import RecordingSink
from tests.integrations.stops import until_the_run_hears_of_the_stop
from trainops.callbacks import DIAGNOSIS
from trainops.client import TrainOps
from trainops.core.operation import OperationStatus
from trainops.core.policy import MonitorPolicy
from trainops.integrations.keras import TrainOpsCallback

# Keras' torch backend hands numpy torch tensors, whose __array__ numpy 2 calls deprecated
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")


def fit(callbacks: list[keras.callbacks.Callback], epochs: int = 3, lr: float = 0.01) -> keras.callbacks.History:
    """Two separable classes in 8 dimensions: 96 samples to train on in 3 batches, 32 to validate on."""
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(128, 8)).astype("float32")
    y = (x[:, 0] + x[:, 1] > 0).astype("int32")
    model = keras.Sequential(
        [keras.Input((8,)), keras.layers.Dense(16, activation="relu"), keras.layers.Dense(2, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model.fit(x, y, epochs=epochs, batch_size=32, validation_split=0.25, callbacks=callbacks, verbose=0)


class Agent(keras.callbacks.Callback):  # type: ignore[misc]
    """An agent that decides, at the end of epoch ``at``, that the run should stop (before trainops' callback
    runs: Keras calls callbacks in the order given). The epoch then takes a second: a run's reporter sends
    epochs from a background thread and asks trainops whether to stop at least once a second, so it knows by then."""

    def __init__(self, ops: TrainOps, callback: TrainOpsCallback, at: int = 1) -> None:
        super().__init__()
        self.ops, self.callback, self.at = ops, callback, at

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if epoch == self.at:
            assert self.callback.operation_id is not None
            self.ops.cancel_operation(self.callback.operation_id, "val_loss has plateaued", requested_by="agent")
            until_the_run_hears_of_the_stop(self.callback.tracker)


class Crash(keras.callbacks.Callback):  # type: ignore[misc]
    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if epoch == 1:
            raise RuntimeError("CUDA out of memory")


def test_a_fit_lands_every_epoch_under_canonical_names(local_ops: TrainOps) -> None:
    sink = RecordingSink()
    callback = TrainOpsCallback(local_ops, task="tabular_classification", sinks=[sink])
    history = fit([callback])

    assert sink.epochs == [0, 1, 2]
    assert callback.operation_id is not None
    operation = local_ops.get_operation(callback.operation_id)
    metrics = local_ops.get_metrics(callback.operation_id).metrics
    assert operation.status is OperationStatus.COMPLETED
    assert [(record.epoch, record.step) for record in metrics.epochs] == [(0, 3), (1, 6), (2, 9)]
    assert [record.val_loss for record in metrics.epochs] == pytest.approx(history.history["val_loss"])
    assert [record.train_accuracy for record in metrics.epochs] == pytest.approx(history.history["accuracy"])
    for record in metrics.epochs:
        assert record.train_loss is not None and record.val_accuracy is not None
        assert record.learning_rate == pytest.approx(0.01) and record.duration is not None
    assert operation.result is not None
    assert operation.result["metric_aliases"] == {"train_loss": "loss", "train_accuracy": "accuracy"}
    assert operation.result["final_metrics"]["val_loss"] == pytest.approx(history.history["val_loss"][-1])
    parameters = operation.metadata.parameters
    assert (parameters["epochs"], parameters["steps_per_epoch"]) == (3, 3)
    assert parameters["optimizer"]["class_name"] == "Adam"
    assert parameters["optimizer"]["learning_rate"] == pytest.approx(0.01)
    assert operation.total_epochs == 3
    points = local_ops.get_steps(callback.operation_id).points  # each batch's running metrics
    assert [point.step for point in points] == list(range(1, 10))
    assert all(set(point.metrics) == {"train_loss", "train_accuracy"} for point in points)
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
    history = fit([Agent(ops, callback, at=1), callback], epochs=20)

    assert history.epoch == [0, 1]  # the epoch the stop was asked in was the last
    assert callback.operation_id is not None
    operation = ops.get_operation(callback.operation_id)
    assert operation.status is OperationStatus.CANCELLED
    assert operation.cancel_request is not None and operation.cancel_request.requested_by == "agent"
    metrics = ops.get_metrics(callback.operation_id).metrics
    assert [record.epoch for record in metrics.epochs] == [0, 1]
    assert metrics.total_epochs_planned == 20
    assert metrics.best_epoch is not None and callback.best_epoch == metrics.best_epoch


def test_the_diagnosis_can_stop_the_fit(local_ops: TrainOps) -> None:
    # a run that cannot learn (learning rate 0): val_loss never improves on epoch 0's
    policy = MonitorPolicy(stop_rule="patience", patience=2)
    callback = TrainOpsCallback(local_ops, stop_on_recommendation=policy)
    history = fit([callback], epochs=20, lr=0.0)

    assert history.epoch == [0, 1, 2]
    assert callback.operation_id is not None
    operation = local_ops.get_operation(callback.operation_id)
    assert operation.status is OperationStatus.CANCELLED
    assert operation.cancel_request is not None and operation.cancel_request.requested_by == DIAGNOSIS
    assert callback.best_epoch == 0


def test_the_context_manager_fails_the_run_when_fit_raises(local_ops: TrainOps) -> None:
    with pytest.raises(RuntimeError, match="CUDA out of memory"), TrainOpsCallback(local_ops) as callback:
        fit([callback, Crash()])

    assert callback.operation_id is not None
    operation = local_ops.get_operation(callback.operation_id)
    assert operation.status is OperationStatus.FAILED
    assert operation.error == "RuntimeError: CUDA out of memory"
    assert [record.epoch for record in local_ops.get_metrics(callback.operation_id).metrics.epochs] == [0]


def test_one_callback_reports_each_fit_as_its_own_operation(local_ops: TrainOps) -> None:
    callback = TrainOpsCallback(local_ops)
    operations = []
    for epochs in (1, 2):
        fit([callback], epochs=epochs)
        operations.append(callback.operation_id)

    assert None not in operations and operations[0] != operations[1]
    for operation_id, epochs in zip(operations, (1, 2), strict=True):
        assert operation_id is not None
        assert local_ops.get_operation(operation_id).status is OperationStatus.COMPLETED
        assert len(local_ops.get_metrics(operation_id).metrics.epochs) == epochs


def test_a_fit_after_one_that_raised_outside_a_with_block_is_its_own_operation(local_ops: TrainOps) -> None:
    """A retry in a notebook (or a sweep that catches a failed trial) reported into the failed fit's operation,
    under its hyperparameters, and ended it completed."""
    callback = TrainOpsCallback(local_ops)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        fit([callback, Crash()], epochs=5)
    failed = callback.operation_id
    fit([callback], epochs=2)

    assert failed is not None and callback.operation_id not in (None, failed)
    abandoned = local_ops.get_operation(failed)
    assert abandoned.status is OperationStatus.FAILED and abandoned.total_epochs == 5
    assert abandoned.error is not None and abandoned.error.startswith("AbandonedFit: a later fit with the same")
    assert [record.epoch for record in local_ops.get_metrics(failed).metrics.epochs] == [0]
    assert callback.operation_id is not None
    retried = local_ops.get_operation(callback.operation_id)
    assert (retried.status, retried.total_epochs) == (OperationStatus.COMPLETED, 2)
    assert [record.epoch for record in local_ops.get_metrics(callback.operation_id).metrics.epochs] == [0, 1]
