"""replay(): a policy replayed over every prefix of a history, and where it would have stopped the run.

Table-driven in the style of Lightning's ``test_early_stopping_patience``: a history and a policy in; the stop
epoch, the epoch to restore, the epochs saved and the rule that fired out. The table uses the patience rule, whose
stops can be counted by hand; whatever the rules, every step is analyze()'s recommendation on the history so far.
Reasons are analyze()'s wording and may change; the tests read actions, epochs and rule names only.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.policies import patience
from trainops.core import Action, EpochRecord, MonitorPolicy, analyze
from trainops.core.replay import replay


def records(val: list[float], train: list[float] | None = None) -> list[EpochRecord]:
    """Epochs 0..n-1 with ``val_loss`` (and ``train_loss`` when given)."""
    return [
        EpochRecord(epoch=epoch, val_loss=value, train_loss=None if train is None else train[epoch])
        for epoch, value in enumerate(val)
    ]


PLATEAU = [1.0] + [0.5] * 14
NAN_AT_2 = ([1.0, 0.9, math.nan], [1.0, 0.9, math.nan])
"""Best at epoch 1, then flat for 13 epochs: only the patience rules can fire (no train_loss, no trend)."""


PATIENCE = {"stop_rule": "patience"}
"""Most cases replay Keras/Lightning early stopping, whose stop epochs are easy to know by hand."""


@dataclass
class Case:
    history: list[EpochRecord]
    policy: dict[str, Any] = field(default_factory=dict)
    planned: int | None = None
    stop_epoch: int | None = None
    restore_epoch: int | None = None
    epochs_saved: int | None = None
    rule: str | None = None
    action: Action | None = None


CASES = {
    "patience 3 stops three epochs after the best": Case(
        records(PLATEAU), {"patience": 3}, 30, 4, 1, 25, "plateau", Action.STOP_AND_RESTORE_BEST
    ),
    "patience 5 stops two epochs later": Case(
        records(PLATEAU), {"patience": 5}, 30, 6, 1, 23, "plateau", Action.STOP_AND_RESTORE_BEST
    ),
    "patience 20 never stops": Case(records(PLATEAU), {"patience": 20}, 30),
    "without a plan the saved epochs count to the last recorded one": Case(
        records(PLATEAU), {"patience": 3}, None, 4, 1, 10, "plateau", Action.STOP_AND_RESTORE_BEST
    ),
    "a plan shorter than the stop saves nothing": Case(
        records(PLATEAU), {"patience": 3}, 4, 4, 1, 0, "plateau", Action.STOP_AND_RESTORE_BEST
    ),
    "a NaN loss stops at once and keeps the last good epoch": Case(records(*NAN_AT_2), {}, 10, 2, 1, 7, "non_finite"),
    "check_finite off ignores the NaN": Case(records(*NAN_AT_2), {"check_finite": False}),
    "a loss past divergence_factor times its best for confirm_epochs (3) epochs blows up": Case(
        records([1.0, 0.5, 0.6, 2.0, 2.1, 2.2]), {}, None, 5, 1, 0, "loss_blowup"
    ),
    "two epochs past it are not yet a blow-up": Case(records([1.0, 0.5, 0.6, 2.0, 2.1])),
    "one epoch past it is a spike, not a blow-up": Case(records([1.0, 0.5, 0.6, 2.0, 0.55])),
    "confirm_epochs 1 stops on the spike": Case(
        records([1.0, 0.5, 0.6, 2.0, 0.55]), {"confirm_epochs": 1}, None, 3, 1, 1, "loss_blowup"
    ),
    "a larger divergence_factor tolerates it": Case(records([1.0, 0.5, 0.6, 2.0, 2.1]), {"divergence_factor": 5.0}),
    "an empty history replays nothing": Case([], {"patience": 1}, 10),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_where_a_policy_would_have_stopped(case: Case) -> None:
    result = replay(case.history, MonitorPolicy(**PATIENCE | case.policy), total_epochs_planned=case.planned)

    assert result.epochs_replayed == len(case.history)
    assert [step.epoch for step in result.steps] == [record.epoch for record in case.history]
    assert (result.stop_epoch, result.restore_epoch, result.epochs_saved) == (
        case.stop_epoch,
        case.restore_epoch,
        case.epochs_saved,
    )
    if case.stop_epoch is None:
        assert result.stop_reason is None
        assert all(step.action is Action.CONTINUE for step in result.steps)
        return
    stop = result.steps[[step.epoch for step in result.steps].index(case.stop_epoch)]
    assert stop.action is not Action.CONTINUE
    assert all(step.action is Action.CONTINUE for step in result.steps if step.epoch < case.stop_epoch)
    assert case.rule in stop.rules
    assert result.stop_reason == stop.reason and result.stop_reason
    assert result.restore_epoch == stop.restore_epoch
    if case.action is not None:
        assert stop.action is case.action


def test_each_step_is_the_diagnosis_of_the_history_so_far() -> None:
    """A step judges only the epochs up to its own: the plateau is not seen before patience epochs passed."""
    result = replay(records(PLATEAU), MonitorPolicy(**patience(3)))

    assert [step.rules for step in result.steps[:4]] == [[], [], [], []]
    assert all("plateau" in step.rules for step in result.steps[4:])
    assert all(step.restore_epoch == 1 for step in result.steps[4:])


@pytest.mark.parametrize("planned", [None, 30])
@pytest.mark.parametrize(
    "history",
    [
        pytest.param(records(PLATEAU), id="plateau"),
        pytest.param(records([1.0 - 0.02 * e if e <= 20 else 0.6 + 0.01 * (e - 20) for e in range(30)]), id="rising"),
        pytest.param(records([1.0, 0.9, math.nan, 0.8], [1.0, 0.9, math.nan, 0.8]), id="nan"),
    ],
)
def test_every_step_is_what_analyze_says_of_the_epochs_so_far(history: list[EpochRecord], planned: int | None) -> None:
    """Whatever the default rules are, a replay is analyze() on each prefix and stops at its first stop."""
    result = replay(history, None, total_epochs_planned=planned)

    for end, step in enumerate(result.steps, start=1):
        recommendation = analyze(history[:end], MonitorPolicy(), total_epochs_planned=planned).recommendation
        assert (step.action, step.restore_epoch) == (recommendation.action, recommendation.restore_epoch)
    stops = [step.epoch for step in result.steps if step.action is not Action.CONTINUE]
    assert result.stop_epoch == (stops[0] if stops else None)


def test_the_policy_and_plan_are_echoed_and_the_defaults_are_used_when_no_policy_is_given() -> None:
    history = records(PLATEAU)

    default = replay(history, None, total_epochs_planned=30)

    assert default.policy == MonitorPolicy()
    assert default == replay(history, MonitorPolicy(), total_epochs_planned=30)
    assert default.total_epochs_planned == 30


def test_replay_is_pure() -> None:
    history = records(PLATEAU)
    before = [record.model_copy() for record in history]

    first = replay(history, MonitorPolicy(patience=3, stop_rule="patience"))
    second = replay(history, MonitorPolicy(patience=3, stop_rule="patience"))

    assert history == before
    assert first == second


def test_epochs_need_not_start_at_zero_or_be_contiguous() -> None:
    """Validation every other epoch: steps carry the loop's own epoch numbers, and patience counts reports."""
    history = [EpochRecord(epoch=2 * index + 1, val_loss=value) for index, value in enumerate(PLATEAU)]

    result = replay(history, MonitorPolicy(patience=3, stop_rule="patience"))

    assert [step.epoch for step in result.steps] == [2 * index + 1 for index in range(len(PLATEAU))]
    assert (result.stop_epoch, result.restore_epoch) == (9, 3)


def _noisy_run(seed: int, epochs: int, every: int) -> list[EpochRecord]:
    """Falling, then flat or rising, with noise; validated every ``every`` epochs; a decaying rate; a NaN or two."""
    rng = random.Random(seed)
    turn = rng.randrange(epochs)
    records = []
    for e in range(epochs):
        val = 0.3 + math.exp(-e / 15) + (0.002 * (e - turn) if e > turn and seed % 2 else 0.0)
        val *= 1 + rng.gauss(0.0, 0.01)
        records.append(
            EpochRecord(
                epoch=e,
                train_loss=math.nan if rng.random() < 0.02 else 0.9 * val,
                val_loss=val if e % every == every - 1 else None,
                learning_rate=0.1 * 0.98**e,
            )
        )
    return records


@pytest.mark.parametrize("confirm_epochs", [1, 3, 10])
@pytest.mark.parametrize(("seed", "every"), [(1, 1), (2, 1), (3, 2), (4, 3)])
def test_a_replay_sharing_its_verdicts_between_prefixes_says_what_analyze_says_of_each(
    seed: int, every: int, confirm_epochs: int
) -> None:
    """The replay reads each earlier prefix's projection verdict once; every step, reason included, must still be
    analyze() of the history so far."""
    history = _noisy_run(seed, 80, every)
    policy = MonitorPolicy(confirm_epochs=confirm_epochs)

    result = replay(history, policy, total_epochs_planned=120)

    for end, step in enumerate(result.steps, start=1):
        diagnosis = analyze(history[:end], policy, total_epochs_planned=120)
        expected = (
            diagnosis.recommendation.action,
            diagnosis.recommendation.reason,
            diagnosis.recommendation.restore_epoch,
        )
        assert (step.action, step.reason, step.restore_epoch) == expected
        assert step.rules == [signal.rule for signal in diagnosis.signals]
    assert any(step.action is not Action.CONTINUE for step in result.steps)
