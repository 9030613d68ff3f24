"""Hugging Face Transformers: a ``TrainerCallback`` that reports ``Trainer.train()`` to trainops, and stops it.

>>> from trainops.integrations.transformers import TrainOpsCallback
>>> trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val, callbacks=[TrainOpsCallback()])
>>> trainer.train()  # doctest: +SKIP

What is reported: the hyperparameters (``TrainingArguments``, less where files and logs go, and the model's
config under ``model``), every training log (``loss``, ``learning_rate``, ``grad_norm``: every
``logging_steps``) as the run's batch metrics, and one record per epoch: the training loss (the mean of the
losses logged in the epoch, each weighted by the steps it covers), the last learning rate and gradient norm, and
the evaluation's metrics when the Trainer evaluated (``eval_loss`` is stored as ``val_loss``, ``eval_accuracy``
as ``val_accuracy``, the original names kept as aliases; its timing, ``eval_runtime`` and ``eval_*_per_second``,
is left out: the epoch's ``duration`` tells the time), at the Trainer's global step. The summary the Trainer logs
at the end (``train_runtime``, ``train_loss``, ...) is the run's final metrics.

Epochs are numbered from 0: the Trainer's ``state.epoch`` is a float (``1.0`` when the first epoch ended); the
record of the epoch that ended at ``state.epoch == 1.0`` is epoch 0, as Lightning and Keras number it.

One record per epoch: the Trainer calls ``on_epoch_end`` *before* the evaluation (and the log) it schedules for
the epoch's end, so when one follows, the record waits for it and is sent from ``on_evaluate`` (or ``on_log``).
With several evaluation data sets (``eval_dataset`` a dict), each is its own evaluation: the record is sent again
with each one's metrics (``eval_short_loss`` is stored as ``val_short_loss``).

Stopping: a stop asked through trainops sets ``control.should_training_stop`` when the epoch's record is sent, or
at an evaluation inside an epoch (``eval_strategy="steps"``), so the Trainer ends after that epoch or step; the
operation ends ``cancelled``. In a multi-process run only rank 0 reports and asks, and its decision is broadcast.

The Trainer never tells a callback that training failed: to record a failure, use the callback as a context
manager around ``trainer.train()``::

    with TrainOpsCallback() as callback:
        Trainer(..., callbacks=[callback]).train()   # an exception ends the run failed, with its message
"""

from __future__ import annotations

import math
from typing import Any, Literal, Unpack

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from trainops.client.base import TrainOps
from trainops.integrations.base import FrameworkCallback, TrainingOptions

# TrainingArguments that say where files and logs go, not how the model learns
_NOT_HYPERPARAMETERS = frozenset({"output_dir", "logging_dir", "run_name", "project", "report_to"})
_NOT_HYPERPARAMETER_PREFIXES = ("hub_", "push_to_hub", "resume_from_checkpoint")

_SUMMARY = "train_runtime"  # a key only the Trainer's end-of-training summary log has
# how fast the machine evaluated, not how well the model did: the epoch's duration already tells the time
_EVALUATION_TIMING = frozenset({"eval_runtime", "eval_samples_per_second", "eval_steps_per_second"})


class TrainOpsCallback(FrameworkCallback, TrainerCallback):
    """Reports ``Trainer.train()`` to trainops; a stop asked through trainops ends it after the current epoch.

    Args:
        ops: Where to report; ``trainops.connect()`` (``TRAINOPS_URL``, else the local database) by default.
        **options: The keyword arguments of :class:`~trainops.callbacks.TrainingCallbacks` (``task``,
            ``config``, ``mlflow``, ``stop_on_recommendation``, ...). ``rank`` defaults to the Trainer's process
            index (0 on the main process), ``total_epochs`` to the Trainer's planned epochs, and ``config`` is
            merged over the hyperparameters.
    """

    def __init__(self, ops: TrainOps | None = None, **options: Unpack[TrainingOptions]) -> None:
        super().__init__(ops, **options)
        self._forget()

    def _forget(self) -> None:
        """Reset the run's state, so one callback reports several ``train()`` calls in turn."""
        self._training = False
        self._epoch = 0
        self._epoch_first_step = 0
        self._last_logged_step = 0
        self._losses: list[tuple[float, int]] = []  # (a logged training loss, the steps it covers) in this epoch
        self._train_values: dict[str, Any] = {}  # the epoch's last learning rate, gradient norm, ...
        self._evaluation: dict[str, Any] = {}  # the last evaluation since the previous record
        self._sent: tuple[int, int, dict[str, Any]] | None = None  # the last record: epoch, global step, metrics
        self._pending: int | None = None  # an ended epoch whose record waits for the log or evaluation that follows
        self._waiting_for: Literal["log", "evaluate"] | None = None
        self._summary: dict[str, Any] = {}

    # -- the Trainer's events -------------------------------------------------------------------------------

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Begin the run with the hyperparameters, the planned epochs and this process's rank."""
        self._forget()
        self._training = True
        self._last_logged_step = state.global_step
        config = hyperparameters(args)
        model_config = getattr(kwargs.get("model"), "config", None)
        if model_config is not None and callable(getattr(model_config, "to_diff_dict", None)):
            config["model"] = {
                name: value
                for name, value in model_config.to_diff_dict().items()
                if _scalar(value) and value is not None
            }
        planned = state.num_train_epochs if 0 < state.num_train_epochs < 1_000_000 else None  # max_steps: unknown
        rank = 0 if state.is_world_process_zero else max(args.process_index, 1)
        self._begin(rank=rank, total_epochs=planned, config=config)

    def on_epoch_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Number the epoch (``state.epoch`` is where the previous one ended: 1.0 after the first)."""
        if not self._training:
            return
        self._epoch = math.floor((state.epoch or 0.0) + 1e-9)
        self._epoch_first_step = state.global_step
        self.tracker.on_epoch_begin(self._epoch)

    def on_log(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        logs: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """A training log becomes batch metrics and part of the epoch's record; evaluations come by
        :meth:`on_evaluate`, and the end-of-training summary becomes the final metrics."""
        if not self._training or not logs:
            return
        if _SUMMARY in logs:
            self._summary = dict(logs)
            return
        if any(name.startswith("eval_") for name in logs):
            return
        steps = max(state.global_step - self._last_logged_step, 1)
        self._last_logged_step = state.global_step
        values = {name: value for name, value in logs.items() if name != "epoch"}
        loss = values.get("loss")
        if isinstance(loss, int | float) and not isinstance(loss, bool):
            self._losses.append((float(loss), steps))
        self._train_values.update({name: value for name, value in values.items() if name != "loss"})
        # this step's, which on_step_end left to the log
        self.tracker.on_batch_end(self._batch(state), values, step=state.global_step)
        if self._waiting_for == "log":
            self._record(args, state, control)

    def on_step_end(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        """Count the optimizer step, so the run's steps are the Trainer's global steps; a step that is about to
        be logged (``control.should_log``) is counted by its log, with its metrics."""
        if self._training and not control.should_log:
            self.tracker.on_batch_end(self._batch(state), step=state.global_step)

    def on_epoch_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """Send the epoch's record, or let it wait for the evaluation or log the Trainer does next."""
        if not self._training:
            return
        self._pending = self._epoch
        if control.should_evaluate:
            self._waiting_for = "evaluate"
        elif control.should_log and state.global_step > self._last_logged_step:
            self._waiting_for = "log"
        else:
            self._record(args, state, control)

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        """An evaluation's metrics join the epoch's record; one inside an epoch is a chance to stop."""
        if not self._training:
            return  # trainer.evaluate() after training: not part of the run
        evaluation = {name: value for name, value in (metrics or {}).items() if name not in _EVALUATION_TIMING}
        if self._waiting_for == "evaluate":
            self._evaluation.update(evaluation)
            self._record(args, state, control)
        elif self._sent is not None and self._sent[1] == state.global_step:
            # another evaluation where the epoch's record was sent: one per data set when eval_dataset is a dict
            epoch, _, sent = self._sent
            self._send(epoch, {**sent, **evaluation}, args, state, control)
        else:
            self._evaluation.update(evaluation)
            if _everyone(self._stop_requested() is not None, args):
                control.should_training_stop = True

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        """End the run: ``completed``, or ``cancelled`` when it stopped on request."""
        if not self._training:
            return
        if self._pending is not None:
            self._record(args, state, control)
        self._training = False
        self.tracker.on_train_end(self._summary or None)

    # -- internals ------------------------------------------------------------------------------------------

    def _batch(self, state: TrainerState) -> int:
        """The step's index in the epoch (optimizer steps, as the Trainer counts them)."""
        return max(state.global_step - self._epoch_first_step - 1, 0)

    def _record(self, args: TrainingArguments, state: TrainerState, control: TrainerControl) -> None:
        """Send the pending epoch's record, then stop the Trainer if a stop was asked."""
        epoch = self._pending if self._pending is not None else self._epoch
        self._pending, self._waiting_for = None, None
        metrics: dict[str, Any] = {}
        if self._losses:
            metrics["loss"] = sum(loss * steps for loss, steps in self._losses) / sum(s for _, s in self._losses)
        metrics.update(self._train_values)
        metrics.update(self._evaluation)
        metrics["global_step"] = state.global_step
        self._losses, self._train_values, self._evaluation = [], {}, {}
        self._send(epoch, metrics, args, state, control)

    def _send(
        self, epoch: int, metrics: dict[str, Any], args: TrainingArguments, state: TrainerState, control: TrainerControl
    ) -> None:
        self.tracker.on_epoch_end(epoch, metrics)
        self._sent = (epoch, state.global_step, metrics)
        if _everyone(self._stop_requested() is not None, args):
            control.should_training_stop = True


def hyperparameters(args: TrainingArguments) -> dict[str, Any]:
    """The ``TrainingArguments`` that shape the training, as JSON scalars (unset ones and paths left out)."""
    every: dict[str, Any] = args.to_dict()  # type: ignore[no-untyped-call]  # enums as values, tokens redacted
    return {
        name: value
        for name, value in every.items()
        if value is not None
        and _scalar(value)
        and name not in _NOT_HYPERPARAMETERS
        and not name.startswith(_NOT_HYPERPARAMETER_PREFIXES)
    }


def _scalar(value: Any) -> bool:
    return isinstance(value, bool | int | float | str)


def _everyone(stop: bool, args: TrainingArguments) -> bool:
    """Rank 0's decision, on every rank: only rank 0 asks trainops, and a rank that stopped alone would leave the
    others waiting for it in their next collective operation."""
    if args.world_size <= 1:
        return stop
    import torch.distributed as distributed  # a multi-process run only; the Trainer has imported torch already

    if not (distributed.is_available() and distributed.is_initialized()):
        return stop
    decision = [stop]
    distributed.broadcast_object_list(decision, src=0)
    return bool(decision[0])
