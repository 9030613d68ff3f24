"""Mirroring to MLflow, against real MLflow tracking stores: a ``file://`` folder, a ``sqlite://`` database and a
real ``mlflow server`` process. What MLflow holds, read back through ``MlflowClient``, must equal what trainops
stored: the run, its parameters and every metric's full history."""

from __future__ import annotations

import logging
import math
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from tests.callbacks.conftest import MlflowServer
from tests.processes import LOOPBACK, free_port
from trainops.callbacks import TrainingCallbacks
from trainops.callbacks.mlflow import MAX_PARAM_VALUE_LENGTH, MlflowSink
from trainops.cli.main import app
from trainops.client.base import TrainOps
from trainops.client.local import LocalTrainOps
from trainops.core.operation import OperationStatus
from trainops.errors import InvalidInputError
from trainops.service.operations import OperationsService

CONFIG = {"lr": 3e-4, "optimizer": {"name": "adamw", "betas": [0.9, 0.999]}, "batch_size": 32, "notes": None}
PARAMS = {
    "lr": "0.0003",
    "optimizer.name": "adamw",
    "optimizer.betas": "[0.9, 0.999]",
    "batch_size": "32",
    "notes": "None",
}
EPOCHS = 4


def framework_metrics(epoch: int) -> dict[str, Any]:
    """A Hugging Face-style epoch: its own names, a custom metric and a NaN (kept, as evidence of divergence)."""
    return {
        "loss": 1.0 / (epoch + 1),
        "eval_loss": 1.2 / (epoch + 1),
        "eval_accuracy": 0.5 + epoch / 10,
        "learning_rate": 1e-3 * 0.5**epoch,
        "grad_norm": math.nan if epoch == 2 else 0.1 * epoch,
        "mAP50-95": 0.25 + epoch / 100,
    }


@pytest.fixture(params=["file", "sqlite", "server"])
def tracking_uri(request: pytest.FixtureRequest) -> str:
    """Each kind of MLflow tracking store in turn."""
    if request.param == "server":
        server: MlflowServer = request.getfixturevalue("mlflow_server")
        return server.url
    uri: str = request.getfixturevalue(f"mlflow_{request.param}_store")
    return uri


def fit(ops: TrainOps, mlflow: str | MlflowSink, artifact: Path | None = None) -> TrainingCallbacks:
    """A training of EPOCHS epochs reported through TrainingCallbacks, mirrored to ``mlflow``."""
    tracker = TrainingCallbacks(ops, task="image_classification", total_epochs=EPOCHS, config=CONFIG, mlflow=mlflow)
    with tracker:
        for epoch in range(EPOCHS):
            tracker.on_epoch_begin(epoch)
            tracker.on_epoch_end(epoch, framework_metrics(epoch))
        if artifact is not None:
            tracker.log_artifact(artifact, "checkpoints")
        tracker.on_train_end({"eval_accuracy": 0.91})
    return tracker


def same(value: float) -> float | str:
    """A value compared as stored: NaN equals NaN."""
    return "NaN" if math.isnan(value) else value


def trainops_series(ops: TrainOps, operation_id: str) -> dict[str, list[tuple[int, float | str]]]:
    """Every metric's history as trainops stored it: ``{name: [(epoch, value), ...]}`` (duration included)."""
    series: dict[str, list[tuple[int, float | str]]] = {}
    for record in ops.get_metrics(operation_id).metrics.epochs:
        values = {name: record.value(name) for name in record.metric_names()}
        values["duration"] = record.duration
        for name, value in values.items():
            assert value is not None
            series.setdefault(name, []).append((record.epoch, same(value)))
    return series


def mlflow_series(
    client: MlflowClient, run_id: str, names: Iterator[str] | list[str]
) -> dict[str, list[tuple[int, float | str]]]:
    return {
        name: [
            (metric.step, same(metric.value))
            for metric in sorted(client.get_metric_history(run_id, name), key=lambda m: m.step)
        ]
        for name in names
    }


def test_a_fit_is_mirrored_equal_to_what_trainops_stored(ops: TrainOps, tracking_uri: str, tmp_path: Path) -> None:
    checkpoint = tmp_path / "best.txt"
    checkpoint.write_text("weights of epoch 3")
    tracker = fit(ops, tracking_uri, checkpoint)

    assert tracker.operation_id is not None
    operation = ops.get_operation(tracker.operation_id)
    assert operation.status is OperationStatus.COMPLETED
    metadata = operation.metadata.model_dump()
    assert metadata["mlflow_tracking_uri"] == tracking_uri
    client = MlflowClient(tracking_uri)
    run = client.get_run(metadata["mlflow_run_id"])
    assert run.info.experiment_id == metadata["mlflow_experiment_id"]
    assert client.get_experiment(run.info.experiment_id).name == f"job_{tracker.operation_id}"
    assert run.info.status == "FINISHED" and run.info.run_name == tracker.operation_id
    assert run.data.params == PARAMS
    assert run.data.tags["trainops.operation_id"] == tracker.operation_id
    assert run.data.tags["trainops.task"] == "image_classification"

    stored = trainops_series(ops, tracker.operation_id)
    assert set(stored) == {
        "train_loss",
        "val_loss",
        "val_accuracy",
        "learning_rate",
        "grad_norm",
        "mAP50-95",
        "duration",
    }
    assert all(len(points) == EPOCHS for points in stored.values())
    assert mlflow_series(client, run.info.run_id, list(stored)) == stored
    assert set(run.data.metrics) == {*stored, "final_val_accuracy"}
    assert run.data.metrics["final_val_accuracy"] == 0.91

    downloaded = Path(client.download_artifacts(run.info.run_id, "checkpoints/best.txt", str(tmp_path / "back")))
    assert downloaded.read_text() == "weights of epoch 3"


def test_a_failed_training_ends_its_run_failed_with_the_error(ops: TrainOps, mlflow_sqlite_store: str) -> None:
    tracker = TrainingCallbacks(ops, mlflow=mlflow_sqlite_store)

    def train() -> None:
        with tracker:
            tracker.on_epoch_end(0, {"train_loss": 0.9, "val_loss": 1.0})
            raise RuntimeError("CUDA out of memory")

    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        train()
    assert tracker.operation_id is not None
    operation = ops.get_operation(tracker.operation_id)
    assert operation.status is OperationStatus.FAILED
    client = MlflowClient(mlflow_sqlite_store)
    run = client.get_run(operation.metadata.model_dump()["mlflow_run_id"])
    assert run.info.status == "FAILED"
    assert run.data.tags["trainops.error"] == "RuntimeError: CUDA out of memory"
    assert [metric.value for metric in client.get_metric_history(run.info.run_id, "val_loss")] == [1.0]


def test_a_stopped_training_ends_its_run_killed(ops: TrainOps, mlflow_sqlite_store: str) -> None:
    with TrainingCallbacks(ops, total_epochs=100, mlflow=mlflow_sqlite_store) as tracker:
        for epoch in range(100):
            time.sleep(0.05)  # an epoch takes time; over HTTP the run learns of a stop within a second
            tracker.on_epoch_end(epoch, {"val_loss": 1.0 / (epoch + 1)})
            if epoch == 2:  # an agent decides
                assert tracker.operation_id is not None
                ops.cancel_operation(tracker.operation_id, "enough", requested_by="agent")
            if tracker.should_stop():
                break
    assert tracker.operation_id is not None
    operation = ops.get_operation(tracker.operation_id)
    assert operation.status is OperationStatus.CANCELLED and epoch < 99
    client = MlflowClient(mlflow_sqlite_store)
    run = client.get_run(operation.metadata.model_dump()["mlflow_run_id"])
    assert run.info.status == "KILLED"
    history = client.get_metric_history(run.info.run_id, "val_loss")
    assert [metric.step for metric in history] == list(range(epoch + 1))


def test_an_unreachable_mlflow_costs_one_warning_and_a_moment(ops: TrainOps, caplog: pytest.LogCaptureFixture) -> None:
    closed = f"http://{LOOPBACK}:{free_port()}"  # nobody listens there
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="trainops.callbacks"):
        tracker = fit(ops, closed)
    elapsed = time.monotonic() - started
    assert elapsed < 10, f"a dead MLflow server cost the training {elapsed:.1f} s"
    warnings = [entry.getMessage() for entry in caplog.records if entry.name == "trainops.callbacks"]
    assert len(warnings) == 1, warnings
    assert "mlflow" in warnings[0] and "cannot be reached" in warnings[0] and "training goes on" in warnings[0]
    assert tracker.operation_id is not None
    operation = ops.get_operation(tracker.operation_id)
    assert operation.status is OperationStatus.COMPLETED
    assert "mlflow_run_id" not in operation.metadata.model_dump()
    assert [record.epoch for record in ops.get_metrics(tracker.operation_id).metrics.epochs] == list(range(EPOCHS))


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A port that accepts connections and never answers: a hung tracking server."""
    listener = socket.create_server((LOOPBACK, 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://{LOOPBACK}:{listener.getsockname()[1]}"
    stop.set()
    thread.join(5)
    for connection in accepted:
        connection.close()
    listener.close()


def test_a_hung_mlflow_server_costs_at_most_the_begin_timeout(
    ops: TrainOps, silent_server: str, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="trainops.callbacks"):
        tracker = fit(ops, MlflowSink(silent_server, begin_timeout=1.5))
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed < 8, elapsed
    warnings = [entry.getMessage() for entry in caplog.records if entry.name == "trainops.callbacks"]
    assert len(warnings) == 1 and "took longer than 1.5 s" in warnings[0], warnings
    assert tracker.operation_id is not None
    assert len(ops.get_metrics(tracker.operation_id).metrics.epochs) == EPOCHS


def test_mlflow_refusing_mid_training_costs_one_warning_and_trainops_keeps_every_epoch(
    ops: TrainOps, mlflow_file_store: str, caplog: pytest.LogCaptureFixture
) -> None:
    client = MlflowClient(mlflow_file_store)
    with (
        caplog.at_level(logging.WARNING, logger="trainops.callbacks"),
        TrainingCallbacks(ops, mlflow=mlflow_file_store) as tracker,
    ):
        assert tracker.operation_id is not None
        run_id = ops.get_operation(tracker.operation_id).metadata.model_dump()["mlflow_run_id"]
        for epoch in range(20):
            if epoch == 5:  # someone deletes the run in MLflow: it refuses every later write
                client.delete_run(run_id)
            time.sleep(0.02)
            tracker.on_epoch_end(epoch, {"val_loss": 1.0 / (epoch + 1)})
    warnings = [entry.getMessage() for entry in caplog.records if entry.name == "trainops.callbacks"]
    assert len(warnings) == 1, warnings
    assert "reporting to mlflow failed" in warnings[0] and "sending to MLflow" in warnings[0], warnings
    assert ops.get_operation(tracker.operation_id).status is OperationStatus.COMPLETED
    assert len(ops.get_metrics(tracker.operation_id).metrics.epochs) == 20
    assert client.get_run(run_id).info.status == "RUNNING"  # a deleted run is left as it was


def test_two_trainings_in_one_process_keep_their_own_runs(ops: TrainOps, mlflow_file_store: str) -> None:
    first = TrainingCallbacks(ops, mlflow=mlflow_file_store)
    second = TrainingCallbacks(ops, mlflow=mlflow_file_store)
    with first, second:
        for epoch in range(3):  # interleaved, as two models trained side by side
            first.on_epoch_end(epoch, {"val_loss": 1.0 + epoch})
            second.on_epoch_end(epoch, {"val_loss": 2.0 + epoch})
    client = MlflowClient(mlflow_file_store)
    for tracker, base in ((first, 1.0), (second, 2.0)):
        assert tracker.operation_id is not None
        run_id = ops.get_operation(tracker.operation_id).metadata.model_dump()["mlflow_run_id"]
        assert [metric.value for metric in client.get_metric_history(run_id, "val_loss")] == [base, base + 1, base + 2]


def test_a_long_fit_arrives_whole_in_batches(ops: TrainOps, mlflow_file_store: str) -> None:
    names = [f"metric_{index}" for index in range(40)]
    with TrainingCallbacks(ops, mlflow=mlflow_file_store) as tracker:
        for epoch in range(60):  # 60 x 41 values: more than one MLflow batch
            tracker.on_epoch_end(epoch, {"val_loss": 1.0 / (epoch + 1), **dict.fromkeys(names, float(epoch))})
    assert tracker.operation_id is not None
    run_id = ops.get_operation(tracker.operation_id).metadata.model_dump()["mlflow_run_id"]
    client = MlflowClient(mlflow_file_store)
    assert len(client.get_metric_history(run_id, "metric_39")) == 60
    assert len(client.get_metric_history(run_id, "val_loss")) == 60


def test_parameters_mlflow_would_refuse_are_made_valid_with_a_warning(
    ops: TrainOps, mlflow_file_store: str, caplog: pytest.LogCaptureFixture
) -> None:
    config = {"model:depth": 18, "prompt": "x" * (MAX_PARAM_VALUE_LENGTH + 10), "a//b": 1}
    with (
        caplog.at_level(logging.WARNING, logger="trainops.callbacks"),
        TrainingCallbacks(ops, config=config, mlflow=mlflow_file_store) as tracker,
    ):
        tracker.on_epoch_end(0, {"val_loss": 1.0})
    assert tracker.operation_id is not None
    run_id = ops.get_operation(tracker.operation_id).metadata.model_dump()["mlflow_run_id"]
    params = MlflowClient(mlflow_file_store).get_run(run_id).data.params
    assert params["model_depth"] == "18" and params["a__b"] == "1"
    assert params["prompt"] == "x" * MAX_PARAM_VALUE_LENGTH
    warnings = [entry.getMessage() for entry in caplog.records]
    assert any(f"at most {MAX_PARAM_VALUE_LENGTH} characters" in text and "prompt" in text for text in warnings), (
        warnings
    )


def test_the_experiment_and_run_names_can_be_chosen_and_the_experiment_is_reused(
    ops: TrainOps, mlflow_sqlite_store: str
) -> None:
    run_ids = []
    for index in range(2):
        sink = MlflowSink(mlflow_sqlite_store, experiment_name="resnet-sweep", run_name=f"trial-{index}")
        with TrainingCallbacks(ops, mlflow=sink) as tracker:
            tracker.on_epoch_end(0, {"val_loss": 1.0})
        assert tracker.operation_id is not None
        run_ids.append(ops.get_operation(tracker.operation_id).metadata.model_dump()["mlflow_run_id"])
    client = MlflowClient(mlflow_sqlite_store)
    runs = [client.get_run(run_id) for run_id in run_ids]
    assert [run.info.run_name for run in runs] == ["trial-0", "trial-1"]
    assert runs[0].info.experiment_id == runs[1].info.experiment_id
    assert client.get_experiment(runs[0].info.experiment_id).name == "resnet-sweep"


def test_without_log_every_epoch_only_the_parameters_and_final_metrics_are_sent(
    ops: TrainOps, mlflow_file_store: str
) -> None:
    tracker = fit(ops, MlflowSink(mlflow_file_store, log_every_epoch=False))
    assert tracker.operation_id is not None
    run_id = ops.get_operation(tracker.operation_id).metadata.model_dump()["mlflow_run_id"]
    run = MlflowClient(mlflow_file_store).get_run(run_id)
    assert run.data.params == PARAMS and run.info.status == "FINISHED"
    assert run.data.metrics == {"final_val_accuracy": 0.91}
    assert len(ops.get_metrics(tracker.operation_id).metrics.epochs) == EPOCHS  # trainops still has every epoch


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"drain_timeout": 0}, "drain_timeout must be a positive number of seconds"),
        ({"begin_timeout": math.inf}, "begin_timeout must be a positive number of seconds"),
        ({"experiment_name": " "}, "experiment_name ' ' must be between 1 and 500 characters"),
        ({"tracking_uri": ""}, "tracking_uri '' is empty"),
    ],
)
def test_bad_options_are_refused_when_the_sink_is_made(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        MlflowSink(**options)


def test_the_mlflow_run_shows_in_ops_show(service: OperationsService, mlflow_file_store: str) -> None:
    ops = LocalTrainOps(service)
    with TrainingCallbacks(ops, mlflow=mlflow_file_store) as tracker:
        tracker.on_epoch_end(0, {"val_loss": 1.0})
    assert tracker.operation_id is not None
    run_id = ops.get_operation(tracker.operation_id).metadata.model_dump()["mlflow_run_id"]
    result = CliRunner().invoke(app, ["ops", "show", tracker.operation_id], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"mlflow_run_id={run_id}" in result.output


def test_secrets_in_a_config_are_neither_stored_nor_mirrored(ops: TrainOps, mlflow_file_store: str) -> None:
    config = {
        "lr": 0.01,
        "db_password": "pw-secret-1",
        "wandb_api_key": "wk-secret-2",
        "data_uri": "https://reader:pw-secret-3@data.example.com/set?token=tk-secret-4&split=train",
        "max_tokens": 512,
    }
    with TrainingCallbacks(ops, config=config, mlflow=mlflow_file_store) as tracker:
        tracker.on_epoch_end(0, {"val_loss": 1.0})
    assert tracker.operation_id is not None

    operation = ops.get_operation(tracker.operation_id)
    run_id = operation.metadata.model_dump()["mlflow_run_id"]
    mirrored = MlflowClient(mlflow_file_store).get_run(run_id).data.params
    for parameters in (operation.metadata.parameters, mirrored):
        assert str(parameters["lr"]) == "0.01" and str(parameters["max_tokens"]) == "512"
        assert parameters["db_password"] == parameters["wandb_api_key"] == "<redacted>"
        assert str(parameters["data_uri"]).startswith("https://data.example.com/set?token=")
        assert not any(secret in repr(parameters) for secret in ("pw-secret", "wk-secret", "tk-secret"))
