"""Stop or continue? trainops' recommendation against other tools' rules, on real training curves.

Every run of the corpus (``bench/curves/corpus.json``, rebuilt by ``bench/curves/generate.py``) is cut after 25%,
50% and 75% of its planned epochs. At each cut a tool sees only the epochs so far and the planned number of
epochs, and says stop or continue. The right answer is known by hindsight (``bench/_corpus.py``): stop when the
epochs left never improve the best value of the run's monitored metric by more than 1%, or the run has gone
non-finite. The monitored metric is the one trainops judged the run by while it trained (its task's: validation
loss, accuracy or mAP50), and Keras' and Lightning's early stopping are given the same.

The corpus is split by run: trainops' defaults were calibrated on one half (``--calibrate`` repeats that search);
the figures that count are on the other, held-out half. For each tool:

- balanced accuracy: the mean of the share of right stops and the share of right continues;
- false stops: of the cases where continuing was right, the share told to stop (a model thrown away);
- missed stops: of the cases where stopping was right, the share told to continue (compute burnt).

The tables (each names the half it is computed on):

- ``--families``: trainops' defaults and every anchor (the other tools' rules, ``bench/_baselines.py``) per family
  of runs and overall, on the held-out half, with 95% bootstrap intervals: the family's held-out runs are resampled
  with replacement (a run's three cuts go together) 2000 times, each tool's verdicts taken once and re-weighted,
  and the interval is the 2.5th to 97.5th percentile of the figure over the rounds where it is defined. Then
  whether trainops' balanced accuracy is above every anchor's in every family.
- ``--calibrate``: the search over the projection's parameters (:data:`GRID`) on the calibration half: the best
  balanced accuracy among the settings whose false stops are within the goal, then the rest.
- ``--lofo`` (leave one family out): for each family, the same search on the calibration half without any of that
  family's runs, and the setting it picks scored on the family's held-out runs, the figure judged against
  :data:`GOAL_LOFO_BALANCED_ACCURACY` and against the best anchor there. Held-out runs because they tuned nothing
  at all: the family's calibration-half runs took no part in this search either, but the rest of trainops' rules
  (everything outside :data:`GRID`) were written with them in view. They are scored too ("all runs": both halves,
  twice the cases) as a steadier, slightly less clean figure. The full grid is used: every setting's verdicts on the
  calibration half are computed once, and each family's choice re-ranks them without the family's cases, so leaving
  out every family costs one search.
- ``--savings``: each held-out run walked epoch by epoch as a live run would be, stopped at the tool's first stop:
  epochs saved and the regret of the model kept (``bench/_savings.py`` defines both), for trainops' defaults
  (``trainops.core.replay``: it restores the best epoch when it says ``stop_and_restore_best``), each anchor (which
  restore nothing: Keras' ``restore_best_weights`` is off by default, Lightning's early stopping keeps no weights;
  the "best kept" columns show what a best-so-far checkpoint would have kept), training to the end, and the oracle.
  Every anchor is asked after every epoch, W&B's on-demand ``diagnose_run`` included: an agent polling it.

    .venv/bin/python bench/diagnosis.py               # the table, held-out and calibration halves (~5 s)
    .venv/bin/python bench/diagnosis.py --by-family   # also trainops per family of runs and per cut
    .venv/bin/python bench/diagnosis.py --bootstrap   # also 95% intervals, resampling the held-out runs (~15 s)
    .venv/bin/python bench/diagnosis.py --families    # also every tool per family, with intervals (~5 s)
    .venv/bin/python bench/diagnosis.py --calibrate   # search the projection's parameters, calibration half (~3 min)
    .venv/bin/python bench/diagnosis.py --lofo        # also the leave-one-family-out figures (one search, ~3 min)
    .venv/bin/python bench/diagnosis.py --savings     # also epochs saved against regret, run by run (~11 s)
    .venv/bin/python bench/diagnosis.py --all         # every table (~4 min on 596 runs)
    .venv/bin/python bench/diagnosis.py --fresh FILE  # also every run of a corpus file of another seed (unseen runs)
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from _baselines import BASELINES
from _corpus import CORPUS, FRACTIONS, Case, Curve, cut, load, split
from _report import table
from _savings import Decision, Outcome, Summary, keep_last, never_stop, oracle, outcome, summarize, walk

from trainops.core import Action, MonitorPolicy, analyze, projection, replay
from trainops.core.metric_definitions import policy_for_task

Verdict = Callable[[Case], bool]
"""True when the tool says stop at this cut."""

GOAL_BALANCED_ACCURACY = 0.90
GOAL_FALSE_STOPS = 0.10
"""The first goal on the held-out half."""
TARGET_BALANCED_ACCURACY = 0.92
TARGET_FALSE_STOPS = 0.07
"""The raised goal on the held-out half, which the per-family and leave-one-family-out tables are read against; its
false-stop bound is the calibration search's, and ``tests/bench`` holds the defaults to it."""
GOAL_LOFO_BALANCED_ACCURACY = 0.88
"""On every family's held-out runs, with the parameters calibrated without that family."""


@dataclass(frozen=True)
class Score:
    cases: int
    stops: int
    """Cases where stopping was right."""
    right_stops: int
    false_stops: int

    @property
    def continues(self) -> int:
        return self.cases - self.stops

    @property
    def stop_recall(self) -> float:
        return self.right_stops / self.stops if self.stops else float("nan")

    @property
    def false_stop_rate(self) -> float:
        return self.false_stops / self.continues if self.continues else float("nan")

    @property
    def missed_stop_rate(self) -> float:
        return 1.0 - self.stop_recall

    @property
    def balanced_accuracy(self) -> float:
        return (self.stop_recall + 1.0 - self.false_stop_rate) / 2.0


def score(verdict: Verdict, cases: Iterable[Case]) -> Score:
    return tally((case.should_stop, verdict(case)) for case in cases)


def tally(answers: Iterable[tuple[bool, bool]]) -> Score:
    """The score of ``(stopping was right, the tool said stop)`` pairs, one per case."""
    total = stops = right = false = 0
    for should_stop, said_stop in answers:
        total += 1
        if should_stop:
            stops += 1
            right += said_stop
        else:
            false += said_stop
    return Score(cases=total, stops=stops, right_stops=right, false_stops=false)


def total(scores: Iterable[Score]) -> Score:
    """The score of several groups of cases together."""
    cases = stops = right = false = 0
    for s in scores:
        cases += s.cases
        stops += s.stops
        right += s.right_stops
        false += s.false_stops
    return Score(cases=cases, stops=stops, right_stops=right, false_stops=false)


def trainops_verdict(policy: MonitorPolicy | None = None, *, planned: bool = True) -> Verdict:
    """trainops' recommendation at the cut; ``planned=False`` hides the planned length (horizon: ``patience``)."""
    policy = policy or MonitorPolicy()

    def verdict(case: Case) -> bool:
        history = case.records
        judged = policy_for_task(policy, case.curve.task, history)
        diagnosis = analyze(
            history, judged, total_epochs_planned=case.planned if planned else None, with_forecast=False
        )
        return diagnosis.recommendation.action is not Action.CONTINUE

    return verdict


TRAINOPS = "trainops (defaults)"


def tools() -> dict[str, Verdict]:
    return {
        **BASELINES,
        "trainops, stop_rule=patience (patience 10)": trainops_verdict(MonitorPolicy(stop_rule="patience")),
        "trainops, planned length hidden": trainops_verdict(planned=False),
        TRAINOPS: trainops_verdict(),
    }


def report(title: str, cases: Sequence[Case], verdicts: dict[str, Verdict]) -> str:
    stops = sum(case.should_stop for case in cases)
    rows = []
    for name, verdict in verdicts.items():
        s = score(verdict, cases)
        rows.append((name, f"{s.balanced_accuracy:.3f}", f"{s.false_stop_rate:.1%}", f"{s.missed_stop_rate:.1%}"))
    header = f"{title}: {len(cases)} cases ({stops} where stopping was right, {len(cases) - stops} continuing)"
    return header + "\n" + table(("tool", "balanced accuracy", "false stops", "missed stops"), rows)


def by_family(cases: Sequence[Case], verdict: Verdict) -> str:
    families: dict[str, list[Case]] = {}
    cuts: dict[str, list[Case]] = {}
    for case in sorted(cases, key=lambda case: case.curve.family):
        families.setdefault(case.curve.family, []).append(case)
        fraction = min(FRACTIONS, key=lambda f: abs(case.seen - f * case.planned))
        cuts.setdefault(f"cut at {fraction:.0%}", []).append(case)
    rows = []
    for name, members in [*families.items(), *sorted(cuts.items())]:
        s = score(verdict, members)
        rows.append(
            (
                name,
                s.cases,
                s.stops,
                f"{s.balanced_accuracy:.3f}",
                f"{s.false_stop_rate:.1%}",
                f"{s.missed_stop_rate:.1%}",
            )
        )
    return table(("group", "cases", "stop right", "balanced accuracy", "false stops", "missed stops"), rows)


def bootstrap(cases: Sequence[Case], verdicts: dict[str, Verdict], rounds: int = 2000, seed: int = 7) -> str:
    """How sure the held-out figures are: resample whole runs (a run's three cuts go together) and recompute.

    Each verdict is taken once; rounds only re-weight them. Reports trainops' balanced accuracy and false-stop
    rate with 95% intervals, and how often trainops beats each other tool on the same resampled runs.
    """
    by_run: dict[str, list[tuple[bool, dict[str, bool]]]] = {}
    for case in cases:
        said = {name: verdict(case) for name, verdict in verdicts.items()}
        by_run.setdefault(case.curve.id, []).append((case.should_stop, said))
    runs = list(by_run.values())
    rng = random.Random(seed)
    ours: list[tuple[float, float]] = []
    wins = dict.fromkeys(verdicts, 0)
    for _ in range(rounds):
        sample = [case for _ in runs for case in rng.choice(runs)]
        accuracy = {name: _balanced(sample, name) for name in verdicts}
        ours.append((accuracy[TRAINOPS][0], accuracy[TRAINOPS][1]))
        for name in verdicts:
            wins[name] += accuracy[TRAINOPS][0] > accuracy[name][0]
    accuracies = sorted(a for a, _ in ours)
    false_stops = sorted(f for _, f in ours)
    low, high = int(0.025 * rounds), int(0.975 * rounds) - 1
    lines = [
        f"trainops on resampled held-out runs ({rounds} rounds): balanced accuracy {accuracies[low]:.3f}-"
        f"{accuracies[high]:.3f}, false stops {false_stops[low]:.1%}-{false_stops[high]:.1%} (95% intervals); "
        f"balanced accuracy >= {GOAL_BALANCED_ACCURACY} in "
        f"{sum(a >= GOAL_BALANCED_ACCURACY for a in accuracies) / rounds:.0%} of rounds",
    ]
    lines += [f"  beats {name} in {wins[name] / rounds:.1%} of rounds" for name in verdicts if name != TRAINOPS]
    return "\n".join(lines)


def _balanced(sample: Sequence[tuple[bool, dict[str, bool]]], name: str) -> tuple[float, float]:
    """(balanced accuracy, false-stop rate) of one tool's recorded verdicts on a resampled set of cases."""
    stops = [said[name] for truth, said in sample if truth]
    false_stops = sum(said[name] for truth, said in sample if not truth)
    s = Score(cases=len(sample), stops=len(stops), right_stops=sum(stops), false_stops=false_stops)
    return s.balanced_accuracy, s.false_stop_rate


# --- Per family, with intervals (held-out half) ----------------------------------------------------------------

ANCHORS = tuple(BASELINES)
"""The other tools' rules trainops must stay ahead of."""
OVERALL = "overall"


@dataclass(frozen=True)
class Estimate:
    """A tool's score on a group of cases, with 95% bootstrap intervals (resampled by run)."""

    score: Score
    accuracy: tuple[float, float]
    false_stops: tuple[float, float]


def by_run(cases: Iterable[Case], verdicts: Mapping[str, Verdict]) -> dict[str, tuple[str, dict[str, Score]]]:
    """Each run's family and every tool's score on the run's cases: the unit the bootstrap resamples."""
    said: dict[str, tuple[str, dict[str, list[tuple[bool, bool]]]]] = {}
    for case in cases:
        _, answers = said.setdefault(case.curve.id, (case.curve.family, {name: [] for name in verdicts}))
        for name, verdict in verdicts.items():
            answers[name].append((case.should_stop, verdict(case)))
    return {
        run: (family, {name: tally(pairs) for name, pairs in answers.items()})
        for run, (family, answers) in said.items()
    }


def estimates(runs: Sequence[Mapping[str, Score]], rounds: int = 2000, seed: int = 7) -> dict[str, Estimate]:
    """Every tool's score over ``runs`` and its 95% intervals from ``rounds`` resamplings of the runs."""
    rng = random.Random(seed)
    tools = list(runs[0])
    accuracy: dict[str, list[float]] = {name: [] for name in tools}
    false_stops: dict[str, list[float]] = {name: [] for name in tools}
    for _ in range(rounds):
        sample = [rng.choice(runs) for _ in runs]
        for name in tools:
            s = total(run[name] for run in sample)
            accuracy[name].append(s.balanced_accuracy)
            false_stops[name].append(s.false_stop_rate)
    return {
        name: Estimate(
            score=total(run[name] for run in runs),
            accuracy=interval(accuracy[name]),
            false_stops=interval(false_stops[name]),
        )
        for name in tools
    }


def interval(values: Iterable[float]) -> tuple[float, float]:
    """The 2.5th and 97.5th percentiles of the defined (non-NaN) values; NaN when none is."""
    defined = sorted(value for value in values if not math.isnan(value))
    if not defined:
        return math.nan, math.nan
    return defined[int(0.025 * len(defined))], defined[max(int(0.975 * len(defined)) - 1, 0)]


def family_estimates(
    cases: Sequence[Case], verdicts: Mapping[str, Verdict], rounds: int = 2000
) -> dict[str, dict[str, Estimate]]:
    """Every tool's estimates per family of runs, then over all of them (:data:`OVERALL`)."""
    runs = by_run(cases, verdicts)
    groups: dict[str, list[dict[str, Score]]] = {}
    for family, scores in runs.values():
        groups.setdefault(family, []).append(scores)
    groups = dict(sorted(groups.items()))
    groups[OVERALL] = [scores for _, scores in runs.values()]
    return {group: estimates(members, rounds) for group, members in groups.items()}


def families_table(by_family: Mapping[str, Mapping[str, Estimate]]) -> str:
    """One block per family: every tool's balanced accuracy and false stops with their intervals; then whether
    trainops' balanced accuracy is above every anchor's in each family."""
    blocks = []
    for group, tools in by_family.items():
        first = next(iter(tools.values())).score
        rows = [
            (
                name,
                f"{e.score.balanced_accuracy:.3f}",
                _span(e.accuracy, "{:.3f}"),
                f"{e.score.false_stop_rate:.1%}",
                _span(e.false_stops, "{:.1%}"),
            )
            for name, e in tools.items()
        ]
        heading = f"{group} (held-out half): {first.cases} cases, {first.stops} where stopping was right"
        blocks.append(
            heading + "\n" + table(("tool", "balanced accuracy", "95% interval", "false stops", "95% interval"), rows)
        )
    margins = []
    for group, tools in by_family.items():
        ours = tools[TRAINOPS].score.balanced_accuracy
        anchor = max((name for name in tools if name in ANCHORS), key=lambda name: tools[name].score.balanced_accuracy)
        theirs = tools[anchor].score.balanced_accuracy
        margins.append(
            (group, f"{ours:.3f}", anchor, f"{theirs:.3f}", f"{ours - theirs:+.3f}", "yes" if ours > theirs else "NO")
        )
    ahead = all(row[-1] == "yes" for row in margins)
    blocks.append(
        f"trainops ahead of every anchor on every family (held-out half): {'yes' if ahead else 'NO'}\n"
        + table(("family", "trainops", "best anchor", "its balanced accuracy", "margin", "ahead"), margins)
    )
    return "\n\n".join(blocks)


def _span(bounds: tuple[float, float], fmt: str) -> str:
    low, high = bounds
    return "-" if math.isnan(low) else f"{fmt.format(low)}-{fmt.format(high)}"


# --- Calibration and leave one family out ------------------------------------------------------------------------

GRID: dict[str, tuple[float, ...]] = {
    "noise_allowance": (0.0, 0.25, 0.5, 0.75, 1.0),
    "PROJECTION_MIN_WINDOW": (10, 15, 20),
    "PROJECTION_WINDOW_FRACTION": (0.25, 0.5),
    "UNCOMPARED_DECAY": (0.5, 1.0),
    "confirm_epochs": (1, 2, 3),
}
"""The projection's parameters, and how many evaluations in a row must say stop, searched together:
:class:`MonitorPolicy` fields (lower case) and the constants of ``trainops.core.projection`` (upper case)."""

Params = dict[str, float]
Judge = Callable[[Params, Sequence[Case]], list[bool]]
"""A tool's verdicts on cases with a setting of the searched parameters."""


@contextmanager
def tuned(params: Mapping[str, float]) -> Iterator[MonitorPolicy]:
    """Set the projection's constants named in ``params`` for the block, and yield a policy with its other fields."""
    constants = {name: value for name, value in params.items() if name.isupper()}
    saved = {name: getattr(projection, name) for name in constants}
    try:
        for name, value in constants.items():
            setattr(projection, name, value)
        yield MonitorPolicy(**{name: value for name, value in params.items() if not name.isupper()})
    finally:
        for name, value in saved.items():
            setattr(projection, name, value)


def judge_trainops(params: Params, cases: Sequence[Case]) -> list[bool]:
    with tuned(params) as policy:
        verdict = trainops_verdict(policy)
        return [verdict(case) for case in cases]


@dataclass(frozen=True)
class Trial:
    """One setting of the parameters and its verdict on every case searched, in order."""

    params: Params
    said: tuple[bool, ...]


def search(
    cases: Sequence[Case], judge: Judge = judge_trainops, grid: Mapping[str, Sequence[float]] = GRID
) -> list[Trial]:
    """Every setting of the grid, judged once on every case."""
    return [
        Trial(params, tuple(judge(params, cases)))
        for params in (dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values()))
    ]


def ranked(
    trials: Sequence[Trial], cases: Sequence[Case], keep: Callable[[Case], bool] = lambda case: True
) -> list[tuple[Trial, Score]]:
    """The trials scored on the searched cases that ``keep`` admits, best first: false stops within the raised goal's
    bound (:data:`TARGET_FALSE_STOPS`), then balanced accuracy (ties keep the grid's order)."""
    kept = [index for index, case in enumerate(cases) if keep(case)]
    scored = [(trial, tally((cases[i].should_stop, trial.said[i]) for i in kept)) for trial in trials]
    return sorted(
        scored,
        key=lambda item: (item[1].false_stop_rate <= TARGET_FALSE_STOPS, item[1].balanced_accuracy),
        reverse=True,
    )


def calibrate(cases: Sequence[Case], trials: Sequence[Trial] | None = None) -> str:
    """Search the projection's parameters on the calibration half: the best balanced accuracy with false stops
    within the goal. The policy's fields and the two constants of ``trainops.core.projection`` are searched together."""
    trials = search(cases) if trials is None else trials
    rows = [
        (
            ", ".join(f"{k}={v}" for k, v in trial.params.items()),
            f"{s.balanced_accuracy:.3f}",
            f"{s.false_stop_rate:.1%}",
            f"{s.missed_stop_rate:.1%}",
        )
        for trial, s in ranked(trials, cases)[:15]
    ]
    defaults = {
        name: getattr(MonitorPolicy(), name) if not name.isupper() else getattr(projection, name) for name in GRID
    }
    return (
        f"calibration half: {len(cases)} cases; the best 15 of {len(trials)} settings (defaults: "
        + ", ".join(f"{k}={v}" for k, v in defaults.items())
        + ")\n"
        + table(("parameters (calibration half)", "balanced accuracy", "false stops", "missed stops"), rows)
    )


@dataclass(frozen=True)
class LeftOut:
    """One family left out: the setting chosen without it, and that setting's score on the family."""

    family: str
    params: Params
    calibrated_on: int
    """Calibration-half cases the choice was made on (none of them the family's)."""
    held_out: Score
    """The family's held-out cases: the figure that counts."""
    all_runs: Score
    """All the family's cases, both halves."""


def leave_one_family_out(
    calibration: Sequence[Case],
    held_out: Sequence[Case],
    trials: Sequence[Trial],
    judge: Judge = judge_trainops,
) -> list[LeftOut]:
    """For each family: the best of ``trials`` (searched on ``calibration``) ranked without the family's cases,
    scored with ``judge`` on the family's cases."""
    results = []
    for family in sorted({case.curve.family for case in (*calibration, *held_out)}):
        chosen, _ = ranked(trials, calibration, keep=_not_of(family))[0]
        own_held = [case for case in held_out if case.curve.family == family]
        own_calibration = [case for case in calibration if case.curve.family == family]
        held = list(zip((case.should_stop for case in own_held), judge(chosen.params, own_held), strict=True))
        others = list(
            zip((case.should_stop for case in own_calibration), judge(chosen.params, own_calibration), strict=True)
        )
        results.append(
            LeftOut(
                family=family,
                params=chosen.params,
                calibrated_on=len(calibration) - len(own_calibration),
                held_out=tally(held),
                all_runs=tally([*held, *others]),
            )
        )
    return results


def _not_of(family: str) -> Callable[[Case], bool]:
    return lambda case: case.curve.family != family


def lofo_table(results: Sequence[LeftOut], per_family: Mapping[str, Mapping[str, Estimate]]) -> str:
    """Each family's leave-one-family-out figures against the goal, and against the best anchor and trainops' defaults
    on the family's held-out runs (``per_family``: :func:`family_estimates`)."""
    rows = []
    for r in results:
        tools = per_family.get(r.family, {})
        best = max((tools[name].score.balanced_accuracy for name in tools if name in ANCHORS), default=math.nan)
        defaults = tools[TRAINOPS].score.balanced_accuracy if TRAINOPS in tools else math.nan
        accuracy = r.held_out.balanced_accuracy
        rows.append(
            (
                r.family,
                ", ".join(f"{v:g}" for v in r.params.values()),
                f"{accuracy:.3f}",
                f"{r.held_out.false_stop_rate:.1%}",
                "met" if accuracy >= GOAL_LOFO_BALANCED_ACCURACY else "MISSED",
                f"{best:.3f}",
                "yes" if accuracy > best else "NO",
                f"{defaults:.3f}",
                f"{r.all_runs.balanced_accuracy:.3f}",
                f"{r.all_runs.false_stop_rate:.1%}",
            )
        )
    met = all(row[4] == "met" for row in rows)
    return (
        f"leave one family out: calibrated without the family, scored on its held-out runs; goal balanced accuracy "
        f">= {GOAL_LOFO_BALANCED_ACCURACY} on every family: {'met' if met else 'MISSED'}\n"
        f"(chosen without it: {', '.join(GRID)}; best anchor, defaults: the best anchor's and trainops' "
        "defaults' balanced accuracy on the family's held-out runs; all runs: the family's runs in both halves)\n"
        + table(
            (
                "family",
                "chosen without it",
                "balanced accuracy",
                "false stops",
                "goal",
                "best anchor",
                "ahead",
                "defaults",
                "all runs: bal. acc.",
                "false stops",
            ),
            rows,
        )
    )


# --- Savings against regret (held-out half) ---------------------------------------------------------------------

Walker = Callable[[Curve], Outcome]
"""One run walked with one tool, from its first epoch."""
NEVER_STOP = "train to the end"
ORACLE = "oracle (stop after the final best)"


def trainops_outcome(policy: MonitorPolicy | None = None) -> Walker:
    """trainops watching the run live: :func:`trainops.core.replay` over the run's planned epochs, stopped at its first
    stop, keeping the epoch it restores (``stop_and_restore_best``), else the last one trained."""

    def run(curve: Curve) -> Outcome:
        history = curve.records
        judged = policy_for_task(policy or MonitorPolicy(), curve.task, history)
        result = replay(history, judged, total_epochs_planned=curve.planned)
        if result.stop_epoch is None:
            return outcome(curve, trained=curve.planned, kept=curve.planned - 1)
        restored = result.restore_epoch
        return outcome(curve, trained=result.stop_epoch + 1, kept=result.stop_epoch if restored is None else restored)

    return run


def walkers() -> dict[str, Walker]:
    def walking(decide: Decision) -> Walker:
        return lambda curve: walk(curve, decide)

    return {
        TRAINOPS: trainops_outcome(),
        **{name: walking(keep_last(verdict)) for name, verdict in BASELINES.items()},
        NEVER_STOP: walking(never_stop),
        ORACLE: oracle,
    }


def savings(curves: Sequence[Curve], tools: Mapping[str, Walker]) -> dict[str, dict[str, Summary]]:
    """Every tool's summary per family of runs, then over all of them (:data:`OVERALL`)."""
    outcomes = {name: [walker(curve) for curve in curves] for name, walker in tools.items()}
    families = sorted({curve.family for curve in curves})
    return {
        group: {
            name: summarize(o for o in results if group in (OVERALL, o.family)) for name, results in outcomes.items()
        }
        for group in (*families, OVERALL)
    }


def savings_table(summaries: Mapping[str, Mapping[str, Summary]]) -> str:
    blocks = []
    for group, tools in summaries.items():
        runs = next(iter(tools.values())).runs
        rows = [
            (
                name,
                f"{s.mean_saved:.1%}",
                f"{s.too_soon:.1%}",
                f"{s.mean_regret:.2f}%",
                f"{s.median_regret:.2f}%",
                f"{s.p90_regret:.2f}%",
                f"{s.costly:.1%}",
                s.lost,
                f"{s.best_kept_mean_regret:.2f}%",
                f"{s.best_kept_costly:.1%}",
            )
            for name, s in tools.items()
        ]
        blocks.append(
            f"{group} (held-out half): {runs} runs walked epoch by epoch\n"
            + table(
                (
                    "tool",
                    "saved",
                    "too soon",
                    "mean regret (capped)",
                    "median",
                    "p90",
                    "regret > 1%",
                    "NaN model kept",
                    "best kept: mean (capped)",
                    "> 1%",
                ),
                rows,
            )
        )
    return "\n\n".join(blocks)


# --- Command line ------------------------------------------------------------------------------------------------


# --- Fresh runs (another seed) ------------------------------------------------------------------------------------


def fresh(paths: Sequence[Path], verdicts: Mapping[str, Verdict]) -> str:
    """Every tool on every run of the corpus files at ``paths`` (all of them unseen, so no split), then trainops and
    the best anchor per family. Refused for a file generated with the corpus' own seed: its runs would be the
    corpus' runs."""
    own = json.loads(CORPUS.read_text())["seed"]
    for path in paths:
        if json.loads(path.read_text())["seed"] == own:
            raise SystemExit(f"{path} was generated with the corpus' own seed ({own}): its runs are not fresh")
    curves = [curve for path in paths for curve in load(path)]
    cases = cut(curves)
    families: dict[str, list[Case]] = {}
    for case in cases:
        families.setdefault(case.curve.family, []).append(case)
    rows = []
    for family, members in sorted(families.items()):
        ours = score(verdicts[TRAINOPS], members)
        theirs = {name: score(verdicts[name], members).balanced_accuracy for name in ANCHORS}
        anchor = max(theirs, key=lambda name: theirs[name])
        rows.append(
            (
                family,
                ours.cases,
                f"{ours.balanced_accuracy:.3f}",
                f"{ours.false_stop_rate:.1%}",
                anchor,
                f"{theirs[anchor]:.3f}",
                "yes" if ours.balanced_accuracy > theirs[anchor] else "NO",
            )
        )
    title = f"fresh runs: {len(curves)} from {', '.join(str(path) for path in paths)}"
    return (
        report(title, cases, verdicts)
        + "\n\n"
        + table(("family", "cases", "trainops", "false stops", "best anchor", "its balanced accuracy", "ahead"), rows)
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--by-family", action="store_true", help="trainops per family of runs and per cut")
    parser.add_argument("--bootstrap", action="store_true", help="95%% intervals from resampling the held-out runs")
    parser.add_argument(
        "--families", action="store_true", help="every tool per family with 95%% intervals (held-out half)"
    )
    parser.add_argument("--calibrate", action="store_true", help="search the projection parameters (calibration half)")
    parser.add_argument("--lofo", action="store_true", help="calibrate without each family, score on its held-out runs")
    parser.add_argument("--savings", action="store_true", help="epochs saved against regret, walking each held-out run")
    parser.add_argument("--all", action="store_true", help="every table")
    parser.add_argument(
        "--fresh",
        nargs="+",
        type=Path,
        default=(),
        metavar="CORPUS",
        help="also score every run of these corpus files, generated with another seed (bench/curves/generate.py "
        "--seed N --out FILE --families ...): runs no calibration or rule has seen",
    )
    args = parser.parse_args(argv)
    if args.all:
        args.by_family = args.bootstrap = args.families = args.calibrate = args.lofo = args.savings = True

    started = time.perf_counter()
    curves = load()
    calibration, held_out = split(curves)
    held_cases, calibration_cases = cut(held_out), cut(calibration)
    print(f"corpus: {CORPUS} ({len(curves)} runs; {len(calibration)} calibration, {len(held_out)} held out)")
    if args.calibrate and not (args.all or args.lofo):
        print(calibrate(calibration_cases))  # alone, as before: the search and nothing else
        print(f"\n({time.perf_counter() - started:.1f} s)")
        return
    verdicts = tools()
    print(report("held-out half", held_cases, verdicts))
    print()
    print(report("calibration half", calibration_cases, verdicts))
    held = score(verdicts[TRAINOPS], held_cases)
    met = held.balanced_accuracy >= GOAL_BALANCED_ACCURACY and held.false_stop_rate <= GOAL_FALSE_STOPS
    target = held.balanced_accuracy >= TARGET_BALANCED_ACCURACY and held.false_stop_rate <= TARGET_FALSE_STOPS
    print(
        f"\ngoal on the held-out half: balanced accuracy >= {GOAL_BALANCED_ACCURACY} with false stops <= "
        f"{GOAL_FALSE_STOPS:.0%}: {'met' if met else 'MISSED'} "
        f"({held.balanced_accuracy:.3f}, {held.false_stop_rate:.1%}); raised goal, >= {TARGET_BALANCED_ACCURACY} "
        f"with false stops <= {TARGET_FALSE_STOPS:.0%}: {'met' if target else 'MISSED'}"
    )
    if args.bootstrap:
        print()
        print(bootstrap(held_cases, verdicts))
    if args.by_family:
        print("\ntrainops on the held-out half, by family and cut")
        print(by_family(held_cases, verdicts[TRAINOPS]))
    per_family: dict[str, dict[str, Estimate]] = {}
    if args.families or args.lofo:
        per_family = family_estimates(held_cases, {name: verdicts[name] for name in (*ANCHORS, TRAINOPS)})
    if args.families:
        print()
        print(families_table(per_family))
    if args.calibrate or args.lofo:
        searching = time.perf_counter()
        trials = search(calibration_cases)
        searched = time.perf_counter() - searching
        if args.calibrate:
            print()
            print(calibrate(calibration_cases, trials))
        if args.lofo:
            choosing = time.perf_counter()
            results = leave_one_family_out(calibration_cases, held_cases, trials)
            print()
            print(lofo_table(results, per_family))
            print(
                f"(the search: {len(trials)} settings in {searched:.1f} s, shared by every family; choosing and "
                f"scoring each family's setting: {time.perf_counter() - choosing:.1f} s)"
            )
    if args.savings:
        print()
        print(savings_table(savings(held_out, walkers())))
    if args.fresh:
        print()
        print(fresh(args.fresh, verdicts))
    print(f"\n({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
