"""``replay``: what a policy would have recommended at every epoch of a stored history (a dry run)."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, Field

from trainops.core.analysis import analyze_prefix, epochs_done, in_order
from trainops.core.diagnosis import Action, SignalRule
from trainops.core.epoch import EpochRecord
from trainops.core.policy import MonitorPolicy


class ReplayStep(BaseModel):
    """The recommendation the policy gives having seen the history up to and including ``epoch``."""

    epoch: int
    action: Action
    reason: str
    restore_epoch: int | None = None
    rules: list[SignalRule] = Field(default_factory=list, description="the rules that fired at this epoch")


class Replay(BaseModel):
    """A policy replayed over a history: every epoch's recommendation and where the run would have stopped.

    Nothing is changed by a replay; it answers "had this policy been watching, what would it have done?".
    """

    policy: MonitorPolicy
    total_epochs_planned: int | None = None
    epochs_replayed: int = 0
    steps: list[ReplayStep] = Field(default_factory=list)
    stop_epoch: int | None = Field(None, description="the first epoch at which the policy says stop; None if never")
    stop_reason: str | None = None
    restore_epoch: int | None = Field(None, description="the epoch whose weights the stop would keep")
    epochs_saved: int | None = Field(
        None, description="epochs the run had left (planned, else recorded) after stop_epoch; None if never stopped"
    )


def replay(
    history: Sequence[EpochRecord],
    policy: MonitorPolicy | None = None,
    *,
    total_epochs_planned: int | None = None,
) -> Replay:
    """Run :func:`analyze` on every prefix of ``history`` with ``policy``. Pure.

    Args:
        history: Epoch records, oldest first.
        policy: The policy to try; the defaults when ``None``.
        total_epochs_planned: The run's planned length, as the diagnosis saw it while the run trained.

    Returns:
        One step per epoch and the first stop, if any.

    Example:
        >>> losses = [1.0, 0.5, 0.4, 0.41, 0.42, 0.43, 0.44]
        >>> records = [EpochRecord(epoch=e, train_loss=v, val_loss=v) for e, v in enumerate(losses)]
        >>> replay(records, MonitorPolicy(patience=3, stop_rule="patience")).stop_epoch
        5
    """
    policy = policy or MonitorPolicy()
    history = in_order(history)
    steps: list[ReplayStep] = []
    said_stop: dict[int, bool] = {}  # every prefix's projection verdict, judged once: confirm reads them
    for end in range(1, len(history) + 1):
        diagnosis = analyze_prefix(
            history[:end], policy, total_epochs_planned, with_forecast=False, said_stop=said_stop
        )
        recommendation = diagnosis.recommendation
        steps.append(
            ReplayStep(
                epoch=history[end - 1].epoch,
                action=recommendation.action,
                reason=recommendation.reason,
                restore_epoch=recommendation.restore_epoch,
                rules=[signal.rule for signal in diagnosis.signals],
            )
        )
    stopped_at = next((index for index, step in enumerate(steps) if step.action is not Action.CONTINUE), None)
    result = Replay(policy=policy, total_epochs_planned=total_epochs_planned, epochs_replayed=len(history), steps=steps)
    if stopped_at is None:
        return result
    stop = steps[stopped_at]
    first = history[0].epoch
    length = total_epochs_planned or epochs_done(len(history), first, history[-1].epoch)
    result.stop_epoch = stop.epoch
    result.stop_reason = stop.reason
    result.restore_epoch = stop.restore_epoch
    result.epochs_saved = max(length - epochs_done(stopped_at + 1, first, stop.epoch), 0)
    return result
