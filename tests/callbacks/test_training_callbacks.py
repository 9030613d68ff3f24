"""TrainingCallbacks on both transports: the seven hooks, canonical names, stops, and tracking that never breaks
the training it watches."""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

from tests.live_server import LiveServer
from tests.server_process import ServerProcess
from trainops.callbacks import DIAGNOSIS, RunInfo, TrainingCallbacks
from trainops.callbacks.training import CONSULT_WAIT
from trainops.client.base import TrainOps
from trainops.client.http import HttpTrainOps
from trainops.client.unsent import sync_file
from trainops.core.cancellation import INTERRUPTED
from trainops.core.epoch import EpochRecord
from trainops.core.operation import OperationStatus
from trainops.core.policy import MonitorPolicy
from trainops.settings import Settings

# a Hugging Face-style loop: its own names, an index among the metrics
LOSSES = [0.9, 0.6, 0.45, 0.44, 0.46]


def trainops_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What trainops' callbacks warned of: other libraries' log records (an MLflow client retrying in the background
    after an earlier test's dead server, say) are not the training's business."""
    return [entry.getMessage() for entry in caplog.records if entry.name == "trainops.callbacks"]


def framework_metrics(epoch: int) -> dict[str, Any]:
    return {"loss": LOSSES[epoch] + 0.05, "eval_loss": LOSSES[epoch], "eval_f1": 0.5 + epoch / 20, "epoch": epoch}


def test_a_loop_reports_every_epoch_under_canonical_names(ops: TrainOps) -> None:
    tracker = TrainingCallbacks(ops, total_epochs=5, config={"lr": 3e-4, "optimizer": "adamw"})
    tracker.on_train_begin()
    assert tracker.operation_id is not None
    assert ops.get_operation(tracker.operation_id).status is OperationStatus.RUNNING
    for epoch in range(5):
        tracker.on_epoch_begin(epoch)
        for batch in range(3):
            tracker.on_batch_end(batch, {"loss": 1.0})
        tracker.on_epoch_end(epoch, framework_metrics(epoch))
    tracker.on_train_end({"eval_accuracy": 0.91})
    tracker.on_train_end()  # a second end changes nothing

    operation = ops.get_operation(tracker.operation_id)
    metrics = ops.get_metrics(tracker.operation_id).metrics
    assert operation.status is OperationStatus.COMPLETED
    assert operation.metadata.parameters == {"lr": 3e-4, "optimizer": "adamw"}
    assert [record.epoch for record in metrics.epochs] == [0, 1, 2, 3, 4]
    last = metrics.epochs[-1]
    assert (last.val_loss, last.train_loss, last.metrics["val_f1"]) == (0.46, pytest.approx(0.51), 0.7)
    assert "epoch" not in last.metrics and last.duration is not None and last.duration >= 0
    assert metrics.best_epoch == 3 == tracker.best_epoch
    # nothing renamed silently: the framework's names are kept as aliases
    assert tracker.aliases == {"val_loss": "eval_loss", "val_f1": "eval_f1", "train_loss": "loss"}
    assert operation.result is not None
    assert operation.result["metric_aliases"] == tracker.aliases
    assert operation.result["final_metrics"] == {"val_accuracy": 0.91}


def test_a_second_call_for_an_epoch_adds_its_metrics_to_that_epoch(ops: TrainOps) -> None:
    """A loop that reports training metrics, then validation ones, for one epoch keeps both on the epoch."""
    sink = RecordingValues()
    with TrainingCallbacks(ops, total_epochs=2, sinks=[sink]) as tracker:
        for epoch in range(2):
            tracker.on_epoch_begin(epoch)
            tracker.on_epoch_end(epoch, {"train_loss": 1.0 - epoch / 4, "lr": 0.1})
            tracker.on_epoch_end(epoch, {"val_loss": 0.9 - epoch / 4, "lr": 0.05})  # a later value wins
    assert tracker.operation_id is not None
    epochs = ops.get_metrics(tracker.operation_id).metrics.epochs
    assert [(e.epoch, e.train_loss, e.val_loss, e.learning_rate) for e in epochs] == [
        (0, 1.0, 0.9, 0.05),
        (1, 0.75, 0.65, 0.05),
    ]
    assert epochs[0].duration is not None  # measured by the first call, kept by the second
    assert sink.values[-1] == (1, {"train_loss": 0.75, "val_loss": 0.65, "learning_rate": 0.05})


def test_tensors_and_numpy_numbers_are_numbers_and_text_is_skipped_with_one_warning(
    ops: TrainOps, caplog: pytest.LogCaptureFixture
) -> None:
    with TrainingCallbacks(ops) as tracker, caplog.at_level(logging.WARNING, logger="trainops.callbacks"):
        for epoch in range(2):
            tracker.on_epoch_end(
                epoch,
                {
                    "val_loss": torch.tensor(0.5),
                    "val_accuracy": np.float32(0.75),
                    "converged": np.bool_(True),  # a boolean counts as 0 or 1, whoever made it
                    "diverged": torch.tensor(False),
                    "note": "fine",
                    "grad": [1, 2],
                },
            )
    assert tracker.operation_id is not None
    record = ops.get_metrics(tracker.operation_id).metrics.epochs[-1]
    assert (record.val_loss, record.val_accuracy, record.metrics) == (0.5, 0.75, {"converged": 1.0, "diverged": 0.0})
    warnings = trainops_warnings(caplog)
    assert len(warnings) == 1, warnings
    assert "note, grad skipped: only numbers are tracked" in warnings[0]


def test_leaving_the_block_on_an_error_fails_the_run_with_its_message(ops: TrainOps) -> None:
    tracker = TrainingCallbacks(ops)

    def train() -> None:
        with tracker:
            tracker.on_epoch_end(0, {"val_loss": 1.0})
            raise RuntimeError("CUDA out of memory")

    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        train()
    assert tracker.operation_id is not None
    operation = ops.get_operation(tracker.operation_id)
    assert operation.status is OperationStatus.FAILED
    assert operation.error == "RuntimeError: CUDA out of memory"


def test_a_stop_asked_elsewhere_stops_the_loop_and_the_run_ends_cancelled(ops: TrainOps) -> None:
    ran = []
    with TrainingCallbacks(ops, total_epochs=100) as tracker:
        assert tracker.operation_id is not None
        for epoch in range(100):
            time.sleep(0.05)  # an epoch takes time; over HTTP the run learns of a stop within a second
            tracker.on_epoch_end(epoch, {"val_loss": 1.0 / (epoch + 1)})
            ran.append(epoch)
            if epoch == 2:  # an agent decides
                ops.cancel_operation(tracker.operation_id, "enough", requested_by="agent")
            stop = tracker.should_stop()
            if stop is not None:
                break
    assert stop is not None and (stop.requested_by, stop.reason) == ("agent", "enough")
    assert ran[-1] < 2 + 40
    operation = ops.get_operation(tracker.operation_id)
    assert operation.status is OperationStatus.CANCELLED
    assert ops.get_metrics(tracker.operation_id).metrics.total_epochs_completed == len(ran)


def test_the_diagnosis_can_stop_the_run(ops: TrainOps) -> None:
    policy = MonitorPolicy(stop_rule="patience", patience=3)
    losses = [1.0, 0.8, 0.7, 0.71, 0.72, 0.73, 0.74, 0.75, 0.76, 0.77]
    with TrainingCallbacks(ops, total_epochs=len(losses), stop_on_recommendation=policy) as tracker:
        for epoch, loss in enumerate(losses):
            tracker.on_epoch_end(epoch, {"train_loss": loss * 0.9, "val_loss": loss})
            if tracker.should_stop():
                break
    assert tracker.operation_id is not None
    operation = ops.get_operation(tracker.operation_id)
    assert operation.status is OperationStatus.CANCELLED
    assert operation.cancel_request is not None and operation.cancel_request.requested_by == DIAGNOSIS
    assert "epoch 2" in operation.cancel_request.reason
    assert epoch == 5  # three epochs without improvement after the best (epoch 2)
    assert tracker.best_epoch == 2


def test_only_rank_zero_reports(ops: TrainOps, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    with TrainingCallbacks(ops) as tracker:
        tracker.on_epoch_end(0, {"val_loss": 1.0})
        assert tracker.should_stop() is None
    assert tracker.operation_id is None
    assert ops.list_operations().total == 0
    monkeypatch.setenv("RANK", "0")
    with TrainingCallbacks(ops) as tracker:
        tracker.on_epoch_end(0, {"val_loss": 1.0})
    assert ops.list_operations().total == 1


def test_a_server_down_at_the_start_never_breaks_the_training_and_the_run_is_kept(
    database_url: str, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture, mlflow_file_store: str
) -> None:
    """The run begins offline under an id of its own, trains on, keeps everything (its registration first, with
    the MLflow run it mirrors to) in a spill file, and `trainops sync` registers and fills the operation once the
    server is up."""
    server = ServerProcess(database_url, tmp_path / "server")  # its port is chosen; it is not started yet
    ops = HttpTrainOps(server.url, retries=0, timeout=2.0)
    try:
        tracking = TrainingCallbacks(
            ops, total_epochs=3, flush_timeout=0.5, config={"lr": 0.1}, mlflow=mlflow_file_store
        )
        with caplog.at_level(logging.WARNING, logger="trainops"), tracking as tracker:
            for epoch in range(3):
                tracker.on_epoch_begin(epoch)
                tracker.on_batch_end(0, {"loss": 1.0})
                tracker.on_epoch_end(epoch, {"val_loss": 1.0 / (epoch + 1)})
                assert tracker.should_stop() is None
        operation_id = tracker.operation_id
        assert operation_id is not None and tracker.is_reporting
        assert tracker.run is not None and not tracker.run.registered
        warnings = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
        assert len(warnings) == 2, warnings
        assert f"run {operation_id} begins offline" in warnings[0] and "Training goes on" in warnings[0]
        assert f"kept in {settings.home / 'unsent' / operation_id}" in warnings[1]

        server.start()
        (spill,) = (settings.home / "unsent" / operation_id).glob("*.jsonl")
        with HttpTrainOps(server.url) as online:
            result = sync_file(online, spill)
            stored = online.get_operation(operation_id)
            epochs = online.get_metrics(operation_id).metrics.epochs
    finally:
        server.stop()
    assert result.registered and stored.status is OperationStatus.COMPLETED
    assert stored.metadata.parameters == {"lr": 0.1} and stored.total_epochs == 3
    assert stored.metadata.model_dump()["mlflow_tracking_uri"] == mlflow_file_store
    assert [(epoch.epoch, epoch.val_loss) for epoch in epochs] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]


class RecordingSink:
    name = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []

    def begin(self, run: RunInfo) -> None:
        self.calls.append(("begin", run.operation_id))

    def epoch(self, record: EpochRecord) -> None:
        self.calls.append(("epoch", record.epoch))

    def artifact(self, path: Path, artifact_path: str | None) -> None:
        self.calls.append(("artifact", path.name))

    def end(self, status: OperationStatus, final_metrics: Mapping[str, float], error: str | None) -> None:
        self.calls.append(("end", status))


class RecordingValues(RecordingSink):
    """Records each epoch's standard losses and learning rate as the sinks get them."""

    def __init__(self) -> None:
        super().__init__()
        self.values: list[tuple[int, dict[str, float | None]]] = []

    def epoch(self, record: EpochRecord) -> None:
        fields = ("train_loss", "val_loss", "learning_rate")
        self.values.append((record.epoch, {name: getattr(record, name) for name in fields}))


class BrokenSink(RecordingSink):
    name = "broken"

    def epoch(self, record: EpochRecord) -> None:
        raise OSError("No space left on device")


def test_a_failing_sink_is_dropped_with_one_warning_and_the_others_go_on(
    ops: TrainOps, caplog: pytest.LogCaptureFixture
) -> None:
    good, broken = RecordingSink(), BrokenSink()
    with (
        caplog.at_level(logging.WARNING, logger="trainops.callbacks"),
        TrainingCallbacks(ops, sinks=[broken, good]) as tracker,
    ):
        for epoch in range(3):
            tracker.on_epoch_end(epoch, {"val_loss": 1.0})
    assert good.calls == [
        ("begin", tracker.operation_id),
        ("epoch", 0),
        ("epoch", 1),
        ("epoch", 2),
        ("end", OperationStatus.COMPLETED),
    ]
    assert broken.calls == [("begin", tracker.operation_id)]  # switched off after its failure
    warnings = trainops_warnings(caplog)
    assert warnings == [
        "trainops: reporting to broken failed in epoch (OSError: No space left on device); training goes on without it"
    ]
    assert tracker.operation_id is not None
    assert ops.get_operation(tracker.operation_id).status is OperationStatus.COMPLETED


def test_one_instance_reports_several_trainings_in_turn(ops: TrainOps) -> None:
    tracker = TrainingCallbacks(ops)
    ids = []
    for _ in range(2):
        tracker.on_train_begin()
        tracker.on_epoch_end(0, {"val_loss": 1.0})
        tracker.on_train_end()
        ids.append(tracker.operation_id)
    assert ids[0] != ids[1]
    assert [ops.get_operation(str(op)).status for op in ids] == [OperationStatus.COMPLETED] * 2


def test_the_console_shows_one_line_per_epoch(ops: TrainOps, capsys: pytest.CaptureFixture[str]) -> None:
    with TrainingCallbacks(ops, console=True, total_epochs=2) as tracker:
        tracker.on_epoch_end(0, {"eval_loss": 0.5, "f1": 0.25})
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"trainops: training as {tracker.operation_id} for 2 epochs"
    assert err[1] == "epoch 0  val_loss 0.5  f1 0.25"
    assert err[-1] == "trainops: training completed"


def test_system_metrics_join_every_epoch(ops: TrainOps) -> None:
    with TrainingCallbacks(ops, system_metrics=True) as tracker:
        for epoch in range(2):
            sum(i * i for i in range(200_000))  # some CPU work to measure
            tracker.on_epoch_end(epoch, {"val_loss": 1.0})
    assert tracker.operation_id is not None
    for record in ops.get_metrics(tracker.operation_id).metrics.epochs:
        assert {"cpu_percent", "system_cpu_percent", "memory_rss_mb", "system_memory_percent"} <= set(record.metrics)
        assert record.metrics["memory_rss_mb"] > 10
        assert 0 <= record.metrics["system_memory_percent"] <= 100


def test_system_metrics_without_psutil_say_which_extra_and_training_goes_on(
    ops: TrainOps, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "psutil", None)  # as if it were not installed
    with (
        caplog.at_level(logging.WARNING, logger="trainops.callbacks"),
        TrainingCallbacks(ops, system_metrics=True) as tracker,
    ):
        tracker.on_epoch_end(0, {"val_loss": 1.0})
    assert tracker.operation_id is not None
    assert ops.get_metrics(tracker.operation_id).metrics.epochs[0].metrics == {}
    assert trainops_warnings(caplog) == [
        "trainops: no system metrics: system metrics need psutil, which is not installed here; install it with: "
        "pip install 'trainops[system]'"
    ]


def test_batches_form_the_step_series_and_epochs_carry_the_global_step(ops: TrainOps) -> None:
    with TrainingCallbacks(ops, total_epochs=2) as tracker:
        for epoch in range(2):
            tracker.on_epoch_begin(epoch)
            for batch in range(5):
                tracker.on_batch_end(batch, {"loss": 1.0 / (epoch * 5 + batch + 1), "lr": 1e-3})
            tracker.on_epoch_end(epoch, {"val_loss": 0.5, "step": (epoch + 1) * 5})
    assert tracker.operation_id is not None
    series = ops.get_steps(tracker.operation_id)
    assert [point.step for point in series.points] == list(range(1, 11))
    assert [point.epoch for point in series.points] == [0] * 5 + [1] * 5
    assert series.points[-1].metrics == {"train_loss": 0.1, "learning_rate": 1e-3}
    epochs = ops.get_metrics(tracker.operation_id).metrics.epochs
    assert [(record.epoch, record.step) for record in epochs] == [(0, 5), (1, 10)]
    assert epochs[0].metrics == {}  # the framework's "step" became the record's step, not a custom metric


def test_progress_counts_epochs_begun_whatever_the_frameworks_numbering(ops: TrainOps) -> None:
    with TrainingCallbacks(ops, total_epochs=5) as tracker:
        tracker.on_epoch_begin(1)  # Ultralytics numbers its epochs from 1
        tracker.on_batch_end(0, {"loss": 1.0}, step=1)
        assert tracker.run is not None and tracker.operation_id is not None
        deadline = time.monotonic() + 5  # progress goes with the next background send
        while (progress := ops.get_operation(tracker.operation_id).progress).message is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert progress.message.startswith("Epoch 1/5"), progress.message


def test_a_number_too_large_for_a_float_is_skipped_not_raised(ops: TrainOps, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="trainops.callbacks"), TrainingCallbacks(ops) as tracker:
        tracker.on_epoch_end(0, {"val_loss": 0.5, "samples_seen": 10**400})
    assert tracker.operation_id is not None
    record = ops.get_metrics(tracker.operation_id).metrics.epochs[0]
    assert (record.val_loss, record.metrics) == (0.5, {})
    assert ["samples_seen skipped" in message for message in trainops_warnings(caplog)] == [True]


def test_ctrl_c_ends_the_run_cancelled_saying_so(ops: TrainOps) -> None:
    """A person stopping the loop is a cancel, as `trainops train` records it, not a failure named
    KeyboardInterrupt."""
    sink = RecordingSink()
    tracker = TrainingCallbacks(ops, sinks=[sink])

    def train() -> None:
        with tracker:
            tracker.on_epoch_end(0, {"val_loss": 1.0})
            raise KeyboardInterrupt  # Ctrl-C

    with pytest.raises(KeyboardInterrupt):
        train()

    assert tracker.operation_id is not None
    operation = ops.get_operation(tracker.operation_id)
    assert (operation.status, operation.error) == (OperationStatus.CANCELLED, None)
    assert operation.cancel_request is not None
    assert (operation.cancel_request.reason, operation.cancel_request.requested_by) == (INTERRUPTED, "user")
    assert operation.epochs_completed == 1
    assert sink.calls[-1] == ("end", OperationStatus.CANCELLED)


def test_a_metric_named_like_a_standard_field_is_skipped_not_the_epoch(
    ops: TrainOps, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="trainops.callbacks"), TrainingCallbacks(ops) as tracker:
        for epoch in range(2):
            tracker.on_epoch_end(epoch, {"val_loss": 0.5, "timestamp": 1.7e9, "metrics": 3, "f1": 0.8})
    assert tracker.operation_id is not None
    epochs = ops.get_metrics(tracker.operation_id).metrics.epochs
    assert [(record.epoch, record.val_loss, record.metrics) for record in epochs] == [
        (0, 0.5, {"f1": 0.8}),
        (1, 0.5, {"f1": 0.8}),
    ]
    assert trainops_warnings(caplog) == [
        "trainops: timestamp, metrics skipped: the name of a standard field, not of a metric (rename it)"
    ]


def test_a_task_trainops_does_not_know_is_refused_before_training() -> None:
    with pytest.raises(ValueError, match=r"task 'classification' is not one trainops knows; use one of: image_"):
        TrainingCallbacks(task="classification")


class Hanging(httpx.BaseTransport):
    """A real connection to the server until :attr:`hung` is set; then each request is taken and never answered
    within the client's timeout (a stuck server, a proxy holding the connection)."""

    def __init__(self, timeout: float) -> None:
        self.inner = httpx.HTTPTransport()
        self.timeout = timeout
        self.hung = threading.Event()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if self.hung.is_set():
            time.sleep(self.timeout)
            raise httpx.ReadTimeout("timed out", request=request)
        return self.inner.handle_request(request)


def test_a_server_that_hangs_mid_run_holds_no_epoch_past_a_bounded_wait(settings: Settings) -> None:
    """Asking the diagnosis every epoch (stop_on_recommendation) waits at most CONSULT_WAIT for the epoch to be
    stored, then not at all once the sender knows the server is stuck; the end waits flush_timeout, then keeps
    the rest on disk. (Before: a minute per epoch, and two minutes at the end.)"""
    transport = Hanging(timeout=1.0)
    with LiveServer(settings) as server:
        ops = HttpTrainOps(server.url, transport=transport, timeout=1.0)
        tracker = TrainingCallbacks(ops, total_epochs=40, stop_on_recommendation=True, flush_timeout=2.0)
        hooks = []
        with tracker:
            for epoch in range(12):
                if epoch == 4:
                    transport.hung.set()
                started = time.monotonic()
                tracker.on_epoch_end(epoch, {"val_loss": 1.0 / (epoch + 1)})
                tracker.should_stop()
                hooks.append(time.monotonic() - started)
                time.sleep(0.2)
            ending = time.monotonic()
        ended = time.monotonic() - ending
    assert max(hooks[:4]) < 1.0  # a server that answers: the diagnosis is read at once
    assert max(hooks) < CONSULT_WAIT + 1.5, hooks
    assert sum(hooks[4:]) < CONSULT_WAIT + 1.5, hooks  # after the first wait the stuck server costs no epoch
    assert ended < 2.0 + 1.0 + 2.0, ended  # flush_timeout, one hung attempt at the end, some slack
    assert tracker.run is not None and tracker.run.unsent is not None  # the rest is kept for `trainops sync`
    assert tracker.run.unsent.epochs >= 7


def test_two_names_that_clean_up_alike_keep_one_and_say_so(ops: TrainOps, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="trainops.callbacks"), TrainingCallbacks(ops) as tracker:
        tracker.on_epoch_end(0, {"val_loss": 0.5, "my_metric": 2.0, "my metric": 1.0, "epoch": 0})
    assert tracker.operation_id is not None
    assert ops.get_metrics(tracker.operation_id).metrics.epochs[0].metrics == {"my_metric": 2.0}
    assert trainops_warnings(caplog) == [
        "trainops: my metric skipped: another metric of this epoch has the same name once cleaned up (letters, "
        "digits, '_'); rename one of them"
    ]
