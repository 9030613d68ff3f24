"""The tables ``bench/diagnosis.py`` prints: savings against regret, bootstrap intervals, and leave one family out.

The pure pieces are checked on hand-made runs whose answers can be worked out by hand; one test runs every table
over a few real runs of every family of the corpus, whatever families it holds.
"""

from __future__ import annotations

import doctest
import importlib
import math
import re
from collections.abc import Sequence
from functools import partial

import _corpus
import diagnosis
import pytest
from _baselines import keras_early_stopping
from _corpus import Case, Curve, cut, split
from _savings import REGRET_CAP_PCT, Outcome, keep_last, never_stop, oracle, regret_pct, summarize, walk
from diagnosis import Params, Score, Trial

NAN = math.nan


def curve(val: Sequence[float], *, family: str = "f", run: str = "x") -> Curve:
    return Curve(id=run, family=family, config={}, planned=len(val), train_loss=tuple(val), val_loss=tuple(val))


# --- Savings against regret ---------------------------------------------------------------------------------------


def test_the_oracle_stops_after_the_final_best_with_no_regret() -> None:
    run = curve([1.0, 0.6, 0.5, 0.7, 0.5, 0.8, 0.9, 1.0])  # the best, 0.5, first reached at epoch 2

    result = oracle(run)

    assert (result.trained, result.kept, result.regret_pct, result.too_soon) == (3, 2, 0.0, False)
    assert result.saved == pytest.approx(5 / 8)


def test_never_stopping_saves_nothing_and_regrets_nothing_when_the_best_is_last() -> None:
    result = walk(curve([1.0, 0.8, 0.7, 0.65, 0.6]), never_stop)

    assert (result.trained, result.kept, result.saved, result.regret_pct) == (5, 4, 0.0, 0.0)


def test_never_stopping_regrets_the_overfitting_it_trains_through() -> None:
    result = walk(curve([1.0, 0.5, 0.6, 0.75]), never_stop)

    assert result.saved == 0.0
    assert result.regret_pct == pytest.approx(50.0)  # keeps 0.75 where 0.5 was there to keep
    assert result.best_kept_regret_pct == 0.0


def test_a_rule_that_restores_nothing_keeps_the_epoch_it_stopped_at() -> None:
    run = curve([1.0, 0.8, 0.9, 0.95, 1.0, 1.1, 1.2, 1.3])  # Keras, patience 3: best at 1, stops at epoch 4

    result = walk(run, keep_last(partial(keras_early_stopping, patience=3)))

    assert (result.trained, result.kept) == (5, 4)
    assert result.saved == pytest.approx(3 / 8)
    assert result.regret_pct == pytest.approx(25.0)
    assert result.best_kept_regret_pct == 0.0
    assert not result.too_soon  # nothing after epoch 4 beats 0.8


def test_a_stop_before_a_later_fall_is_too_soon() -> None:
    run = curve([1.0, 0.8, 0.9, 0.95, 1.0, 0.7, 0.6, 0.5])  # patience 3 stops at epoch 4, before the fall

    result = walk(run, keep_last(partial(keras_early_stopping, patience=3)))

    assert (result.trained, result.too_soon) == (5, True)
    assert result.best_kept_regret_pct == pytest.approx(60.0)  # 0.8 against 0.5


def test_trainops_restores_the_best_when_it_stops_a_diverged_run() -> None:
    run = curve([1.0, 0.5, 0.4, 0.45, NAN, NAN, NAN, NAN, NAN, NAN])

    result = diagnosis.trainops_outcome()(run)

    assert result.trained == 5  # stops at the first NaN
    assert (result.kept, result.regret_pct) == (2, 0.0)


def test_a_non_finite_model_kept_is_lost_and_counts_at_the_cap() -> None:
    assert regret_pct([1.0, 0.5, NAN], kept=2) == math.inf
    good = Outcome("a", "f", planned=4, trained=4, kept=3, regret_pct=2.0, best_kept_regret_pct=0.0, too_soon=False)
    lost = Outcome("b", "f", planned=4, trained=3, kept=2, regret_pct=math.inf, best_kept_regret_pct=0.0, too_soon=True)
    exploded = Outcome(
        "c", "f", planned=4, trained=4, kept=3, regret_pct=1e12, best_kept_regret_pct=0.0, too_soon=False
    )

    summary = summarize([good, lost, exploded])

    assert (summary.lost, summary.costly, summary.too_soon) == (1, 1.0, pytest.approx(1 / 3))
    assert summary.mean_regret == pytest.approx((2.0 + REGRET_CAP_PCT + REGRET_CAP_PCT) / 3)
    assert (summary.median_regret, summary.p90_regret) == (1e12, math.inf)  # order statistics stay uncapped


def test_a_run_with_no_finite_loss_has_nothing_to_regret_and_the_oracle_stops_at_once() -> None:
    run = curve([NAN] * 5)

    assert walk(run, never_stop).regret_pct == 0.0
    assert (oracle(run).trained, oracle(run).saved) == (1, pytest.approx(4 / 5))


def test_the_savings_docstring_examples() -> None:
    result = doctest.testmod(importlib.import_module("_savings"))
    assert result.attempted > 0
    assert result.failed == 0


def test_a_kept_epoch_the_run_never_trained_is_refused() -> None:
    with pytest.raises(ValueError, match="kept epoch 3 must be one of the 2 trained"):
        walk(curve([1.0, 0.9, 0.8, 0.7]), lambda case: 3 if case.seen == 2 else None)


# --- Bootstrap intervals ------------------------------------------------------------------------------------------


def test_every_bootstrap_interval_holds_its_point_estimate() -> None:
    runs = [
        {"a": Score(cases=3, stops=1, right_stops=1, false_stops=0), "b": Score(3, 2, 1, 1)},
        {"a": Score(3, 2, 1, 0), "b": Score(3, 1, 0, 0)},
        {"a": Score(3, 1, 1, 1), "b": Score(3, 2, 2, 0)},
        {"a": Score(3, 2, 2, 0), "b": Score(3, 1, 1, 1)},
    ]

    estimates = diagnosis.estimates(runs, rounds=500)

    for name, estimate in estimates.items():
        low, high = estimate.accuracy
        assert low <= estimate.score.balanced_accuracy <= high, name
        low, high = estimate.false_stops
        assert low <= estimate.score.false_stop_rate <= high, name
    assert estimates["a"].score == diagnosis.total(run["a"] for run in runs)


def test_an_interval_ignores_rounds_where_the_figure_is_undefined() -> None:
    assert diagnosis.interval([NAN, 0.5, 0.5, NAN]) == (0.5, 0.5)
    assert all(math.isnan(bound) for bound in diagnosis.interval([NAN]))


# --- Leave one family out -----------------------------------------------------------------------------------------

EARLY = [1.0, 0.5, 0.5, 0.5]
"""Cut after 1, 2 and 3 of 4 epochs: continue, stop, stop."""
LATE = [1.0, 0.9, 0.8, 0.5]
"""Continue at every cut."""


def stops_from(params: Params, cases: Sequence[Case]) -> list[bool]:
    """A fake tool with one parameter: it says stop from the ``from_seen``-th epoch on."""
    return [case.seen >= params["from_seen"] for case in cases]


def lofo(calibration_b: Sequence[float]) -> dict[str, diagnosis.LeftOut]:
    calibration = cut(
        [
            curve(EARLY, family="a", run="a-cal"),
            curve(calibration_b, family="b", run="b-cal"),
            curve(calibration_b, family="b", run="b-cal-2"),
        ]
    )
    held_out = cut([curve(EARLY, family="a", run="a-held"), curve(LATE, family="b", run="b-held")])
    trials = diagnosis.search(calibration, stops_from, grid={"from_seen": (2, 5)})
    return {r.family: r for r in diagnosis.leave_one_family_out(calibration, held_out, trials, stops_from)}


def test_leaving_a_family_out_never_lets_its_runs_choose() -> None:
    # b's calibration runs either stop early (from_seen=2 is right) or never (5 is): a's choice follows them...
    early, late = lofo(EARLY), lofo(LATE)
    assert (early["a"].params, late["a"].params) == ({"from_seen": 2}, {"from_seen": 5})
    # ... and b's own choice, made on a's runs alone, and its held-out score are the same whatever b's calibration
    # runs say (only "all runs", which scores them, differs)
    assert early["b"].params == late["b"].params == {"from_seen": 2}
    assert early["b"].held_out == late["b"].held_out
    assert early["b"].calibrated_on == 3  # a's calibration run's three cuts, none of b's


def test_leave_one_family_out_scores_the_family_held_out_and_in_all() -> None:
    results = lofo(EARLY)

    assert results["b"].held_out == Score(cases=3, stops=0, right_stops=0, false_stops=2)  # b-held: LATE
    assert results["b"].all_runs.cases == 9


def test_the_ranking_puts_false_stops_within_the_goal_first() -> None:
    cases = cut([curve(EARLY, run="e"), curve(LATE, run="l")])
    trials = [Trial({"t": 0}, (True,) * 6), Trial({"t": 1}, (False, True, True, False, False, False))]

    (best, s), _ = diagnosis.ranked(trials, cases)

    assert best.params == {"t": 1}
    assert s.false_stop_rate == 0.0


# --- Every table over the real corpus -----------------------------------------------------------------------------


def test_the_printed_tables_cover_every_family_of_the_corpus() -> None:
    calibration, held_out = split(_corpus.load())
    families = sorted({c.family for c in held_out})
    few_held = [next(c for c in held_out if c.family == family) for family in families]
    few_calibration = [next(c for c in calibration if c.family == family) for family in families]
    held_cases, calibration_cases = cut(few_held), cut(few_calibration)
    verdicts = diagnosis.tools()
    grid = {name: (values[0],) for name, values in diagnosis.GRID.items()}  # one setting: the wiring, not the search

    per_family = diagnosis.family_estimates(
        held_cases, {name: verdicts[name] for name in (*diagnosis.ANCHORS, diagnosis.TRAINOPS)}, rounds=20
    )
    trials = diagnosis.search(calibration_cases, grid=grid)
    tables = {
        "families": diagnosis.families_table(per_family),
        "lofo": diagnosis.lofo_table(diagnosis.leave_one_family_out(calibration_cases, held_cases, trials), per_family),
        "savings": diagnosis.savings_table(diagnosis.savings(few_held, diagnosis.walkers())),
    }

    for name, text in tables.items():
        for family in families:
            assert re.search(rf"^{family} ", text, re.MULTILINE), (name, family)
    assert "overall (held-out half)" in tables["families"]
    assert "overall (held-out half)" in tables["savings"]
    assert diagnosis.TRAINOPS in tables["savings"] and diagnosis.ORACLE in tables["savings"]
    assert "calibration half" in diagnosis.calibrate(calibration_cases, trials)
