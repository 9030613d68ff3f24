"""``bench/diagnosis_learned.py``: its scoring, its hindsight bound, and the rows it reads off the corpus."""

from __future__ import annotations

import diagnosis_learned as learned
import numpy as np
from _corpus import cut, load
from diagnosis import TARGET_FALSE_STOPS

from trainops.core import Action, MonitorPolicy, analyze
from trainops.core.metric_definitions import policy_for_task


def test_balanced_accuracy_is_the_mean_of_the_right_stops_and_the_right_continues() -> None:
    truth = np.array([True, True, True, True, False, False])
    said = np.array([True, True, True, False, True, False])

    accuracy, false_stops = learned.balanced(truth, said)

    assert false_stops == 0.5  # one of the two continues told to stop
    assert accuracy == (0.75 + 0.5) / 2


def test_the_hindsight_threshold_is_the_best_one_within_the_false_stop_bound() -> None:
    truth = np.array([True] * 10 + [False] * 20)
    # the stops score 0.2-0.65; the continues 0.1-0.575, two of them above every stop but the best
    probability = np.concatenate([np.linspace(0.2, 0.65, 10), np.linspace(0.1, 0.575, 20)])

    accuracy, false_stops, threshold = learned.hindsight(truth, probability)

    assert false_stops <= TARGET_FALSE_STOPS
    assert (accuracy, false_stops) == learned.balanced(truth, probability >= threshold)
    for other in np.linspace(0.05, 0.95, 91):
        score = learned.balanced(truth, probability >= other)
        assert score[1] > TARGET_FALSE_STOPS or score[0] <= accuracy  # none within the bound does better


def test_the_rule_readings_start_from_trainops_verdict_and_the_loss_readings_end_them() -> None:
    curves = load()
    families = sorted({curve.family for curve in curves})
    cases = cut([next(curve for curve in curves if curve.family == family) for family in families])

    table = learned.table(cases)

    assert len(table.truth) > 0 and set(table.families) <= set(families)
    assert (table.rule[:, 0] == table.said).all()  # the rule's own answer is the first reading
    verdicts = [
        analyze(
            case.records,
            policy_for_task(MonitorPolicy(), case.curve.task, case.records),
            total_epochs_planned=case.planned,
        ).recommendation.action
        is not Action.CONTINUE
        for case in cases
        if learned.loss_readings(case) is not None
    ]
    assert table.said.tolist() == verdicts  # as trainops says it, case by case
    rows = table.readings("rule")
    assert rows.shape == (len(table.truth), table.rule.shape[1] + table.loss.shape[1])
    assert (rows[:, table.rule.shape[1] :] == table.loss).all()
    assert np.isfinite(rows).all()
