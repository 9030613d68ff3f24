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
import re
import shutil
import sys
from itertools import pairwise
from pathlib import Path
from types import ModuleType
from typing import Any

import _corpus
import diagnosis
import pytest
from _corpus import Curve, cut, should_stop, split

from trainops.core import TaskType

BENCH = Path(__file__).resolve().parents[2] / "bench"
FRAMEWORKS = {"lightning", "keras", "transformers"}
"""The families whose runs report through trainops' framework integrations and are read back from it."""


@pytest.fixture(scope="module")
def corpus() -> list[Curve]:
    return _corpus.load()


@pytest.fixture(scope="module")
def generate() -> ModuleType:
    sys.path.insert(0, str(BENCH / "curves"))
    try:
        return importlib.import_module("generate")
    finally:
        sys.path.remove(str(BENCH / "curves"))


def test_the_corpus_is_what_the_issue_asked_for(corpus: list[Curve]) -> None:
    assert len(corpus) >= 400
    # the vision families' runs are shorter (YOLO 30 to 60 epochs, timm 40 to 100), as such fits are
    assert min(curve.planned for curve in corpus if curve.family not in {"timm", "yolo"}) >= 60
    assert min(curve.planned for curve in corpus) >= 30
    for curve in corpus:
        assert len(curve.train_loss) == len(curve.val_loss) == curve.planned, curve.id
    assert {curve.family for curve in corpus} == {
        "digits",
        "breast_cancer",
        "wine",
        "diabetes",
        "strategy",
        "schedules",
        "strategy_wide",
        "timm",
        "yolo",
    } | FRAMEWORKS
    diverged = [curve.id for curve in corpus if any(not math.isfinite(value) for value in curve.val_loss)]
    assert len(diverged) >= 5, "some learning rates must diverge to NaN"
    archetypes = {curve.config["archetype"] for curve in corpus}
    assert {"overfit", "slow", "unstable"} <= archetypes


def test_every_framework_family_holds_every_archetype_and_both_answers(
    corpus: list[Curve], generate: ModuleType
) -> None:
    for family in FRAMEWORKS:
        curves = [curve for curve in corpus if curve.family == family]
        assert len(curves) >= 20, family
        assert {curve.config["archetype"] for curve in curves} == set(generate.ARCHETYPES), family
        answers = [case.should_stop for case in cut(curves)]
        # judged on validation accuracy (their classification runs), a run gains little late: Hugging Face's
        # cases are 83% stop
        assert 0.15 < sum(answers) / len(answers) < 0.85, f"{family}: stop and continue must both be common"


def test_every_family_added_since_holds_every_archetype_and_both_answers(
    corpus: list[Curve], generate: ModuleType
) -> None:
    for family, runs in (generate.LATER_RUNS | generate.VISION_RUNS).items():
        curves = [curve for curve in corpus if curve.family == family]
        assert len(curves) == runs, family
        assert {curve.config["archetype"] for curve in curves} == set(generate.ARCHETYPES), family
        answers = [case.should_stop for case in cut(curves)]
        # market curves mostly reach their best early (the strategy family's cases: 78% stop), so this bound is
        # looser than the framework families'
        assert 0.1 < sum(answers) / len(answers) < 0.9, f"{family}: stop and continue must both be common"


def _rates(run: dict[str, Any]) -> list[float]:
    """A corpus run's recorded learning rates, up to where it went non-finite."""
    rates = run["learning_rate"]
    return rates[: rates.index(None)] if None in rates else rates


def _torch_rates(config: dict[str, Any], planned: int) -> list[float] | None:
    """The rates torch's own scheduler for ``config``'s schedule sets, stepped once per epoch (None: no such one)."""
    import torch

    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=config["learning_rate"])
    schedulers = torch.optim.lr_scheduler
    match config["schedule"]:
        case "multistep":
            scheduler: Any = schedulers.MultiStepLR(optimizer, config["milestones"], config["gamma"])
        case "cosine":
            scheduler = schedulers.CosineAnnealingLR(optimizer, planned)
        case "restarts":
            scheduler = schedulers.CosineAnnealingWarmRestarts(optimizer, config["cycle_epochs"], config["cycle_mult"])
        case "one_cycle":
            peak, rise = config["learning_rate"], config["warmup_fraction"]
            scheduler = schedulers.OneCycleLR(
                optimizer, peak, total_steps=planned, pct_start=rise, cycle_momentum=False
            )
        case _:
            return None
    rates = []
    for _ in range(planned):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return rates


def test_the_schedules_family_records_the_rates_its_schedules_set() -> None:
    runs = [run for run in json.loads(_corpus.CORPUS.read_text())["runs"] if run["family"] == "schedules"]
    assert {run["config"]["schedule"] for run in runs} == {
        "multistep",
        "cosine",
        "warmup_linear",
        "warmup_cosine",
        "restarts",
        "one_cycle",
    }
    for run in runs:
        config, rates = run["config"], _rates(run)
        assert rates, run["id"]  # an unstable run may go non-finite in its first epoch
        expected = _torch_rates(config, run["planned"])
        if expected is not None:
            assert rates == pytest.approx(expected[: len(rates)], rel=1e-4, abs=1e-12), run["id"]
        else:  # warm-up: a linear rise to the peak, then a fall towards 0 by the planned end
            warmup, peak = config["warmup_epochs"], config["learning_rate"]
            rise = [peak * (epoch + 1) / warmup for epoch in range(warmup)]
            assert rates[:warmup] == pytest.approx(rise[: len(rates)], rel=1e-4), run["id"]
            fall = rates[warmup - 1 :]
            assert all(later <= earlier for earlier, later in pairwise(fall)), run["id"]
            if len(rates) == run["planned"]:
                assert rates[-1] < 0.1 * peak, run["id"]


def test_the_yolo_family_keeps_the_map50_trainops_judges_detection_by() -> None:
    runs = [run for run in json.loads(_corpus.CORPUS.read_text())["runs"] if run["family"] == "yolo"]
    assert len(runs) == 48
    for run in runs:
        scores = [value for value in run["val_map50"] if value is not None]
        assert len(run["val_map50"]) == run["planned"], run["id"]
        assert scores and all(0.0 <= value <= 1.0 for value in scores), run["id"]
    # most of these small detectors score 0 until they first find a box, and most find one in the end
    assert sum(run["val_map50"][0] == 0 for run in runs) > 24
    assert sum(max(value for value in run["val_map50"] if value is not None) > 0.5 for run in runs) > 24


def test_each_run_is_judged_on_the_metric_its_task_has_trainops_monitor(corpus: list[Curve]) -> None:
    judged = {(curve.family, curve.task, curve.policy.monitor, curve.policy.resolved_mode) for curve in corpus}
    tabular = TaskType.TABULAR_CLASSIFICATION
    assert judged == {
        *((family, None, "val_loss", "min") for family in ("breast_cancer", "diabetes", "digits", "wine")),
        *((family, None, "val_loss", "min") for family in ("schedules", "strategy", "strategy_wide")),
        *((family, TaskType.REGRESSION, "val_loss", "min") for family in ("keras", "lightning", "transformers")),
        ("keras", tabular, "val_accuracy", "max"),
        ("lightning", tabular, "val_accuracy", "max"),
        ("transformers", TaskType.TEXT_CLASSIFICATION, "val_accuracy", "max"),
        ("timm", TaskType.IMAGE_CLASSIFICATION, "val_accuracy", "max"),
        ("yolo", TaskType.OBJECT_DETECTION, "mAP50", "max"),
    }
    yolo = next(curve for curve in corpus if curve.family == "yolo" and max(curve.val_map50 or ()) > 0.5)
    assert yolo.objective == tuple(-score for score in yolo.val_map50 or ())  # lower is better, as for a loss
    case = cut([yolo])[-1]
    best = min(case.objective)
    assert case.should_stop is not any(later < best - 0.01 * abs(best) for later in yolo.objective[case.seen :])


def test_the_strategy_wide_family_trains_every_market_and_the_pipelines_schedulers(generate: ModuleType) -> None:
    runs = [run for run in json.loads(_corpus.CORPUS.read_text())["runs"] if run["family"] == "strategy_wide"]
    markets = {
        (run["config"]["strategy"], tuple(run["config"]["symbols"]), tuple(run["config"]["timeframes"])) for run in runs
    }
    assert markets == {(market.strategy, market.symbols, market.timeframes) for market in generate.MARKETS}
    assert {"EURUSD", "GOOG"} <= {symbol for _, symbols, _ in markets for symbol in symbols}
    assert {"1h", "4h", "1d", "1w"} <= {timeframe for _, _, timeframes in markets for timeframe in timeframes}
    for run in runs:
        scheduler, rates = run["config"]["lr_scheduler"], _rates(run)
        if scheduler is None:
            assert set(rates) == {run["config"]["learning_rate"]}, run["id"]
        elif scheduler["type"] == "step":
            step = scheduler["step_size"]
            assert rates[::step] == pytest.approx(
                [run["config"]["learning_rate"] * 0.5**k for k in range(len(rates[::step]))], rel=1e-4
            ), run["id"]
        else:  # exponential and reduce-on-plateau only ever lower it
            assert all(later <= earlier for earlier, later in pairwise(rates)), run["id"]


def test_the_corpus_records_its_generator_and_seed_and_matches_them(corpus: list[Curve], generate: ModuleType) -> None:
    header = json.loads((BENCH / "curves" / "corpus.json").read_text())
    assert header["generator"] == "bench/curves/generate.py"
    assert header["seed"] == generate.SEED
    assert header["format"] == 2
    assert list(header["versions"]) == [family for family in generate.families() if family in header["versions"]]
    for family, recorded in header["versions"].items():  # each family's versions of what trained it
        assert set(recorded) == set(generate.packages(family)), family
    assert {"torch", "scikit-learn", "lightning"} == set(header["versions"]["lightning"])
    assert {"torch", "ultralytics"} == set(header["versions"]["yolo"])

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


def test_adding_a_family_moves_no_other_family_across_the_split(corpus: list[Curve]) -> None:
    without = [curve for curve in corpus if curve.family != "transformers"]
    calibration, held_out = split(corpus)

    assert split(without) == (
        [curve for curve in calibration if curve.family != "transformers"],
        [curve for curve in held_out if curve.family != "transformers"],
    )


def test_the_generator_retrains_only_the_named_families_and_keeps_the_rest(
    generate: ModuleType, tmp_path: Path
) -> None:
    out = tmp_path / "corpus.json"
    shutil.copy(BENCH / "curves" / "corpus.json", out)
    before = json.loads(out.read_text())

    generate.main(["--families", "wine", "--limit", "1", "--jobs", "1", "--out", str(out)])  # wine-000 alone

    after = json.loads(out.read_text())
    others = [run for run in before["runs"] if run["family"] != "wine"]
    assert [run for run in after["runs"] if run["family"] != "wine"] == others  # untouched, in the same order
    retrained = next(run for run in before["runs"] if run["id"] == "wine-000")
    assert [run for run in after["runs"] if run["family"] == "wine"] == [retrained]  # deterministic: the same numbers


def test_the_generator_keeps_each_familys_versions_and_refuses_another_seed(
    generate: ModuleType, tmp_path: Path
) -> None:
    out = tmp_path / "corpus.json"
    corpus = json.loads((BENCH / "curves" / "corpus.json").read_text())
    corpus["versions"]["keras"] = {"torch": "2.0.0", "scikit-learn": "1.0", "keras": "2.0.0"}
    out.write_text(json.dumps(corpus))

    kept, recorded = generate.kept_runs(out, corpus["seed"], ["wine"])

    assert {run["family"] for run in kept} == {run["family"] for run in corpus["runs"]} - {"wine"}
    assert recorded["keras"] == {"torch": "2.0.0", "scikit-learn": "1.0", "keras": "2.0.0"}  # kept as it was
    assert "wine" not in recorded
    with pytest.raises(SystemExit, match="generated with seed"):
        generate.kept_runs(out, corpus["seed"] + 1, ["keras"])


def test_fresh_runs_of_another_seed_start_a_file_of_their_own_and_are_scored_whole(
    generate: ModuleType, tmp_path: Path
) -> None:
    out = tmp_path / "fresh.json"

    generate.main(["--seed", "777", "--families", "wine", "--limit", "1", "--jobs", "1", "--out", str(out)])

    fresh = json.loads(out.read_text())
    assert fresh["seed"] == 777
    assert [run["family"] for run in fresh["runs"]] == ["wine"]  # no file yet: only the named family
    own = json.loads((BENCH / "curves" / "corpus.json").read_text())
    assert fresh["runs"][0]["val_loss"] != next(run for run in own["runs"] if run["id"] == "wine-000")["val_loss"]

    printed = diagnosis.fresh([out], diagnosis.tools())
    assert f"fresh runs: 1 from {out}: 3 cases" in printed  # every cut of every run: no split
    assert re.search(r"^wine\s+3\s+(\d\.\d{3}|nan)\s", printed, re.MULTILINE)  # nan: no case where stopping was right

    fresh["seed"] = own["seed"]
    out.write_text(json.dumps(fresh))
    with pytest.raises(SystemExit, match="the corpus' own seed"):
        diagnosis.fresh([out], diagnosis.tools())


def test_a_corpus_of_the_first_format_gives_each_family_its_part_of_the_versions(
    generate: ModuleType, tmp_path: Path
) -> None:
    out = tmp_path / "corpus.json"
    versions = {"torch": "2.13.0", "scikit-learn": "1.9.1", "lightning": "2.6", "keras": "3.1", "transformers": "5"}
    runs = [{"id": "keras-000", "family": "keras"}, {"id": "wine-000", "family": "wine"}]
    out.write_text(json.dumps({"format": 1, "seed": 1, "versions": versions, "runs": runs}))

    _, recorded = generate.kept_runs(out, 1, ["wine"])

    assert recorded == {"keras": {"torch": "2.13.0", "scikit-learn": "1.9.1", "keras": "3.1"}}


def test_the_vision_families_need_the_vision_environment(generate: ModuleType) -> None:
    assert generate.packages("timm") == ("torch", "timm")
    assert generate.packages("yolo") == ("torch", "ultralytics")
    assert generate.packages("wine") == ("torch", "scikit-learn")
    assert not generate.installed("timm")  # this environment has no timm: .venv-vision trains those runs
    with pytest.raises(SystemExit, match=r"cannot train timm: .*\.venv-vision/bin/python bench/curves/generate.py"):
        generate.main(["--families", "timm", "--limit", "1"])


HELD_OUT_FLOOR = 0.89
"""What the defaults score on the held-out half, rounded down: judged on the metric each run's task monitors in
use, they keep the raised goal's false stops (<= 7%) but not the first goal's balanced accuracy (0.90);
docs/diagnosis.md has the figures."""


def test_trainops_holds_its_held_out_figures_ahead_of_every_other_tool(corpus: list[Curve]) -> None:
    _, held_out = split(corpus)
    cases = cut(held_out)
    scores = {name: diagnosis.score(verdict, cases) for name, verdict in diagnosis.tools().items()}
    ours = scores.pop(diagnosis.TRAINOPS)

    assert ours.balanced_accuracy >= HELD_OUT_FLOOR
    assert ours.false_stop_rate <= diagnosis.TARGET_FALSE_STOPS
    for name, theirs in scores.items():
        assert ours.balanced_accuracy > theirs.balanced_accuracy, name


def test_the_baselines_docstring_examples() -> None:
    result = doctest.testmod(importlib.import_module("_baselines"))
    assert result.attempted > 0
    assert result.failed == 0
