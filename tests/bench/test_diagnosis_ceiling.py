"""``bench/diagnosis_ceiling.py``: its weighing of futures, its oracle, and the futures it trains."""

from __future__ import annotations

import math

import diagnosis_ceiling as ceiling
import pytest
from _corpus import Case, cut, load
from diagnosis import TARGET_FALSE_STOPS
from generate import train_sklearn


def test_with_one_future_a_case_is_scored_as_the_corpus_scores_it() -> None:
    # four cases where stopping was right (three told to stop), two where continuing was (one told to stop)
    pairs = [(1.0, 1.0), (1.0, 1.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0), (0.0, 0.0)]

    scored = ceiling.weigh(pairs)

    assert scored.false_stops == 0.5
    assert scored.balanced_accuracy == (0.75 + 0.5) / 2


def test_a_case_whose_futures_disagree_counts_in_both_classes_by_its_share() -> None:
    # one case, stopping right in 3 of its 4 futures, told to stop: right for 0.75 of a stop, false for 0.25
    scored = ceiling.weigh([(0.75, 1.0), (0.0, 0.0)])

    assert scored.false_stops == pytest.approx(0.25 / 1.25)
    assert scored.balanced_accuracy == pytest.approx((1.0 + 1 - 0.25 / 1.25) / 2)


def _forked(q: float, futures: int = 4) -> ceiling.Forked:
    case = cut(load()[:1])[0]  # the oracle reads q alone; any case will do
    return ceiling.Forked(case, round(q * futures), futures)


def test_the_oracle_takes_the_best_threshold_whose_false_stops_are_within_the_bound() -> None:
    cases = [_forked(q) for q in (1.0, 1.0, 0.75, 0.5, 0.25, 0.0, 0.0, 0.0)]

    best, threshold = ceiling.ceiling(cases)

    assert best.false_stops <= TARGET_FALSE_STOPS
    for other in (0.0, 0.25, 0.5, 0.75, 1.0):
        scored = ceiling.weigh((c.q, float(c.q >= other)) for c in cases)
        assert scored.false_stops > TARGET_FALSE_STOPS or scored.balanced_accuracy <= best.balanced_accuracy
    # continuing is right in 4.5 cases' worth of futures: stopping at q >= 0.75 is false in 0.25 of them (5.6%),
    # at q >= 0.5 in 0.75 (16.7%)
    assert threshold == 0.75
    assert best.false_stops == pytest.approx(0.25 / 4.5)


def test_futures_share_the_run_up_to_their_cut_and_leave_the_run_as_it_trains_alone() -> None:
    curve = min((c for c in load() if c.family == "wine"), key=lambda c: c.planned)
    spec = ceiling.spec_of(curve)

    run, trained = ceiling.train_futures(ceiling._json(curve), futures=2)

    assert run == curve.id
    alone = train_sklearn(spec)
    assert set(trained) == {case.seen for case in cut([curve])}
    for seen, futures in trained.items():
        assert futures[0] == alone  # forking the loop drew nothing from the run's own generator
        assert len(futures) == 3
        for future in futures[1:]:
            assert future["val_loss"][:seen] == alone["val_loss"][:seen]
            assert future["val_loss"][seen:] != alone["val_loss"][seen:]  # another draw of batches


def test_every_future_of_a_case_gives_it_an_answer() -> None:
    curve = min((c for c in load() if c.family == "wine"), key=lambda c: c.planned)
    _, trained = ceiling.train_futures(ceiling._json(curve), futures=2)

    cases = ceiling.forked_cases([curve], {curve.id: trained})

    assert [c.case.seen for c in cases] == sorted(trained)
    for forked in cases:
        futures = [ceiling._curve(curve, future) for future in trained[forked.case.seen]]
        assert forked.futures == 3
        assert forked.stops == sum(Case(future, forked.case.seen).should_stop for future in futures)
        assert forked.case.curve.val_loss[: forked.case.seen] == futures[0].val_loss[: forked.case.seen]
        assert not math.isnan(forked.q)


def test_the_state_is_read_at_every_cut_without_changing_the_run() -> None:
    import diagnosis_state as state

    curve = min((c for c in load() if c.family == "wine"), key=lambda c: c.planned)

    run, history, readings = state.train_reading(ceiling._json(curve))

    assert run == curve.id
    assert history == train_sklearn(ceiling.spec_of(curve))  # reading the state draws nothing from the run
    assert set(readings) == {case.seen for case in cut([curve])}
    for reading in readings.values():
        assert len(reading) == len(state.STATE_READINGS)
        assert all(math.isfinite(value) for value in reading)
        assert 0 <= reading[3] <= reading[5] <= 1  # wrong and about to flip right: a part of the wrong ones
