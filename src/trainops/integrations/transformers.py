"""Hugging Face Transformers: a ``TrainerCallback`` that reports ``Trainer.train()`` to trainops, and stops it.

>>> from trainops.integrations.transformers import TrainOpsCallback
>>> trainer = Trainer(model=model, args=args, train_dataset=train, eval_dataset=val, callbacks=[TrainOpsCallback()])
>>> trainer.train()  # doctest: +SKIP

What is reported: the hyperparameters (``TrainingArguments``, less where files and logs go, and the model's
config under ``model``), every training log (``loss``, ``learning_rate``, ``grad_norm``: every
``logging_steps``) as the run's batch metrics, and one record per epoch: the training loss (the mean of the
losses logged in the epoch, each weighted by the steps it covers), the last learning rate and gradient norm, and
the evaluation's metrics when the Trainer evaluated (``eval_loss`` is stored as ``val_loss``, ``eval_accuracy``
as ``val_accuracy``, the original names kept as aliases; its timing, ``eval_runtime``, ``eval_*_per_second`` and
``eval_model_preparation_time``, is left out: the epoch's ``duration`` tells the time), at the Trainer's global
step. The summary the Trainer logs at the end (``train_runtime``, ``train_loss``, ...) is the run's final metrics.

So that every epoch has its training loss whatever ``logging_steps`` is (the default, 500, is longer than many
epochs), the callback asks the Trainer to log at an epoch's end when steps ran since its last log: that log (the
mean loss since the last one) also reaches the Trainer's console and ``report_to`` loggers, and the step logs
every ``logging_steps`` go on as before.

Epochs are numbered from 0: the Trainer's ``state.epoch`` is a float (``1.0`` when the first epoch ended); the
record of the epoch that ended at ``state.epoch == 1.0`` is epoch 0, as Lightning and Keras number it.

One record per epoch: the Trainer calls ``on_epoch_end`` *before* the evaluation (and the log) it schedules for
the epoch's end, so when one follows, the record waits for it and is sent from ``on_evaluate`` (or ``on_log``).
With several evaluation data sets (``eval_dataset`` a dict), each is its own evaluation: the record is sent again
with each one's metrics (``eval_short_loss`` is stored as ``val_short_loss``). The dict's first data set (its
first key, which the Trainer evaluates first) is also the standard validation: ``eval_short_loss`` is stored as
``val_loss`` as well, ``eval_short_accuracy`` as ``val_accuracy``, so the diagnosis and the best epoch follow it
(order the dict to put the data set to monitor first).

An evaluation before any training step (``eval_on_start=True``) belongs to no epoch: it is kept in the
operation's result as ``initial_evaluation`` (``{"step": 0, "val_loss": ..., ...}``), written when the run ends.

Stopping: a stop asked through trainops sets ``control.should_training_stop`` when the epoch's record is sent, or
at an evaluation inside an epoch (``eval_strategy="steps"``), so the Trainer ends after that epoch or step; the
operation ends ``cancelled``. In a multi-process run only rank 0 reports and asks, and its decision is broadcast.

The Trainer never tells a callback that training failed: to record a failure, use the callback as a context
manager around ``trainer.train()``::

    with TrainOpsCallback() as callback:
        Trainer(..., callbacks=[callback]).train()   # an exception ends the run failed, with its message

Without one, a ``train()`` that raised leaves its operation ``running`` until the next ``train()`` with the same
callback begins (which ends it ``failed``, as an ``AbandonedFit`` rather than the error itself, and reports into a
new operation) or Python exits (which ends it ``failed`` with the exception that ended the script, or
``completed`` if the script caught it).
"""

from __future__ import annotations

import math
import re
from typing import Any, Literal, Unpack

from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from trainops.client.base import TrainOps
from trainops.core.metric_names import canonical_name, normalize_metrics
from trainops.integrations.base import FrameworkCallback, TrainingOptions

# TrainingArguments that say where files and logs go, not how the model learns
_NOT_HYPERPARAMETERS = frozenset({"output_dir", "logging_dir", "run_name", "project", "report_to"})
_NOT_HYPERPARAMETER_PREFIXES = ("hub_", "push_to_hub", "resume_from_checkpoint")

_SUMMARY = "train_runtime"  # a key only the Trainer's end-of-training summary log has
# how fast the machine evaluated, not how well the model did: the epoch's duration already tells the time. A data
# set of a dict eval_dataset has its name in the middle (eval_short_runtime); eval_model_preparation_time joins
# every evaluation once trainer.evaluate() ran before train()
_EVALUATION_TIMING = re.compile(
    r"^eval_(?:.+_)?(?:runtime|samples_per_second|steps_per_second|model_preparation_time)$"
)
_DATA_SET_RUNTIME = re.compile(r"^eval_(?P<name>.+)_runtime$")


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
        self._first_step = 0  # the global step train() began at: an evaluation there saw no training
        self._epoch = 0
        self._epoch_first_step = 0
        self._last_logged_step = 0
        self._losses: list[tuple[float, int]] = []  # (a logged training loss, the steps it covers) in this epoch
        self._train_values: dict[str, Any] = {}  # the epoch's last learning rate, gradient norm, ...
        self._evaluation: dict[str, Any] = {}  # the last evaluation since the previous record
        self._first_data_set: str | None = None  # a dict eval_dataset's first key ("" for one data set), once known
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
        self._first_step = self._last_logged_step = state.global_step
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
        values = {name: value for name, value in logs.items() if name != "epoch"}
        if "loss" in values:  # the Trainer's training log, the mean loss since its last one (a trainer.log() has none)
            steps = max(state.global_step - self._last_logged_step, 1)
            self._last_logged_step = state.global_step  # kept equal to the Trainer's: on_epoch_end relies on it
            loss = values["loss"]
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
        """Send the epoch's record, or let it wait for the evaluation or log the Trainer does next.

        Steps that ran since the Trainer's last training log get one now: the Trainer logs the mean loss since
        that log right after this hook (and before the evaluation), so the record holds the epoch's whole
        training loss however long ``logging_steps`` is."""
        if not self._training:
            return
        self._pending = self._epoch
        # the same on every rank (each sees every log), as it must be: the Trainer's log gathers the loss from all
        unlogged = state.global_step > self._last_logged_step
        if unlogged:
            control.should_log = True
        if control.should_evaluate:
            self._waiting_for = "evaluate"
        elif unlogged:
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
        evaluation = self._evaluation_metrics(metrics or {})
        if state.global_step == self._first_step:
            # eval_on_start: the model before any training step of this train(). Merged into epoch 0's record it
            # would pass for the first epoch's validation (its worst, most likely); it is a baseline, kept apart
            self._keep_initial_evaluation(evaluation, state)
            return
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

    def _evaluation_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """An evaluation's metrics less its timing; those of a dict ``eval_dataset``'s first data set also under
        the standard names (``eval_short_loss`` also as ``eval_loss``, stored as ``val_loss``)."""
        evaluation = {name: value for name, value in metrics.items() if not _EVALUATION_TIMING.match(name)}
        data_set = _data_set(metrics)
        if self._first_data_set is None:
            # the Trainer evaluates a dict's data sets in its order, and the first evaluation of a run is the first
            self._first_data_set = data_set or ""
        if not data_set or data_set != self._first_data_set:
            return evaluation
        prefix = f"eval_{data_set}_"
        for name, value in list(evaluation.items()):
            if name.startswith(prefix):
                standard = f"eval_{name.removeprefix(prefix)}"
                evaluation.setdefault(standard, value)
                # the alias names what the Trainer logged (eval_short_loss), not the standard name it never logged
                self.tracker.aliases.setdefault(canonical_name(standard), name)
        return evaluation

    def _keep_initial_evaluation(self, evaluation: dict[str, Any], state: TrainerState) -> None:
        """Keep an evaluation before any training step in the run's result (``initial_evaluation``): a baseline
        someone asked for is not dropped, but no epoch trained for it. One call per data set of a dict."""
        run = self.tracker.run
        if run is None:
            return  # another rank, or trainops could not be reached
        kept = run.result.setdefault("initial_evaluation", {"step": state.global_step})
        kept.update(normalize_metrics(evaluation)[0])

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


def _data_set(metrics: dict[str, Any]) -> str | None:
    """The data set an evaluation's metrics are of when ``eval_dataset`` is a dict (``short`` for
    ``eval_short_loss``), from the timing the Trainer adds to every evaluation; ``None`` for a single data set."""
    if "eval_runtime" in metrics:
        return None
    for name in metrics:
        found = _DATA_SET_RUNTIME.match(name)
        if found and f"eval_{found['name']}_samples_per_second" in metrics:  # not a metric of its own named *_runtime
            return found["name"]
    return None


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
