"""The stop/continue benchmark's ground: the committed corpus, truth by hindsight, the split, and the goal.

``bench/diagnosis.py`` prints the full table; these tests keep what it stands on honest: the corpus is what the
issue asked for and what its generator makes, the truth is computed as documented, no run is on both sides of the
split, and trainops' defaults still reach the goal on the held-out half, ahead of every other tool.
"""

from __future__ import annotations

import doctest
import importlib
import json
import math
import sys
from pathlib import Path

import _corpus
import diagnosis
import pytest
from _corpus import Curve, cut, should_stop, split

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def corpus() -> list[Curve]:
    return _corpus.load()


def test_the_corpus_is_what_the_issue_asked_for(corpus: list[Curve]) -> None:
    assert len(corpus) >= 150
    assert min(curve.planned for curve in corpus) >= 60
    for curve in corpus:
        assert len(curve.train_loss) == len(curve.val_loss) == curve.planned, curve.id
    assert {curve.family for curve in corpus} == {"digits", "breast_cancer", "wine", "diabetes", "strategy"}
    diverged = [curve.id for curve in corpus if any(not math.isfinite(value) for value in curve.val_loss)]
    assert len(diverged) >= 5, "some learning rates must diverge to NaN"
    archetypes = {curve.config["archetype"] for curve in corpus}
    assert {"overfit", "slow", "unstable"} <= archetypes


def test_the_corpus_records_its_generator_and_seed_and_matches_them(corpus: list[Curve]) -> None:
    sys.path.insert(0, str(BENCH / "curves"))
    try:
        generate = importlib.import_module("generate")
    finally:
        sys.path.remove(str(BENCH / "curves"))
    header = json.loads((BENCH / "curves" / "corpus.json").read_text())
    assert header["generator"] == "bench/curves/generate.py"
    assert header["seed"] == generate.SEED

    specs = {spec["id"]: spec for spec in generate.all_specs(header["seed"])}
    assert set(specs) == {curve.id for curve in corpus}
    for curve in corpus:
        spec = specs[curve.id]
        assert curve.planned == spec["epochs"]
        assert curve.config == {key: value for key, value in spec.items() if key not in ("id", "family", "epochs")}


NAN = math.nan


@pytest.mark.parametrize(
    ("val", "seen", "stop"),
    [
        pytest.param([1.0, 0.9, 0.8, 0.7], 2, False, id="the-future-improves-by-far"),
        pytest.param([1.0, 0.9, 0.895, 0.894], 2, True, id="under-one-percent-is-not-worth-it"),
        pytest.param([1.0, 0.9, 0.89, 0.95], 2, False, id="just-over-one-percent-is"),
        pytest.param([1.0, 0.9, 0.8, 0.85], 3, True, id="the-best-is-behind"),
        pytest.param([1.0, 0.9, NAN, NAN], 3, True, id="gone-non-finite"),
        pytest.param([1.0, 0.9, 0.95, NAN], 3, True, id="no-finite-future-beats-it"),
        pytest.param([1.0, 0.9, 0.5, 0.4], 4, True, id="nothing-left"),
    ],
)
def test_truth_by_hindsight(val: list[float], seen: int, stop: bool) -> None:
    assert should_stop(val, val, seen) is stop


def test_the_split_is_by_run_and_keeps_every_family_on_both_sides(corpus: list[Curve]) -> None:
    calibration, held_out = split(corpus)

    assert not {curve.id for curve in calibration} & {curve.id for curve in held_out}
    assert len(calibration) + len(held_out) == len(corpus)
    assert {curve.family for curve in calibration} == {curve.family for curve in held_out}
    assert split(corpus) == (calibration, held_out)


def test_trainops_reaches_the_goal_on_the_held_out_half_ahead_of_every_other_tool(corpus: list[Curve]) -> None:
    _, held_out = split(corpus)
    cases = cut(held_out)
    scores = {name: diagnosis.score(verdict, cases) for name, verdict in diagnosis.tools().items()}
    ours = scores.pop(diagnosis.TRAINOPS)

    assert ours.balanced_accuracy >= diagnosis.GOAL_BALANCED_ACCURACY
    assert ours.false_stop_rate <= diagnosis.GOAL_FALSE_STOPS
    for name, theirs in scores.items():
        assert ours.balanced_accuracy > theirs.balanced_accuracy, name


def test_the_baselines_docstring_examples() -> None:
    result = doctest.testmod(importlib.import_module("_baselines"))
    assert result.attempted > 0
    assert result.failed == 0
