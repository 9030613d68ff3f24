"""What every framework callback shares: the TrainingCallbacks it drives, its options, and a context manager.

A framework's callback (a Lightning ``Callback``, a Transformers ``TrainerCallback``, a Keras ``Callback``)
inherits :class:`FrameworkCallback` first and the framework's base second; the framework decides when the hooks
run, :class:`~trainops.callbacks.TrainingCallbacks` does the reporting. This module imports no framework.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, Self, TypedDict, Unpack

from trainops.callbacks import Sink, StopRequest, TrainingCallbacks
from trainops.client.base import TrainOps
from trainops.core.policy import MonitorPolicy


class TrainingOptions(TypedDict, total=False):
    """The keyword arguments of :class:`~trainops.callbacks.TrainingCallbacks`, which every integration takes.

    ``rank``, ``total_epochs`` and ``config`` default to what the framework knows (its global rank, its planned
    epochs, its hyperparameters); given here, they win (``config`` key by key).
    """

    operation_id: str | None
    task: str | None
    config: Mapping[str, Any] | None
    total_epochs: int | None
    mlflow: bool | str | Sink | None
    console: bool
    metadata: Mapping[str, Any] | None
    operation_type: str
    rank: int | None
    stop_on_recommendation: bool | MonitorPolicy
    system_metrics: bool
    log_every_n_steps: int
    sinks: Sequence[Sink]
    flush_interval: float | Literal["default"] | None
    flush_timeout: float
    name: str | None
    tags: Sequence[str] | None
    notes: str | None


class AbandonedFit(RuntimeError):
    """How a run is ended when its fit never said it ended and a new fit with the same callback began."""


class FrameworkCallback:
    """The reporting half of a framework callback; subclasses call :meth:`_begin` and the tracker's hooks.

    Also a context manager, for frameworks whose loop never tells a callback it failed (Keras, Transformers):
    leaving the block on an exception ends the run ``failed`` with the exception's message, and otherwise ends a
    run the framework left open (a normal end has already ended it; nothing happens twice).

    Args:
        ops: Where to report; ``trainops.connect()`` by default.
        **options: The keyword arguments of :class:`~trainops.callbacks.TrainingCallbacks`.

    Attributes:
        tracker: The :class:`~trainops.callbacks.TrainingCallbacks` this callback drives (for
            ``callback.tracker.log_artifact(path)``, or its :attr:`~TrainingCallbacks.aliases`).
    """

    def __init__(self, ops: TrainOps | None = None, **options: Unpack[TrainingOptions]) -> None:
        super().__init__()  # the framework's base, next in the method resolution order
        self.ops = ops
        self.options = options
        self.tracker = TrainingCallbacks(ops, **options)

    @property
    def operation_id(self) -> str | None:
        """The operation reported into, once training began (``None`` before, on other ranks, or untracked)."""
        return self.tracker.operation_id

    @property
    def best_epoch(self) -> int | None:
        """The best epoch by trainops' diagnosis, known once training ended."""
        return self.tracker.best_epoch

    def _begin(self, *, rank: int | None, total_epochs: int | None, config: Mapping[str, Any]) -> None:
        """Begin the run with what the framework knows, under whatever the caller gave explicitly."""
        self._end_abandoned()
        if self.options.get("rank") is None and rank is not None:
            self.tracker.rank = rank
        if self.options.get("total_epochs") is None and total_epochs is not None and total_epochs > 0:
            self.tracker.total_epochs = total_epochs
        self.tracker.on_train_begin({**config, **(self.options.get("config") or {})})

    def _end_abandoned(self) -> None:
        """End ``failed`` a run that an earlier fit left open: that fit raised where the framework tells no
        callback (Keras and Transformers, used without a ``with`` block), and a new fit begins now. Without this the
        new fit would report into the old operation, under the old fit's hyperparameters and planned epochs."""
        if self.tracker.running:
            error = AbandonedFit(
                "a later fit with the same callback began before this one ended: this fit raised where the "
                "framework tells no callback; use the callback as a `with` block to record the error itself"
            )
            self.tracker.__exit__(AbandonedFit, error, None)

    def _stop_requested(self) -> StopRequest | None:
        """The stop someone asked for, if any; once answered, the run ends ``cancelled``."""
        return self.tracker.should_stop()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.tracker.__exit__(exc_type, exc, tb)
