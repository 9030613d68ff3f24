"""``recommendation_changes``: the few epochs of a replay worth reading, where the recommendation changed."""

from __future__ import annotations

from collections.abc import Sequence

from trainops.core.replay import ReplayStep


def recommendation_changes(steps: Sequence[ReplayStep]) -> list[ReplayStep]:
    """The first step, then each step whose action, restore epoch or fired rules differ from the step before.

    A replay has one step per epoch, and most repeat the one before ("continue", no rule fired); these are the
    turning points. The reason's wording is left out of the comparison: it carries counts that change every epoch.

    Example:
        >>> from trainops.core.diagnosis import Action
        >>> steps = [ReplayStep(epoch=e, action=Action.CONTINUE, reason="") for e in range(4)]
        >>> steps.append(ReplayStep(epoch=4, action=Action.STOP, reason="", rules=["plateau"]))
        >>> [step.epoch for step in recommendation_changes(steps)]
        [0, 4]
    """
    changes: list[ReplayStep] = []
    previous: tuple[object, ...] | None = None
    for step in steps:
        key = (step.action, step.restore_epoch, tuple(step.rules))
        if key != previous:
            changes.append(step)
        previous = key
    return changes
