"""recommendation_changes(): the steps of a replay where the advice changed."""

from __future__ import annotations

import pytest

from trainops.core import Action
from trainops.core.recommendation_changes import recommendation_changes
from trainops.core.replay import ReplayStep

GO = Action.CONTINUE
STOP = Action.STOP
RESTORE = Action.STOP_AND_RESTORE_BEST


def steps(*advice: tuple[Action, int | None, list[str]]) -> list[ReplayStep]:
    return [
        ReplayStep(epoch=epoch, action=action, reason=f"reason {epoch}", restore_epoch=restore, rules=rules)
        for epoch, (action, restore, rules) in enumerate(advice)
    ]


@pytest.mark.parametrize(
    ("advice", "epochs"),
    [
        pytest.param([], [], id="nothing"),
        pytest.param([(GO, None, [])] * 4, [0], id="the first step only when nothing changes"),
        pytest.param(
            [(GO, None, []), (GO, None, []), (RESTORE, 1, ["plateau"]), (RESTORE, 1, ["plateau"])],
            [0, 2],
            id="the stop",
        ),
        pytest.param(
            [(GO, None, []), (RESTORE, 0, ["overfitting"]), (RESTORE, 0, ["overfitting", "plateau"])],
            [0, 1, 2],
            id="a rule joining",
        ),
        pytest.param([(RESTORE, 1, ["plateau"]), (RESTORE, 2, ["plateau"])], [0, 1], id="a new epoch to restore"),
        pytest.param(
            [(STOP, None, ["divergence_threshold"]), (GO, None, []), (STOP, None, ["divergence_threshold"])],
            [0, 1, 2],
            id="back and forth",
        ),
    ],
)
def test_changes(advice: list[tuple[Action, int | None, list[str]]], epochs: list[int]) -> None:
    assert [step.epoch for step in recommendation_changes(steps(*advice))] == epochs


def test_a_reason_worded_differently_is_not_a_change() -> None:
    """Reasons carry counts ("3 epochs without improvement") that change every epoch."""
    same = steps((RESTORE, 1, ["plateau"]), (RESTORE, 1, ["plateau"]))
    assert same[0].reason != same[1].reason
    assert [step.epoch for step in recommendation_changes(same)] == [0]
