"""Lightning: a ``Callback`` that reports every epoch of ``trainer.fit`` to trainops, and stops it on request.

>>> from trainops.integrations.lightning import TrainOpsCallback
>>> trainer = lightning.Trainer(max_epochs=20, callbacks=[TrainOpsCallback(task="image_classification")])
>>> trainer.fit(model, train_loader, val_loader)  # doctest: +SKIP

What is reported: the hyperparameters (``pl_module.hparams``, ``max_epochs``), the loss of each batch (from what
``training_step`` returned), and at each epoch's end what the module logged (``trainer.callback_metrics``):
metrics logged with ``on_epoch=True`` in ``training_step``, the validation metrics when validation ran in that
epoch (never the sanity check's), what other callbacks logged for the epoch (``LearningRateMonitor``'s rate,
wherever it stands in the list), and ``trainer.global_step``. Lightning's ``_step``/``_epoch`` twins of a
metric logged both ways are reported once, under the metric's name. The epoch's ``train_loss`` is the mean of
the losses ``training_step`` returned when the module logged its training loss per step only (Lightning's default
in ``training_step``, whose epoch value would be the last batch's) or not at all; another metric logged per step
only is reported as its last batch's value.

Stopping: when someone asks the run to stop, ``trainer.should_stop`` is set at the epoch's end, so the fit ends
after that epoch and the operation ends ``cancelled``. In a multi-process run only rank 0 reports and asks;
its decision reaches every rank through the strategy, as ``EarlyStopping``'s does.

Resuming: the operation id is saved in the checkpoint (``state_dict``). A fit resumed from it reports into that
operation while it is still open (its process was killed); an operation that already ended (completed, failed,
cancelled) accepts nothing more, so the resumed fit becomes a new operation whose metadata names it
(``resumed_from``).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any, Unpack

import torch

try:
    from lightning.pytorch import Callback, LightningModule, Trainer
except ImportError:  # the standalone package of Lightning before 2.0, still published
    from pytorch_lightning import Callback, LightningModule, Trainer  # type: ignore[assignment]

from trainops.callbacks import TrainingCallbacks
from trainops.client.base import TrainOps
from trainops.client.connect import connect
from trainops.core.metric_names import canonical_name
from trainops.integrations.base import FrameworkCallback, TrainingOptions

logger = logging.getLogger("trainops.integrations")

STATE_VERSION = 1
"""The version of :meth:`TrainOpsCallback.state_dict`'s layout."""

_BOOKKEEPING = frozenset({"global_step", "duration"})  # what an epoch's report holds beside its metrics


class TrainOpsCallback(FrameworkCallback, Callback):
    """Reports ``trainer.fit`` to trainops; a stop asked through trainops ends the fit after the current epoch.

    Args:
        ops: Where to report; ``trainops.connect()`` (``TRAINOPS_URL``, else the local database) by default.
        **options: The keyword arguments of :class:`~trainops.callbacks.TrainingCallbacks` (``task``,
            ``config``, ``mlflow``, ``stop_on_recommendation``, ...). ``rank`` defaults to
            ``trainer.global_rank``, ``total_epochs`` to ``max_epochs``, and ``config`` is merged over
            ``pl_module.hparams``.

    Epochs are numbered as Lightning numbers them (``trainer.current_epoch``, from 0).
    """

    def __init__(self, ops: TrainOps | None = None, **options: Unpack[TrainingOptions]) -> None:
        super().__init__(ops, **options)
        self._own_tracker = self.tracker  # a fit resumed from a checkpoint reports through another, for that fit
        self._resumed_from: str | None = None
        self._forget_epoch()

    _log_every = 1
    _batches = 0

    def _forget_epoch(self) -> None:
        self._epoch_started: float | None = None
        self._loss_sum: Any = None  # the epoch's returned losses, summed on their device (no sync per batch)
        self._loss_count = 0
        self._before: dict[str, _Seen] = {}  # callback_metrics as they stood at a point, to tell fresh values
        self._reported: tuple[int, dict[str, Any]] | None = None  # the last epoch sent, for late metrics

    # -- Lightning's hooks ----------------------------------------------------------------------------------

    def on_fit_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Begin the run: the module's hyperparameters and ``max_epochs`` as its config, its rank as rank."""
        self._forget_epoch()
        self._end_abandoned()  # the last fit's tracker, which may be a resumed fit's
        rank = self.options.get("rank")
        resumed, self._resumed_from = self._resumed_from, None
        if (
            resumed is not None
            and self.options.get("operation_id") is None
            and (trainer.global_rank if rank is None else rank) == 0
        ):
            self.tracker = self._resumed_tracker(resumed)
        else:
            self.tracker = self._own_tracker
        # The last epoch is closed by a callback of its own at the front of the list: another callback's
        # on_train_epoch_start may log the new epoch's values (LearningRateMonitor logs the learning rate there),
        # which would otherwise land on the last epoch. Every other hook keeps the order the user gave. A new
        # list: Lightning is iterating the old one right now (an attribute its connector sets, untyped).
        others = [
            callback
            for callback in getattr(trainer, "callbacks", [])
            if not (isinstance(callback, _EpochOpener) and callback.owner is self)
        ]
        trainer.callbacks = [_EpochOpener(self), *others]  # type: ignore[attr-defined]
        config: dict[str, Any] = dict(getattr(pl_module, "hparams", None) or {})
        max_epochs = trainer.max_epochs if trainer.max_epochs is not None and trainer.max_epochs > 0 else None
        if max_epochs is not None:
            config.setdefault("max_epochs", max_epochs)
        # The step series follows the Trainer's own logging rate unless told otherwise. This callback picks the
        # batches itself, so the other batches cost no read of the trainer's global step (a chain of properties).
        every = self.options.get("log_every_n_steps") or getattr(trainer, "log_every_n_steps", 1)
        self._log_every = max(int(every or 1), 1)
        self._batches = 0
        self.tracker.log_every_n_steps = 1
        self._begin(rank=trainer.global_rank, total_epochs=max_epochs, config=config)

    def _open_epoch(self, trainer: Trainer) -> None:
        """Send what was logged after the last epoch's report, then start timing this epoch (called by the
        :class:`_EpochOpener` at the front of the trainer's callbacks, before any other hears the epoch begin)."""
        self._report_late(trainer)
        self.tracker.on_epoch_begin(trainer.current_epoch)
        self._epoch_started = time.monotonic()
        self._loss_sum, self._loss_count = None, 0

    def on_train_batch_end(
        self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        """Progress, and every ``log_every_n_steps``-th batch's loss (from what ``training_step`` returned: a
        tensor, or a mapping with ``loss``) at the trainer's global step."""
        self._batches += 1
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        if isinstance(loss, torch.Tensor) and loss.numel() == 1:
            loss = loss.detach()
            self._loss_sum = loss if self._loss_sum is None else self._loss_sum + loss
            self._loss_count += 1
        if self._batches % self._log_every:
            self.tracker.on_batch_end(batch_idx)
            return
        self.tracker.on_batch_end(batch_idx, None if loss is None else {"loss": loss}, step=trainer.global_step)

    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Report the epoch (training and validation have both run by now), then stop the fit if asked."""
        epoch = trainer.current_epoch
        logged = trainer.callback_metrics
        duration = None if self._epoch_started is None else time.monotonic() - self._epoch_started
        metrics = {**self._with_epoch_loss(trainer, _epoch_metrics(_fresh(logged, self._before), logged))}
        metrics["global_step"] = trainer.global_step
        if duration is not None:
            metrics["duration"] = duration
        self.tracker.on_epoch_end(epoch, metrics)
        self._reported = (epoch, metrics)
        self._before = _seen(logged)
        stop = self._stop_requested() is not None
        # rank 0 alone asks trainops; every rank must stop together or the others wait for it forever
        if trainer.strategy.reduce_boolean_decision(stop, all=False):
            trainer.should_stop = True

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """End the run: ``completed``, or ``cancelled`` when it stopped on request; the last epoch's metrics are
        the final metrics."""
        self._report_late(trainer)
        last = self._reported[1] if self._reported is not None else {}
        self.tracker.on_train_end({name: value for name, value in last.items() if name not in _BOOKKEEPING})

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        """End the run ``failed`` with the exception's message (``cancelled`` for an interrupt after a stop)."""
        self.tracker.__exit__(type(exception), exception, exception.__traceback__)

    # -- checkpoints ----------------------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """The operation reported into, saved in Lightning's checkpoints so a resumed fit can continue it."""
        return {"version": STATE_VERSION, "operation_id": self.tracker.operation_id}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Remember the checkpoint's operation; the fit that resumes from it reports there (see the module)."""
        operation_id = state_dict.get("operation_id")
        self._resumed_from = operation_id if isinstance(operation_id, str) and operation_id else None

    # -- internals ------------------------------------------------------------------------------------------

    def _report_late(self, trainer: Trainer) -> None:
        """Re-send the last epoch with what was logged after its report (the module's own ``on_train_epoch_end``
        runs after the callbacks'), so those metrics land on the epoch that produced them."""
        if self._reported is None:
            return
        epoch, metrics = self._reported
        logged = trainer.callback_metrics
        late = {
            name: value
            for name, value in _epoch_metrics(_fresh(logged, self._before), logged).items()
            # Lightning recomputes the epoch's values after the hooks: the same numbers are nothing new
            if name not in metrics or not _same_number(value, metrics[name])
        }
        self._before = _seen(logged)
        if not late:
            return
        metrics = {**metrics, **late}
        self.tracker.on_epoch_end(epoch, metrics)
        self._reported = (epoch, metrics)

    def _with_epoch_loss(self, trainer: Trainer, metrics: dict[str, Any]) -> dict[str, Any]:
        """``metrics`` with the epoch's mean training loss where the module logged none for the epoch.

        ``self.log("train_loss", loss)`` in ``training_step`` is Lightning's default ``on_step=True,
        on_epoch=False``: ``callback_metrics`` then holds the last batch's loss, one batch's noise, where every
        other framework reports the epoch's mean. That, or no training loss logged at all, becomes the mean of the
        losses ``training_step`` returned this epoch.
        """
        if self._loss_sum is None or not self._loss_count:
            return metrics
        losses = [name for name in metrics if canonical_name(name) == "train_loss"]
        step_only = _step_only(trainer)
        if any(name not in step_only for name in losses):
            return metrics  # logged for the epoch (on_epoch=True): the module's own figure
        mean = self._loss_sum / self._loss_count
        return {**{name: value for name, value in metrics.items() if name not in losses}, "train_loss": mean}

    def _resumed_tracker(self, operation_id: str) -> TrainingCallbacks:
        """A tracker for a fit resumed from a checkpoint of ``operation_id``: into it while it is open, else a
        new operation that names it."""
        options: dict[str, Any] = dict(self.options)
        try:
            client = self.ops if self.ops is not None else connect()
            try:
                open_ = not client.get_operation(operation_id).status.is_terminal
            finally:
                if self.ops is None:
                    client.close()
        except Exception as error:  # unreachable or unknown: the new tracker says whether trainops is reachable
            logger.warning("trainops: the checkpoint's operation %s could not be read (%s)", operation_id, error)
            open_ = False
        if open_:
            options["operation_id"] = operation_id
        else:
            options["metadata"] = {**(options.get("metadata") or {}), "resumed_from": operation_id}
        return TrainingCallbacks(self.ops, **options)


class _EpochOpener(Callback):
    """First of the trainer's callbacks: opens each epoch for its :class:`TrainOpsCallback` before the others'
    ``on_train_epoch_start`` log anything for it. Stateless, so checkpoints hold nothing of it."""

    def __init__(self, owner: TrainOpsCallback) -> None:
        self.owner = owner

    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.owner._open_epoch(trainer)


class _Seen:
    """A value of ``callback_metrics`` as it stood: the object and its number."""

    __slots__ = ("number", "value")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.number = _number(value)

    def same(self, value: Any) -> bool:
        return value is self.value and _same_number(value, self.number)


def _seen(metrics: Mapping[str, Any]) -> dict[str, _Seen]:
    return {name: _Seen(value) for name, value in metrics.items()}


def _fresh(metrics: Mapping[str, Any], before: Mapping[str, _Seen]) -> dict[str, Any]:
    """The metrics logged since ``before`` was taken.

    ``callback_metrics`` keeps every value until it is logged again: a validation metric in an epoch without
    validation, or a metric the module logs in its own ``on_train_epoch_end``, still holds an older epoch's
    value. Such a value is the same object with the same number as before, and is left out.
    """
    return {name: value for name, value in metrics.items() if name not in before or not before[name].same(value)}


def _step_only(trainer: Trainer) -> frozenset[str]:
    """The names the training loop logged ``on_step=True, on_epoch=False`` (their values are one batch's).

    Read from Lightning's result collection, which is not public API: a Lightning that moved it answers none,
    and the logged value is reported as it stands.
    """
    try:
        results = trainer.fit_loop.epoch_loop._results
        return frozenset(item.meta.name for item in results.values() if item.meta.on_step and not item.meta.on_epoch)
    except Exception:
        return frozenset()


def _epoch_metrics(metrics: Mapping[str, Any], logged: Mapping[str, Any]) -> dict[str, Any]:
    """``metrics`` without Lightning's twins: a metric logged with ``on_step`` and ``on_epoch`` is in ``logged``
    as ``name`` (the epoch's value at an epoch's end), ``name_step`` (the last batch's) and ``name_epoch``."""
    return {
        name: value
        for name, value in metrics.items()
        if not (name.endswith(("_step", "_epoch")) and name.rsplit("_", 1)[0] in logged)
    }


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError, RuntimeError):
        return None


def _same_number(value: Any, other: Any) -> bool:
    """Whether two values are the same number (NaN is NaN), or both not numbers."""
    first, second = _number(value), _number(other)
    if first is None or second is None:
        return first is second
    return first == second or (math.isnan(first) and math.isnan(second))
