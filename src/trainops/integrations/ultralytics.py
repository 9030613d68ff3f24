"""Ultralytics YOLO: every epoch of ``model.train`` reported to trainops live, a stop that ends the fit, and the
import of a finished run's ``results.csv``.

>>> from ultralytics import YOLO
>>> from trainops.integrations.ultralytics import attach, import_results
>>> model = YOLO("yolo11n.yaml")                        # doctest: +SKIP
>>> tracker = attach(model)                             # doctest: +SKIP
>>> model.train(data="data.yaml", epochs=50)            # doctest: +SKIP
>>> tracker.operation_id, tracker.best_epoch            # doctest: +SKIP
('op_training_20250610_123456_ab12cd34', 37)
>>> import_results("runs/detect/train")                 # doctest: +SKIP  (a run trained without trainops)
'op_training_20250610_130000_0f1e2d3c'

**Epoch numbers are YOLO's own**: 1 for the first epoch, as its console and ``results.csv`` count, so a live run
and the import of its ``results.csv`` hold the same epochs under the same numbers.

What a live run reports, at each epoch's end (Ultralytics' ``on_fit_epoch_end``): the epoch's mean training
losses (``train/box_loss`` ...), the validation metrics when validation ran in that epoch (``metrics/mAP50(B)``,
``val/box_loss`` ...; with ``val=False`` the epochs without validation carry none, where ``results.csv`` repeats
the last ones), the learning rate of each parameter group (``lr/pg0`` ...) and the epoch's duration. Names are
trainops' canonical ones (``mAP50``, ``train_box_loss``, ``learning_rate``); the originals are kept in the result's
``metric_aliases``. Each batch's losses join the run's per-step series (every ``log_every_n_steps``-th batch's,
at YOLO's count of batches) and move its progress. The validation of ``best.pt`` that Ultralytics
runs after the last epoch is the run's ``final_metrics``, not an epoch. The task comes from the model
(``detect`` is ``object_detection``, ``segment`` ``instance_segmentation``, ``classify`` ``image_classification``,
``pose`` ``pose_estimation``), the config from the trainer's arguments, the planned epochs from ``epochs``.

Stopping: when a person, an agent or the diagnosis asks the run to stop, ``trainer.stop`` is set at the epoch's
end, so Ultralytics ends the fit after that epoch, as its own early stopping does (then validates ``best.pt``
and saves as usual), and the operation ends ``cancelled``.

The run begins once ``train()`` has set up the model, the data loaders and the optimizer (Ultralytics'
``on_pretrain_routine_end``). A fit that raises from there, or while that set-up ran, ends the operation ``failed``
with the exception's message. A fit whose trainer cannot be built (a ``data=`` that does not exist, a data set
that fails Ultralytics' check) raises before ``train()`` and creates no operation. Multi-GPU training
(``device="0,1"``) runs in worker processes Ultralytics starts itself, which do not receive callbacks added to
the model: report such a run with :func:`import_results` when it ends.

This module imports nothing of Ultralytics when it loads: :func:`import_results` works wherever trainops does
(to import a ``results.csv`` copied off a GPU machine, say).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Unpack

from trainops.callbacks import TrainingCallbacks
from trainops.client.base import TrainOps
from trainops.core.metric_definitions import TaskType
from trainops.integrations.base import FrameworkCallback, TrainingOptions
from trainops.integrations.history import HistoryRow, import_history, locate, parse_row, read_args, read_table

if TYPE_CHECKING:
    from ultralytics.engine.model import Model
    from ultralytics.engine.trainer import BaseTrainer

TASKS: dict[str, TaskType] = {
    "detect": TaskType.OBJECT_DETECTION,
    "obb": TaskType.OBJECT_DETECTION,  # oriented boxes: judged by box mAP as well
    "segment": TaskType.INSTANCE_SEGMENTATION,
    "semantic": TaskType.SEMANTIC_SEGMENTATION,
    "classify": TaskType.IMAGE_CLASSIFICATION,
    "pose": TaskType.POSE_ESTIMATION,
}
"""trainops' task for each Ultralytics task (``depth`` has none: such a run records no task)."""

RESULTS_FILE = "results.csv"


def task_of(ultralytics_task: str | None) -> TaskType | None:
    """trainops' task for an Ultralytics task name (``"detect"`` is :attr:`TaskType.OBJECT_DETECTION`)."""
    return TASKS.get(ultralytics_task or "")


def attach(model: Model, ops: TrainOps | None = None, **options: Unpack[TrainingOptions]) -> TrainingCallbacks:
    """Report every ``model.train(...)`` of this model to trainops, and let trainops stop it.

    Registers callbacks on the model (``model.add_callback``); each later fit becomes one operation.

    Args:
        model: An Ultralytics model (``YOLO(...)``, ``RTDETR(...)``, ...).
        ops: Where to report; ``trainops.connect()`` (``TRAINOPS_URL``, else the local database) by default.
        **options: The keyword arguments of :class:`~trainops.callbacks.TrainingCallbacks`. ``task`` defaults to
            the model's, ``total_epochs`` to ``epochs``, and ``config`` is merged over the trainer's arguments.

    Returns:
        The :class:`~trainops.callbacks.TrainingCallbacks` the fits report through: its ``operation_id`` names
        the last fit's operation, its ``best_epoch`` the best epoch once that fit ended.

    Raises:
        ValueError: trainops is already attached to this model (each fit would be reported twice).
    """
    if any(isinstance(getattr(hook, "__self__", None), _Hooks) for hook in model.callbacks.get("on_fit_epoch_end", [])):
        raise ValueError(
            "trainops is already attached to this model: attach once and keep the tracker it returned "
            "(each later model.train is a new operation)"
        )
    hooks = _Hooks(ops, **options)
    for event, hook in hooks.events().items():
        model.add_callback(event, hook)
    return hooks.tracker


def import_results(path: str | Path, ops: TrainOps | None = None, **options: Unpack[TrainingOptions]) -> str:
    """Import a finished Ultralytics run into a new completed operation; returns its id.

    Epochs keep YOLO's numbers (the first is 1), metric names are mapped as in a live run (``metrics/mAP50(B)`` is
    ``mAP50``, the original kept in ``metric_aliases``), and the ``time`` column (seconds since the start) becomes
    each epoch's duration. The run's ``args.yaml``, when it lies beside the file, gives the task, the planned
    epochs and the config.

    Args:
        path: The run's ``results.csv``, or its directory (``runs/detect/train``).
        ops: Where to import; ``trainops.connect()`` by default.
        **options: The keyword arguments of :class:`~trainops.callbacks.TrainingCallbacks`; they win over what
            ``args.yaml`` says.

    Raises:
        FileNotFoundError: there is no ``results.csv`` there.
        InvalidInputError: the file is not an Ultralytics ``results.csv`` (no ``epoch`` column, a cell that is
            not a number); the message names the line and the column.
        TrainOpsError: trainops did not take the operation or an epoch.
    """
    file = locate(path, RESULTS_FILE)
    rows: list[HistoryRow] = []
    started = 0.0
    for line, row in read_table(file):
        parsed = parse_row(file, line, row, skip=frozenset({"time"}))
        elapsed = _number(row.get("time"))  # seconds since the fit started
        if elapsed is not None:
            if elapsed < started:  # a resumed fit counts again from its own start
                started = 0.0
            parsed.metrics["duration"] = elapsed - started
            started = elapsed
        rows.append(parsed)
    args = read_args(file.parent)
    chosen: TrainingOptions = {**_defaults(args), **options}
    chosen["config"] = {**args, **(options.get("config") or {})}
    return import_history(rows, file, ops, **chosen)


class _Hooks(FrameworkCallback):
    """The callbacks :func:`attach` registers: Ultralytics calls each with its trainer."""

    def __init__(self, ops: TrainOps | None = None, **options: Unpack[TrainingOptions]) -> None:
        super().__init__(ops, **options)
        self._forget_fit()

    def _forget_fit(self) -> None:
        self._begun = False  # this fit's run began: teardown never begins a second one after it ended
        self._in_epoch = False  # between an epoch's start and its report
        self._metrics_before: object = None  # trainer.metrics as the epoch began: validation replaces it
        self._batch = 0
        self._final: dict[str, Any] | None = None

    def events(self) -> dict[str, Any]:
        """Ultralytics' event names and the hook for each."""
        return {
            "on_pretrain_routine_start": self.on_pretrain_routine_start,
            "on_pretrain_routine_end": self.on_pretrain_routine_end,
            "on_train_epoch_start": self.on_train_epoch_start,
            "on_train_batch_end": self.on_train_batch_end,
            "on_fit_epoch_end": self.on_fit_epoch_end,
            "on_train_end": self.on_train_end,
            "teardown": self.teardown,
        }

    def on_pretrain_routine_start(self, trainer: BaseTrainer) -> None:
        """A new fit: forget the last one. No run begins yet: Ultralytics calls this while it builds the trainer,
        and a failure there (a ``data=`` that does not exist) never reaches ``teardown``, so a run begun here
        would be left ``running``."""
        self._forget_fit()

    def on_pretrain_routine_end(self, trainer: BaseTrainer) -> None:
        """Begin the run: ``train()`` has set up the data, the model and the epochs, and its ``finally`` calls
        ``teardown``, which ends the run whatever happens next."""
        self._begin_fit(trainer)

    def _begin_fit(self, trainer: BaseTrainer) -> None:
        self._begun = True
        if self.options.get("task") is None:
            self.tracker.task = task_of(getattr(trainer.args, "task", None))
        self._begin(rank=None, total_epochs=trainer.epochs, config=dict(vars(trainer.args)))

    def on_train_epoch_start(self, trainer: BaseTrainer) -> None:
        self.tracker.on_epoch_begin(trainer.epoch + 1)  # YOLO's number, as its console and results.csv show
        self._in_epoch = True
        self._metrics_before = trainer.metrics
        self._batch = 0

    def on_train_batch_end(self, trainer: BaseTrainer) -> None:
        """The batch's losses (tensors: only the batches the step series records are converted), at YOLO's own
        count of batches since the first epoch."""
        losses = trainer.loss_items
        metrics = {f"train/{name}": value for name, value in losses.items()} if losses else None
        step = trainer.epoch * len(trainer.train_loader) + self._batch + 1
        self.tracker.on_batch_end(self._batch, metrics, step=step)
        self._batch += 1

    def on_fit_epoch_end(self, trainer: BaseTrainer) -> None:
        """Report the epoch (trained and validated by now), then end the fit after it if a stop was asked."""
        if not self._in_epoch:
            # Ultralytics calls this once more after the last epoch, for its validation of best.pt
            self._final = dict(trainer.metrics or {})
            return
        self._in_epoch = False
        metrics: dict[str, Any] = {}
        if trainer.tloss:
            metrics.update(trainer.label_loss_items(trainer.tloss, prefix="train"))
        if trainer.metrics and trainer.metrics is not self._metrics_before:  # validation ran in this epoch
            metrics.update(trainer.metrics)
        metrics.update(getattr(trainer, "lr", None) or {})
        if trainer.epoch_time is not None:
            metrics["duration"] = trainer.epoch_time  # training, validation and saving: the whole epoch
        self.tracker.on_epoch_end(trainer.epoch + 1, metrics)
        if self._stop_requested() is not None:
            trainer.stop = True  # the loop ends after this epoch, as Ultralytics' own early stopping does

    def on_train_end(self, trainer: BaseTrainer) -> None:
        """End the run ``completed`` (``cancelled`` after a stop), with best.pt's validation as final metrics."""
        self.tracker.on_train_end(self._final)

    def teardown(self, trainer: BaseTrainer) -> None:
        """Ultralytics' last word on every fit, from ``train()``'s ``finally``: a fit that raised ends the run
        ``failed``. One that raised while ``train()`` set it up, before the run began, begins it now to record
        the failure."""
        error = sys.exc_info()[1]  # the exception on its way out of model.train, if any
        if error is not None and not self._begun:
            self._begin_fit(trainer)
        self.tracker.__exit__(type(error) if error else None, error, error.__traceback__ if error else None)


def _defaults(args: dict[str, Any]) -> TrainingOptions:
    """The task and the planned epochs a run's ``args.yaml`` gives."""
    defaults: TrainingOptions = {}
    task = task_of(args.get("task") if isinstance(args.get("task"), str) else None)
    if task is not None:
        defaults["task"] = task
    epochs = args.get("epochs")
    if isinstance(epochs, int) and not isinstance(epochs, bool) and epochs > 0:
        defaults["total_epochs"] = epochs
    return defaults


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
