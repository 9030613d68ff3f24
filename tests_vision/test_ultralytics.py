"""Ultralytics: real YOLO fits (a model built from its yaml, no weights, on a synthetic data set, on the CPU) land
every epoch in trainops, a stop asked through trainops ends them, and a finished run's results.csv imports to the
same history."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import pytest
from ultralytics import YOLO
from ultralytics.engine.trainer import BaseTrainer

from tests_vision.datasets import classification_dataset, detection_dataset
from trainops.callbacks import TrainingCallbacks
from trainops.client import TrainOps
from trainops.core.metric_definitions import TaskType
from trainops.core.metric_names import normalize_metrics
from trainops.core.operation import OperationStatus
from trainops.errors import InvalidInputError
from trainops.integrations.ultralytics import attach, import_results, task_of

FIT = {"imgsz": 64, "batch": 4, "device": "cpu", "workers": 0, "plots": False, "amp": False, "seed": 0}
"""A fit that needs nothing from the network (no fonts for plots, no weights for the AMP check) and takes seconds."""


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return detection_dataset(tmp_path / "boxes")


def fit(model: YOLO, data: Path, directory: Path, epochs: int) -> Path:
    """Train; returns the run's directory (where results.csv is)."""
    model.train(data=str(data), epochs=epochs, project=str(directory), name="run", exist_ok=True, **FIT)
    assert model.trainer is not None
    return Path(model.trainer.save_dir)


def results(run: Path) -> dict[int, dict[str, float]]:
    """results.csv as Ultralytics wrote it: YOLO's epoch number -> every other column."""
    with (run / "results.csv").open(newline="") as file:
        return {
            int(row["epoch"]): {name: float(value) for name, value in row.items() if name not in {"epoch", "time"}}
            for row in csv.DictReader(file)
        }


def assert_history_is(ops: TrainOps, operation_id: str, expected: dict[int, dict[str, float]]) -> None:
    """The operation holds exactly these epochs, every value under its canonical name (to results.csv's 6
    significant digits)."""
    epochs = ops.get_metrics(operation_id).metrics.epochs
    assert [record.epoch for record in epochs] == list(expected)
    for record in epochs:
        values, _ = normalize_metrics(expected[record.epoch])
        assert {name: record.value(name) for name in values} == pytest.approx(values, rel=1e-5, abs=1e-6)


class Agent:
    """An agent that decides, at the end of YOLO's epoch ``at``, that the run should stop. It then waits a second,
    the time the run's reporter needs to hear of it (epochs are sent in the background)."""

    def __init__(self, ops: TrainOps, at: int) -> None:
        self.ops, self.at = ops, at
        self.tracker: TrainingCallbacks | None = None
        self.epochs_seen: list[int] = []

    def __call__(self, trainer: BaseTrainer) -> None:
        epoch = trainer.epoch + 1
        self.epochs_seen.append(epoch)
        if epoch == self.at:
            assert self.tracker is not None and self.tracker.operation_id is not None
            self.ops.cancel_operation(self.tracker.operation_id, "mAP50 has plateaued", requested_by="agent")
            time.sleep(1.2)


def test_a_fit_lands_every_epoch_under_canonical_names(local_ops: TrainOps, data: Path, tmp_path: Path) -> None:
    model = YOLO("yolov8n.yaml")
    tracker = attach(model, local_ops)
    run = fit(model, data, tmp_path / "runs", epochs=2)

    assert tracker.operation_id is not None
    operation = local_ops.get_operation(tracker.operation_id)
    assert operation.status is OperationStatus.COMPLETED
    assert operation.metadata.task is TaskType.OBJECT_DETECTION
    assert operation.total_epochs == 2
    parameters = operation.metadata.parameters
    assert (parameters["imgsz"], parameters["epochs"], parameters["model"]) == (64, 2, "yolov8n.yaml")

    written = results(run)
    assert list(written) == [1, 2]  # YOLO's numbers, kept
    assert_history_is(local_ops, tracker.operation_id, written)
    epochs = local_ops.get_metrics(tracker.operation_id).metrics.epochs
    for record in epochs:
        assert {"mAP50", "mAP50-95", "precision", "recall", "train_box_loss", "val_box_loss"} <= set(record.metrics)
        assert record.learning_rate is not None and record.duration is not None and record.duration > 0
    assert [record.step for record in epochs] == [2, 4]  # 8 images in batches of 4: two steps an epoch
    steps = local_ops.get_steps(tracker.operation_id).points  # each batch's losses, on the same epoch numbers
    assert [(point.step, point.epoch) for point in steps] == [(1, 1), (2, 1), (3, 2), (4, 2)]
    assert all({"train_box_loss", "train_cls_loss", "train_dfl_loss"} <= set(point.metrics) for point in steps)

    assert operation.result is not None
    aliases = operation.result["metric_aliases"]
    assert aliases["mAP50"] == "metrics/mAP50(B)" and aliases["mAP50-95"] == "metrics/mAP50-95(B)"
    assert aliases["train_box_loss"] == "train/box_loss" and aliases["learning_rate"] == "lr/pg0"
    # Ultralytics' validation of best.pt after the last epoch is the final result, not a third epoch
    assert set(operation.result["final_metrics"]) >= {"mAP50", "mAP50-95", "precision", "recall"}
    assert tracker.best_epoch in {1, 2}


def test_the_results_csv_of_a_fit_imports_to_the_same_history(local_ops: TrainOps, data: Path, tmp_path: Path) -> None:
    model = YOLO("yolov8n.yaml")
    tracker = attach(model, local_ops)
    run = fit(model, data, tmp_path / "runs", epochs=2)
    assert tracker.operation_id is not None

    imported = import_results(run, local_ops)  # the run's directory: results.csv and args.yaml

    assert imported != tracker.operation_id
    assert_history_is(local_ops, imported, results(run))
    live, copy = (local_ops.get_metrics(op).metrics.epochs for op in (tracker.operation_id, imported))
    assert [record.metrics.keys() for record in copy] == [record.metrics.keys() for record in live]
    assert all(record.duration is not None and record.duration > 0 for record in copy)  # from the time column
    operation = local_ops.get_operation(imported)
    assert operation.status is OperationStatus.COMPLETED
    assert operation.metadata.task is TaskType.OBJECT_DETECTION and operation.total_epochs == 2  # from args.yaml
    assert operation.metadata.model_extra is not None
    assert operation.metadata.model_extra["imported_from"] == str(run / "results.csv")
    assert operation.result is not None and operation.result["metric_aliases"]["mAP50"] == "metrics/mAP50(B)"


@pytest.mark.parametrize("transport", ["local", "http"])
def test_a_stop_asked_through_trainops_ends_the_fit_after_the_epoch(
    transport: str, data: Path, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    ops: TrainOps = request.getfixturevalue(f"{transport}_ops")
    model = YOLO("yolov8n.yaml")
    agent = Agent(ops, at=2)
    model.add_callback("on_train_epoch_end", agent)
    agent.tracker = attach(model, ops)
    run = fit(model, data, tmp_path / "runs", epochs=5)

    assert agent.epochs_seen == [1, 2]  # the epoch the stop was asked in was the last
    assert list(results(run)) == [1, 2]
    operation_id = agent.tracker.operation_id
    assert operation_id is not None
    operation = ops.get_operation(operation_id)
    assert operation.status is OperationStatus.CANCELLED
    assert operation.cancel_request is not None and operation.cancel_request.requested_by == "agent"
    metrics = ops.get_metrics(operation_id).metrics
    assert [record.epoch for record in metrics.epochs] == [1, 2]
    assert metrics.total_epochs_planned == 5
    assert metrics.best_epoch is not None and agent.tracker.best_epoch == metrics.best_epoch


def test_a_classification_fit_reports_its_accuracy_as_the_standard_fields(local_ops: TrainOps, tmp_path: Path) -> None:
    model = YOLO("yolov8n-cls.yaml")
    tracker = attach(model, local_ops)
    data = classification_dataset(tmp_path / "colours")
    model.train(data=str(data), epochs=2, project=str(tmp_path / "runs"), name="run", **{**FIT, "imgsz": 32})

    assert tracker.operation_id is not None
    operation = local_ops.get_operation(tracker.operation_id)
    assert operation.metadata.task is TaskType.IMAGE_CLASSIFICATION
    assert model.trainer is not None
    written = results(Path(model.trainer.save_dir))
    assert_history_is(local_ops, tracker.operation_id, written)
    for record in local_ops.get_metrics(tracker.operation_id).metrics.epochs:
        assert record.val_accuracy == pytest.approx(written[record.epoch]["metrics/accuracy_top1"])
        assert record.train_loss is not None and record.val_loss is not None
        assert "top5_accuracy" in record.metrics
    assert operation.result is not None
    assert {"val_accuracy": "metrics/accuracy_top1", "train_loss": "train/loss", "val_loss": "val/loss"}.items() <= (
        operation.result["metric_aliases"].items()
    )


def test_epochs_without_validation_carry_no_validation_metrics(local_ops: TrainOps, data: Path, tmp_path: Path) -> None:
    """With ``val=False`` Ultralytics validates the last epoch only; results.csv repeats zeros before it."""
    model = YOLO("yolov8n.yaml")
    tracker = attach(model, local_ops)
    model.train(data=str(data), epochs=2, project=str(tmp_path / "runs"), name="run", val=False, **FIT)

    assert tracker.operation_id is not None
    first, last = local_ops.get_metrics(tracker.operation_id).metrics.epochs
    assert "mAP50" not in first.metrics and "val_box_loss" not in first.metrics
    assert "train_box_loss" in first.metrics and first.learning_rate is not None
    assert {"mAP50", "val_box_loss"} <= set(last.metrics)


def test_a_fit_that_raises_fails_the_run_with_the_message(local_ops: TrainOps, data: Path, tmp_path: Path) -> None:
    def out_of_memory(trainer: BaseTrainer) -> None:
        if trainer.epoch == 1:
            raise RuntimeError("CUDA out of memory")

    model = YOLO("yolov8n.yaml")
    model.add_callback("on_train_epoch_start", out_of_memory)
    tracker = attach(model, local_ops)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        fit(model, data, tmp_path / "runs", epochs=3)

    assert tracker.operation_id is not None
    operation = local_ops.get_operation(tracker.operation_id)
    assert operation.status is OperationStatus.FAILED
    assert operation.error == "RuntimeError: CUDA out of memory"
    assert [record.epoch for record in local_ops.get_metrics(tracker.operation_id).metrics.epochs] == [1]


def test_a_trainer_that_cannot_be_built_leaves_no_operation(local_ops: TrainOps, data: Path, tmp_path: Path) -> None:
    """A wrong ``data=`` fails while Ultralytics builds the trainer, before ``train()`` and its ``teardown``: no run
    has begun, so nothing is left ``running``, and the next fit is its own operation under its own config."""
    model = YOLO("yolov8n.yaml")
    tracker = attach(model, local_ops)
    missing = tmp_path / "typo.yaml"
    with pytest.raises(RuntimeError, match=r"typo\.yaml.*does not exist"):
        fit(model, missing, tmp_path / "runs", epochs=1)

    assert tracker.operation_id is None
    assert local_ops.list_operations().total == 0

    fit(model, data, tmp_path / "runs", epochs=2)

    (operation,) = local_ops.list_operations().items
    assert operation.operation_id == tracker.operation_id
    assert operation.status is OperationStatus.COMPLETED
    assert operation.total_epochs == 2
    parameters = operation.metadata.parameters
    assert (parameters["data"], parameters["epochs"]) == (str(data), 2)
    assert [record.epoch for record in local_ops.get_metrics(operation.operation_id).metrics.epochs] == [1, 2]


def refuse_to_set_up(trainer: BaseTrainer) -> None:
    raise RuntimeError("the optimizer could not be built")


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        # a callback that Ultralytics runs at the end of its set-up, before trainops' own
        ({"callback": refuse_to_set_up}, "RuntimeError: the optimizer could not be built"),
        # Ultralytics' own refusal, once the model is built: every layer frozen leaves nothing to train
        ({"freeze": 30}, "RuntimeError: 'freeze=30' froze the entire model with no trainable parameters left"),
    ],
    ids=["callback", "freeze"],
)
def test_a_fit_that_fails_while_being_set_up_fails_its_run(
    local_ops: TrainOps, data: Path, tmp_path: Path, setup: dict[str, object], message: str
) -> None:
    """A failure inside ``train()`` before the first epoch (the model, the data loaders, the optimizer being set
    up) is recorded: the run begins then and ends ``failed`` with the message."""
    model = YOLO("yolov8n.yaml")
    if "callback" in setup:
        model.add_callback("on_pretrain_routine_end", setup["callback"])
    tracker = attach(model, local_ops)
    overrides = {name: value for name, value in setup.items() if name != "callback"}
    with pytest.raises(RuntimeError):
        model.train(data=str(data), epochs=2, project=str(tmp_path / "runs"), name="run", **FIT, **overrides)

    (operation,) = local_ops.list_operations().items
    assert operation.operation_id == tracker.operation_id
    assert operation.status is OperationStatus.FAILED
    assert operation.error is not None and operation.error.startswith(message)
    assert operation.metadata.task is TaskType.OBJECT_DETECTION and operation.total_epochs == 2
    assert operation.metadata.parameters["data"] == str(data)
    assert local_ops.get_metrics(operation.operation_id).metrics.epochs == []


def test_an_error_after_the_run_ended_begins_no_other(local_ops: TrainOps, data: Path, tmp_path: Path) -> None:
    """A callback of the user's that raises after the fit ended (its ``on_train_end``) leaves the ended run as it
    is: it is not a fit that failed before its run began."""

    def upload(trainer: BaseTrainer) -> None:
        raise ConnectionError("the model registry is away")

    model = YOLO("yolov8n.yaml")
    tracker = attach(model, local_ops)
    model.add_callback("on_train_end", upload)
    with pytest.raises(ConnectionError, match="registry is away"):
        fit(model, data, tmp_path / "runs", epochs=1)

    (operation,) = local_ops.list_operations().items
    assert operation.operation_id == tracker.operation_id
    assert operation.status is OperationStatus.COMPLETED


def test_attaching_twice_is_refused(local_ops: TrainOps) -> None:
    model = YOLO("yolov8n.yaml")
    attach(model, local_ops)
    with pytest.raises(ValueError, match="already attached to this model: attach once and keep the tracker"):
        attach(model, local_ops)


@pytest.mark.parametrize(
    ("ultralytics_task", "task"),
    [
        ("detect", TaskType.OBJECT_DETECTION),
        ("obb", TaskType.OBJECT_DETECTION),
        ("segment", TaskType.INSTANCE_SEGMENTATION),
        ("semantic", TaskType.SEMANTIC_SEGMENTATION),
        ("classify", TaskType.IMAGE_CLASSIFICATION),
        ("pose", TaskType.POSE_ESTIMATION),
        ("depth", None),
        (None, None),
    ],
)
def test_each_ultralytics_task_has_its_trainops_task(ultralytics_task: str | None, task: TaskType | None) -> None:
    assert task_of(ultralytics_task) is task


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("content", "error", "message"),
    [
        ("time,metrics/mAP50(B)\n1.0,0.5\n", InvalidInputError, r"no 'epoch' column \(columns: time, metrics/mAP50"),
        ("epoch,time,metrics/mAP50(B)\n", InvalidInputError, "holds no epoch"),
        ("epoch,time,metrics/mAP50(B)\n1,2.0,0.5\n2,4.0,high\n", InvalidInputError, r"line 3: metrics/mAP50\(B\)"),
        ("epoch,time\none,2.0\n", InvalidInputError, "line 2: epoch 'one' is not a whole number"),
        ("epoch,time,metrics/mAP50(B)\n1,2.0\n", InvalidInputError, r"line 2 has 2 fields where the header names 3"),
        ("epoch,time\n1,2.0\n\n2,4.0,0.5\n", InvalidInputError, r"results\.csv, line 4 has 3 fields where the header"),
        ("epoch,time,metrics/mAP50(B)\n1,2.0,0.5\n\n2,4.0,high\n", InvalidInputError, r"line 4: metrics/mAP50\(B\)"),
    ],
)
def test_a_file_that_is_not_a_results_csv_is_refused_with_where(
    local_ops: TrainOps, tmp_path: Path, content: str, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        import_results(write(tmp_path / "results.csv", content), local_ops)
    assert local_ops.list_operations().total == 0  # nothing half-imported


def test_a_missing_results_csv_says_what_was_looked_for(local_ops: TrainOps, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"is a directory without results.csv; pass the file or the run's"):
        import_results(tmp_path, local_ops)


def test_an_older_padded_results_csv_imports_with_its_durations(local_ops: TrainOps, tmp_path: Path) -> None:
    """Ultralytics 8.0 padded its columns with spaces; a resumed run's time starts again from zero."""
    header = "                  epoch,         train/box_loss,       metrics/mAP50(B),                   time\n"
    rows = ["                      1,                 1.5,                 0.25,                 10.0\n"]
    rows.append("                      2,                 1.2,                 0.40,                 25.0\n")
    rows.append("                      3,                 1.1,                 0.45,                  9.0\n")
    imported = import_results(write(tmp_path / "results.csv", header + "".join(rows)), local_ops)

    epochs = local_ops.get_metrics(imported).metrics.epochs
    assert [(record.epoch, record.metrics["mAP50"], record.duration) for record in epochs] == [
        (1, 0.25, 10.0),
        (2, 0.40, 15.0),
        (3, 0.45, 9.0),  # resumed: counted from the restart
    ]
    assert local_ops.get_operation(imported).metadata.task is None  # no args.yaml: the task is not known
