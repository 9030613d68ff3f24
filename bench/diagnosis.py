"""Stop or continue? trainops' recommendation against other tools' rules, on real training curves.

Every run of the corpus (``bench/curves/corpus.json``, rebuilt by ``bench/curves/generate.py``) is cut after 25%,
50% and 75% of its planned epochs. At each cut a tool sees only the epochs so far and the planned number of
epochs, and says stop or continue. The right answer is known by hindsight (``bench/_corpus.py``): stop when the
epochs left never improve the best validation loss by more than 1%, or the run has gone non-finite.

The corpus is split by run: trainops' defaults were calibrated on one half (``--calibrate`` repeats that search);
the figures that count are on the other, held-out half. For each tool:

- balanced accuracy: the mean of the share of right stops and the share of right continues;
- false stops: of the cases where continuing was right, the share told to stop (a model thrown away);
- missed stops: of the cases where stopping was right, the share told to continue (compute burnt).

    .venv/bin/python bench/diagnosis.py               # the table, held-out and calibration halves (~10 s)
    .venv/bin/python bench/diagnosis.py --by-family   # also trainops per family of runs and per cut
    .venv/bin/python bench/diagnosis.py --bootstrap   # also 95% intervals, resampling the held-out runs (~15 s)
    .venv/bin/python bench/diagnosis.py --calibrate   # search trainops' projection parameters on the calibration half
"""

from __future__ import annotations

import argparse
import itertools
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from _baselines import BASELINES
from _corpus import CORPUS, FRACTIONS, Case, cut, load, split
from _report import table

from trainops.core import Action, EpochRecord, MonitorPolicy, analyze, projection

Verdict = Callable[[Case], bool]
"""True when the tool says stop at this cut."""

GOAL_BALANCED_ACCURACY = 0.90
GOAL_FALSE_STOPS = 0.10


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
    total = stops = right = false = 0
    for case in cases:
        said_stop = verdict(case)
        total += 1
        if case.should_stop:
            stops += 1
            right += said_stop
        else:
            false += said_stop
    return Score(cases=total, stops=stops, right_stops=right, false_stops=false)


def records(case: Case) -> list[EpochRecord]:
    """The epochs a monitor would have been sent, as trainops stores them."""
    columns = {
        "train_loss": case.train_loss,
        "val_loss": case.val_loss,
        "train_accuracy": case.train_accuracy,
        "val_accuracy": case.val_accuracy,
    }
    present = {name: values for name, values in columns.items() if values is not None}
    return [
        EpochRecord(epoch=epoch, **{name: values[epoch] for name, values in present.items()})
        for epoch in range(case.seen)
    ]


def trainops_verdict(policy: MonitorPolicy | None = None, *, planned: bool = True) -> Verdict:
    """trainops' recommendation at the cut; ``planned=False`` hides the planned length (horizon: ``patience``)."""
    policy = policy or MonitorPolicy()

    def verdict(case: Case) -> bool:
        diagnosis = analyze(records(case), policy, total_epochs_planned=case.planned if planned else None)
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


def calibrate(cases: Sequence[Case]) -> str:
    """Search the projection's parameters on the calibration half: the best balanced accuracy with false stops
    within the goal. The policy's fields and the two constants of ``trainops.core.projection`` are searched together."""
    grid = {
        "noise_allowance": (0.0, 0.25, 0.5, 0.75, 1.0),
        "window": (5, 10, 15),
        "PROJECTION_WINDOW_FRACTION": (0.25, 0.5),
        "UNCOMPARED_DECAY": (0.5, 1.0),
    }
    defaults = {name: getattr(projection, name) for name in grid if name.isupper()}
    results = []
    try:
        for values in itertools.product(*grid.values()):
            params = dict(zip(grid, values, strict=True))
            for name, value in params.items():
                if name.isupper():
                    setattr(projection, name, value)
            policy = MonitorPolicy(**{name: value for name, value in params.items() if not name.isupper()})
            s = score(trainops_verdict(policy), cases)
            results.append((s.false_stop_rate <= GOAL_FALSE_STOPS, s.balanced_accuracy, params, s))
    finally:
        for name, value in defaults.items():
            setattr(projection, name, value)
    results.sort(key=lambda item: (item[0], item[1]), reverse=True)
    rows = [
        (
            ", ".join(f"{k}={v}" for k, v in params.items()),
            f"{s.balanced_accuracy:.3f}",
            f"{s.false_stop_rate:.1%}",
            f"{s.missed_stop_rate:.1%}",
        )
        for _, _, params, s in results[:15]
    ]
    return table(("parameters (calibration half)", "balanced accuracy", "false stops", "missed stops"), rows)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--by-family", action="store_true", help="trainops per family of runs and per cut")
    parser.add_argument("--calibrate", action="store_true", help="search the projection parameters (calibration half)")
    parser.add_argument("--bootstrap", action="store_true", help="95%% intervals from resampling the held-out runs")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    curves = load()
    calibration, held_out = split(curves)
    held_cases, calibration_cases = cut(held_out), cut(calibration)
    print(f"corpus: {CORPUS} ({len(curves)} runs; {len(calibration)} calibration, {len(held_out)} held out)")
    if args.calibrate:
        print(calibrate(calibration_cases))
        return
    verdicts = tools()
    print(report("held-out half", held_cases, verdicts))
    print()
    print(report("calibration half", calibration_cases, verdicts))
    held = score(verdicts[TRAINOPS], held_cases)
    met = held.balanced_accuracy >= GOAL_BALANCED_ACCURACY and held.false_stop_rate <= GOAL_FALSE_STOPS
    print(
        f"\ngoal on the held-out half: balanced accuracy >= {GOAL_BALANCED_ACCURACY} with false stops <= "
        f"{GOAL_FALSE_STOPS:.0%}: {'met' if met else 'MISSED'} "
        f"({held.balanced_accuracy:.3f}, {held.false_stop_rate:.1%})"
    )
    if args.bootstrap:
        print()
        print(bootstrap(held_cases, verdicts))
    if args.by_family:
        print("\ntrainops on the held-out half, by family and cut")
        print(by_family(held_cases, verdicts[TRAINOPS]))
    print(f"\n({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
