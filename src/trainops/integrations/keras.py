"""Keras 3: a ``Callback`` that reports ``model.fit`` to trainops, and stops it on request.

>>> from trainops.integrations.keras import TrainOpsCallback
>>> with TrainOpsCallback(task="image_classification") as callback:  # doctest: +SKIP
...     model.fit(x, y, epochs=20, validation_split=0.2, callbacks=[callback])

What is reported: the planned epochs and steps (``self.params``) and the optimizer's configuration, each batch's
running metrics, and each epoch's logs: Keras' ``loss``, ``accuracy``, ``val_loss``, ``val_accuracy`` (stored as
``train_loss``, ``train_accuracy``, ``val_loss``, ``val_accuracy``, the original names kept as aliases), any
other metric compiled into the model, and the optimizer's learning rate when no callback logged one.

Stopping: a stop asked through trainops sets ``model.stop_training`` at the epoch's end, so ``fit`` returns after
that epoch and the operation ends ``cancelled``.

Keras never tells a callback that ``fit`` raised: ``on_train_end`` runs only when it returns. Used as a context
manager (above), the callback ends the run ``failed`` with the exception's message. Without one, a ``fit`` that
raised leaves its operation ``running`` until the next ``fit`` with the same callback begins (which ends it
``failed``, as an ``AbandonedFit`` rather than the error itself, and reports into a new operation) or Python exits
(which ends it ``failed`` with the exception that ended the script, or ``completed`` if the script caught it).

Works with any Keras 3 backend (``KERAS_BACKEND``: jax, torch, tensorflow); one callback reports each ``fit`` it
is passed to as a new operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Unpack

import keras  # type: ignore[import-untyped]  # Keras 3 ships no type information

from trainops.client.base import TrainOps
from trainops.integrations.base import FrameworkCallback, TrainingOptions


class TrainOpsCallback(FrameworkCallback, keras.callbacks.Callback):  # type: ignore[misc]  # Keras is untyped
    """Reports ``model.fit`` to trainops; a stop asked through trainops ends ``fit`` after the current epoch.

    Args:
        ops: Where to report; ``trainops.connect()`` (``TRAINOPS_URL``, else the local database) by default.
        **options: The keyword arguments of :class:`~trainops.callbacks.TrainingCallbacks` (``task``,
            ``config``, ``mlflow``, ``stop_on_recommendation``, ...). ``total_epochs`` defaults to ``fit``'s
            ``epochs``, and ``config`` is merged over what Keras knows (epochs, steps, optimizer).

    Epochs are numbered as Keras numbers them (from 0, or from ``initial_epoch``).
    """

    def __init__(self, ops: TrainOps | None = None, **options: Unpack[TrainingOptions]) -> None:
        super().__init__(ops, **options)
        self._step = 0

    def on_train_begin(self, logs: Mapping[str, Any] | None = None) -> None:
        """Begin the run with ``fit``'s epochs and steps and the optimizer's configuration."""
        self._step = 0
        epochs = self.params.get("epochs")
        config: dict[str, Any] = {"epochs": epochs, "steps_per_epoch": self.params.get("steps")}
        optimizer = _optimizer_config(self.model)
        if optimizer:
            config["optimizer"] = optimizer
        config = {name: value for name, value in config.items() if value is not None}
        self._begin(rank=None, total_epochs=epochs if isinstance(epochs, int) else None, config=config)

    def on_epoch_begin(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Start timing the epoch."""
        self.tracker.on_epoch_begin(epoch)

    def on_train_batch_end(self, batch: int, logs: Mapping[str, Any] | None = None) -> None:
        """The batch's metrics (Keras' running means over the epoch so far)."""
        self._step += 1
        self.tracker.on_batch_end(batch, logs)

    def on_epoch_end(self, epoch: int, logs: Mapping[str, Any] | None = None) -> None:
        """Report the epoch's logs, then stop ``fit`` if a stop was asked."""
        metrics = dict(logs or {})
        if "learning_rate" not in metrics and "lr" not in metrics:
            rate = _learning_rate(self.model)
            if rate is not None:
                metrics["learning_rate"] = rate
        metrics["global_step"] = self._step
        self.tracker.on_epoch_end(epoch, metrics)
        if self._stop_requested() is not None:
            self.model.stop_training = True

    def on_train_end(self, logs: Mapping[str, Any] | None = None) -> None:
        """End the run: ``completed``, or ``cancelled`` when it stopped on request (the last epoch's logs are the
        final metrics)."""
        self.tracker.on_train_end(logs)


def _optimizer_config(model: Any) -> dict[str, Any]:
    """The optimizer's class and its settings that are plain values (learning rate, betas, ...), when the model
    has one. Its ``name`` is left out: Keras numbers it per session (``adam_1``), it says nothing of the run."""
    try:
        config = model.optimizer.get_config()
    except Exception:  # no optimizer yet, or one that cannot describe itself: nothing to record
        return {}
    settings = {name: value for name, value in config.items() if isinstance(value, bool | int | float | str)}
    settings.pop("name", None)
    return {"class_name": type(model.optimizer).__name__, **settings}


def _learning_rate(model: Any) -> float | None:
    """The optimizer's current learning rate (a schedule's value at this step), or None."""
    try:
        return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except Exception:  # no optimizer, or a rate that is not one number
        return None
