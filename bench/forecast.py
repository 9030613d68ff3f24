"""How good will this run get? trainops' forecast of a run's final best, against the truth, on real training curves.

Every run of the corpus (``bench/curves/corpus.json``) is cut after 25%, 50% and 75% of its planned epochs. At
each cut the forecast (``trainops.core.forecast.forecast``) sees only the run's monitored metric so far (the
validation loss; a detection run's mAP50, higher being better: ``bench/_corpus.py``) and the epochs left, and
projects its best by the planned end: a median (``best_value``) and a 20-80% band. The truth is the metric's best
over the whole run.

- **in band**: the share of cases whose final best lies within ``[best_value_q20, best_value_q80]`` (goal
  0.60 +/- 0.05 on the held-out half); ``below`` and ``above``: the shares outside, on either side (0.20 each when
  the band is calibrated; a final best is never worse than the best so far, so ``above`` counts forecasts that
  promised a gain that never came);
- **median absolute error** of the point forecast, and the **median** and **mean relative error** (in percent of
  the final best, each case's capped at :data:`RELATIVE_ERROR_CAP`), against the baseline "the best so far" (what
  a tool without a forecast would say).

The forecast's constants (``trainops.core.forecast``'s ``FIT_FRACTION``, ``MAX_BINS``, ``MIN_DISTANCE`` and
``Z20``/``Z50``/``Z80``) are set on the calibration half only (``--calibrate``); the figures that count are on the
other, held-out half.

    .venv/bin/python bench/forecast.py              # the table, held-out half, per family and overall (~3 s)
    .venv/bin/python bench/forecast.py --bootstrap  # also 95% intervals, resampling the held-out runs
    .venv/bin/python bench/forecast.py --leave-one-family-out  # also the band calibrated without each family
    .venv/bin/python bench/forecast.py --calibrate  # set the constants on the calibration half and print them
"""

from __future__ import annotations

import argparse
import itertools
import math
import random
import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

from _corpus import CORPUS, Case, cut, load, split
from _report import machine, table

from trainops.core import forecast as forecasting
from trainops.core.forecast import Forecast, forecast
from trainops.core.policy import Mode, MonitorPolicy

GOAL_IN_BAND = 0.60
GOAL_TOLERANCE = 0.05
RELATIVE_ERROR_CAP = 1.0
"""The most one case's relative error adds to a mean: a forecast off by the whole final best is as wrong as one can
be. Uncapped, a run whose best is near 0 decides the mean alone (a YOLO loss that collapses to 0, a timm loss at
1e-8: any forecast is off by millions of percent of it)."""


@dataclass(frozen=True)
class Outcome:
    """One case: what the forecast said, what the best so far was, and what the run's final best turned out.

    Values are "lower is better" for a loss and "higher is better" for an accuracy (``mode``)."""

    case: Case
    forecast: Forecast
    best_so_far: float
    best_so_far_epoch: int
    final_best: float
    final_best_epoch: int

    @property
    def in_band(self) -> bool:
        return self.forecast.best_value_q20 <= self.final_best <= self.forecast.best_value_q80

    @property
    def below(self) -> bool:
        return self.final_best < self.forecast.best_value_q20

    @property
    def above(self) -> bool:
        return self.final_best > self.forecast.best_value_q80

    def error(self, point: float) -> float:
        return abs(point - self.final_best)

    def relative_error(self, point: float) -> float:
        """The error in units of the final best, at most :data:`RELATIVE_ERROR_CAP`."""
        return min(abs(point - self.final_best) / max(abs(self.final_best), 1e-12), RELATIVE_ERROR_CAP)


def outcome(case: Case, metric: str | None = None) -> Outcome | None:
    """The forecast at a cut and the truth; ``None`` when the forecast declines (too few finite values) or the
    run has no such metric.

    ``metric`` is the run's monitored metric when ``None``, the one trainops forecasts in use (``Curve.policy``:
    the validation loss, a detection run's mAP50); a name otherwise, in its direction (``auto`` mode).
    """
    policy = case.curve.policy if metric is None else MonitorPolicy(monitor=metric)
    mode: Mode = policy.resolved_mode
    whole = case.curve.series(policy.monitor)
    if whole is None:
        return None
    said = forecast(list(enumerate(whole[: case.seen])), mode=mode, epochs_left=case.planned - case.seen)
    if said is None:
        return None
    best_so_far = _best(whole[: case.seen], mode)
    final_best = _best(whole, mode)
    return Outcome(case, said, best_so_far[1], best_so_far[0], final_best[1], final_best[0])


def _best(values: Sequence[float], mode: Mode) -> tuple[int, float]:
    """(epoch, value) of the first best finite value."""
    finite = [(epoch, value) for epoch, value in enumerate(values) if math.isfinite(value)]
    sign = 1.0 if mode == "min" else -1.0
    return min(finite, key=lambda point: (sign * point[1], point[0]))


def outcomes(cases: Sequence[Case], metric: str | None = None) -> list[Outcome]:
    return [result for case in cases if (result := outcome(case, metric)) is not None]


def by_family(results: Sequence[Outcome]) -> list[tuple[str, list[Outcome]]]:
    families: dict[str, list[Outcome]] = {}
    for result in sorted(results, key=lambda r: r.case.curve.family):
        families.setdefault(result.case.curve.family, []).append(result)
    return [*families.items(), ("all", list(results))]


def band_table(results: Sequence[Outcome]) -> str:
    """Per family: the share of final bests in the band, and outside it on either side."""
    rows = []
    for name, members in by_family(results):
        n = len(members)
        rows.append(
            (
                name,
                n,
                f"{sum(r.in_band for r in members) / n:.2f}",
                f"{sum(r.below for r in members) / n:.2f}",
                f"{sum(r.above for r in members) / n:.2f}",
                f"{statistics.fmean(_width(r) for r in members):.2%}",
            )
        )
    return table(("family", "cases", "in band", "below q20", "above q80", "mean width"), rows)


def _scale(r: Outcome) -> float:
    """What a case's band width and quantile loss are measured in: its best so far; against a best of 0 (a detector's
    mAP50 before its first box), where a percentage of it is undefined, its distance to the metric's bound (the
    forecast's ``floor``: an mAP's ceiling of 1), the unit its gains are measured in."""
    return abs(r.best_so_far) or abs(float(r.forecast.evidence.get("floor") or 0.0) - r.best_so_far)


def _width(r: Outcome) -> float:
    """The band's width in percent of the case's :func:`_scale`, at most :data:`RELATIVE_ERROR_CAP` as the errors
    are."""
    width = (r.forecast.best_value_q80 - r.forecast.best_value_q20) / max(_scale(r), 1e-12)
    return min(width, RELATIVE_ERROR_CAP)


def point_table(results: Sequence[Outcome]) -> str:
    """Per family: the point forecast's errors against those of the best so far, and the best epoch's."""
    rows = []
    for name, members in by_family(results):
        ours = [r.forecast.best_value for r in members]
        pairs = list(zip(members, ours, strict=True))
        rows.append(
            (
                name,
                f"{statistics.median(r.error(p) for r, p in pairs):.3g}",
                f"{statistics.median(r.error(r.best_so_far) for r in members):.3g}",
                f"{statistics.median(r.relative_error(p) for r, p in pairs):.2%}",
                f"{statistics.median(r.relative_error(r.best_so_far) for r in members):.2%}",
                f"{statistics.fmean(r.relative_error(p) for r, p in pairs):.1%}",
                f"{statistics.fmean(r.relative_error(r.best_so_far) for r in members):.1%}",
                f"{statistics.fmean(r.error(p) < r.error(r.best_so_far) for r, p in pairs):.2f}",
                f"{statistics.fmean(r.error(p) > r.error(r.best_so_far) for r, p in pairs):.2f}",
                f"{statistics.median(abs(r.forecast.best_epoch - r.final_best_epoch) for r in members):.0f}",
                f"{statistics.median(abs(r.best_so_far_epoch - r.final_best_epoch) for r in members):.0f}",
            )
        )
    headers = (
        "family",
        "median abs err",
        "(best so far)",
        "median rel err",
        "(best so far)",
        "mean rel err",
        "(best so far)",
        "closer",
        "farther",
        "best epoch err",
        "(best so far)",
    )
    return table(headers, rows)


def bootstrap(results: Sequence[Outcome], rounds: int = 2000, seed: int = 7) -> str:
    """How sure the held-out figures are: resample whole runs (a run's three cuts go together) and recompute the
    share in band and the mean relative errors; 95% intervals."""
    by_run: dict[str, list[Outcome]] = {}
    for r in results:
        by_run.setdefault(r.case.curve.id, []).append(r)
    runs = [
        [(r.in_band, r.relative_error(r.forecast.best_value), r.relative_error(r.best_so_far)) for r in members]
        for members in by_run.values()
    ]
    rng = random.Random(seed)
    shares, ours, baseline, wins = [], [], [], 0
    for _ in range(rounds):
        sample = [item for _ in runs for item in rng.choice(runs)]
        shares.append(sum(inside for inside, _, _ in sample) / len(sample))
        ours.append(statistics.fmean(error for _, error, _ in sample))
        baseline.append(statistics.fmean(error for _, _, error in sample))
        wins += ours[-1] < baseline[-1]
    low, high = int(0.025 * rounds), int(0.975 * rounds) - 1

    def interval(values: list[float], spec: str) -> str:
        ordered = sorted(values)
        return f"{ordered[low]:{spec}}-{ordered[high]:{spec}}"

    within = sum(abs(share - GOAL_IN_BAND) <= GOAL_TOLERANCE for share in shares) / rounds
    return (
        f"resampling the held-out runs ({rounds} rounds, 95% intervals): in band {interval(shares, '.3f')} (within "
        f"the goal in {within:.0%} of rounds); mean relative error {interval(ours, '.1%')} against "
        f"{interval(baseline, '.1%')} for the best so far (lower in {wins / rounds:.0%} of rounds)"
    )


def pinball(results: Sequence[Outcome]) -> float:
    """The mean quantile loss of q20, the median and q80, in percent of each case's :func:`_scale` (its best so far,
    or a best of 0's distance to the bound): a proper score, lower when the band is both calibrated and narrow. Each
    term is capped at :data:`RELATIVE_ERROR_CAP` as the relative error is."""
    total = 0.0
    for r in results:
        scale = _scale(r)
        for level, q in (
            (0.2, r.forecast.best_value_q20),
            (0.5, r.forecast.best_value),
            (0.8, r.forecast.best_value_q80),
        ):
            miss = r.final_best - q
            total += min((level - (miss < 0)) * miss / max(scale, 1e-12), RELATIVE_ERROR_CAP)
    return 100.0 * total / (3 * len(results))


def calibrate(cases: Sequence[Case]) -> str:
    """Search the fit window, the bins and the floor margin on the calibration half. For each, ``Z20`` and ``Z80``
    leave 20% of the final bests outside the band on either side, ``Z50`` minimises the median's absolute error
    (held at or above ``Z20``); keep the lowest total quantile loss. ``UNMOVED_GAIN`` follows from the unmoved
    cases alone (:func:`unmoved_gain`)."""
    grid = {"FIT_FRACTION": (1.0, 0.67, 0.5, 0.33), "MAX_BINS": (20, 40), "MIN_DISTANCE": (1e-4, 1e-2, 0.1)}
    defaults = {name: getattr(forecasting, name) for name in (*grid, "Z20", "Z50", "Z80")}
    found = []
    try:
        for values in itertools.product(*grid.values()):
            params = dict(zip(grid, values, strict=True))
            for name, value in params.items():
                setattr(forecasting, name, value)
            gains = [_gains(r) for r in outcomes(cases)]
            # A larger gain is a lower loss: the 20% quantile of the loss is the 80% quantile of the gain.
            z20 = _share_z(gains, 0.2, above=True)
            zs = {"Z20": z20, "Z50": max(_fit_z(gains, 0.5), z20), "Z80": _share_z(gains, 0.2)}
            for name, value in zs.items():
                setattr(forecasting, name, value)
            results = outcomes(cases)
            in_band = sum(r.in_band for r in results) / len(results)
            relative = statistics.fmean(r.relative_error(r.forecast.best_value) for r in results)
            found.append((pinball(results), params | zs, in_band, relative))
    finally:
        for name, value in defaults.items():
            setattr(forecasting, name, value)
    found.sort(key=lambda item: item[0])
    rows = [
        (", ".join(f"{k}={v:.3g}" for k, v in params.items()), f"{loss:.3f}", f"{in_band:.2f}", f"{relative:.2%}")
        for loss, params, in_band, relative in found
    ]
    chosen = "\n".join(f"{name} = {value:.4g}" for name, value in found[0][1].items())
    unmoved = unmoved_gain(outcomes(cases))
    if unmoved is not None:
        chosen += f"\nUNMOVED_GAIN = {unmoved:.4g}"
    return (
        table(("constants (calibration half)", "quantile loss (%)", "in band", "mean rel err"), rows)
        + f"\n\nthe lowest quantile loss; set in src/trainops/core/forecast.py:\n{chosen}"
    )


def unmoved_gain(results: Sequence[Outcome]) -> float | None:
    """The gain that 20% of the cases whose metric had not left its first value (``method="unmoved"``) went past by
    their planned end: the optimistic end of such a case's band (``UNMOVED_GAIN``). ``None`` without such cases.

    >>> from types import SimpleNamespace as S
    >>> flat = [S(forecast=S(method="unmoved", evidence={"floor": 1.0}), best_so_far=0.0, final_best=g)
    ...         for g in (0, 0, 0, 0, 0, 0, 0, 0.2, 0.5, 0.9)]
    >>> round(unmoved_gain(flat), 3)  # an accuracy from 0 to 0.2 (log 1/0.8): two of ten went further
    0.223
    """
    gains = sorted(_gains(r)[0] for r in results if r.forecast.method == "unmoved")
    if not gains:
        return None
    return gains[len(gains) - 1 - round(0.2 * len(gains))]


Gains = tuple[float, float, float]
"""(true gain, projected gain, scale) of one case, gains as the forecast measures them: the log-ratio of the best
so far's distance to the floor over the final best's."""


def _gains(r: Outcome) -> Gains:
    """Distances to the floor (a loss's) or the ceiling (an accuracy's, an mAP's: the forecast's ``floor`` is
    where the metric is headed either way); no gain for a best so far already on it."""
    evidence = r.forecast.evidence
    floor = float(evidence.get("floor") or 0.0)
    start, end = abs(r.best_so_far - floor), abs(r.final_best - floor)
    true = math.log(start / max(end, 1e-300)) if start > 0 else 0.0
    return true, float(evidence.get("projected_gain") or 0.0), float(evidence.get("scale") or 0.0)


def _share_z(gains: Sequence[Gains], share: float, *, above: bool = False) -> float:
    """The ``z`` that leaves ``share`` of the cases' final bests outside the band on one side.

    ``above`` (worse than ``best_value_q80``): the true gain is below ``max(0, projected + z * scale)``, which for
    every case is its position ``(true - projected) / scale`` below ``z``: the ``share`` quantile of the positions.
    Else (better than ``best_value_q20``): only cases that gained at all can be, those whose position is above
    ``z``: the ``share * len(gains)``-th largest position among them.
    """
    positions = sorted((true - g) / s for true, g, s in gains if s > 0 and (above or true > 0))
    k = round(share * len(gains))
    if above:
        return positions[min(k, len(positions) - 1)]
    return positions[max(len(positions) - 1 - k, 0)]


def _fit_z(gains: Sequence[Gains], level: float) -> float:
    """The ``z`` whose gain ``max(0, projected + z * scale)`` has the least quantile loss at ``level``, among the
    cases' own positions ``(true - projected) / scale``: the empirical quantile, with the cases where clamping at no
    gain makes the forecast certain taken into account."""
    candidates = sorted({(true - g) / s for true, g, s in gains if s > 0})

    def loss(z: float) -> float:
        total = 0.0
        for true, g, s in gains:
            miss = true - max(0.0, g + z * s)
            total += (level - (miss < 0)) * miss
        return total

    return min(candidates, key=loss)


def leave_one_family_out(calibration: Sequence[Case], held_out: Sequence[Case]) -> str:
    """For each family: ``Z20``/``Z50``/``Z80`` and ``UNMOVED_GAIN`` set on the calibration half without that family,
    scored on the family's held-out cases: how the band holds on a framework it was never calibrated on."""
    defaults = {name: getattr(forecasting, name) for name in ("Z20", "Z50", "Z80", "UNMOVED_GAIN")}
    rows = []
    pooled: list[Outcome] = []
    try:
        for family in sorted({case.curve.family for case in held_out}):
            for name, value in defaults.items():
                setattr(forecasting, name, value)
            own = outcomes([case for case in held_out if case.curve.family == family])
            others = outcomes([case for case in calibration if case.curve.family != family])
            gains = [_gains(r) for r in others]
            z20 = _share_z(gains, 0.2, above=True)
            forecasting.Z20, forecasting.Z50, forecasting.Z80 = z20, max(_fit_z(gains, 0.5), z20), _share_z(gains, 0.2)
            unmoved = unmoved_gain(others)
            forecasting.UNMOVED_GAIN = defaults["UNMOVED_GAIN"] if unmoved is None else unmoved
            out = outcomes([case for case in held_out if case.curve.family == family])
            pooled.extend(out)
            rows.append(
                (
                    family,
                    len(out),
                    f"{statistics.fmean(r.in_band for r in out):.2f}",
                    f"{statistics.fmean(r.in_band for r in own):.2f}",
                    f"{statistics.fmean(r.relative_error(r.forecast.best_value) for r in out):.1%}",
                    f"{statistics.fmean(r.relative_error(r.best_so_far) for r in out):.1%}",
                )
            )
    finally:
        for name, value in defaults.items():
            setattr(forecasting, name, value)
    rows.append(
        (
            "all",
            len(pooled),
            f"{statistics.fmean(r.in_band for r in pooled):.2f}",
            "",
            f"{statistics.fmean(r.relative_error(r.forecast.best_value) for r in pooled):.1%}",
            f"{statistics.fmean(r.relative_error(r.best_so_far) for r in pooled):.1%}",
        )
    )
    headers = ("family left out", "cases", "in band", "(all families)", "mean rel err", "(best so far)")
    return table(headers, rows)


def timing(cases: Sequence[Case]) -> str:
    """Mean time per forecast call over the cases, and over a 500-epoch history."""
    started = time.perf_counter()
    for case in cases:
        forecast(list(enumerate(case.val_loss)), mode="min", epochs_left=case.planned - case.seen)
    per_case = (time.perf_counter() - started) / len(cases)
    long = [(e, 0.2 + 1.0 / (e + 1) + 0.01 * math.sin(e)) for e in range(500)]
    rounds = 200
    started = time.perf_counter()
    for _ in range(rounds):
        forecast(long, mode="min", epochs_left=500)
    per_long = (time.perf_counter() - started) / rounds
    return (
        f"time per forecast: {per_case * 1000:.3f} ms on the corpus' cases, {per_long * 1000:.3f} ms over 500 epochs "
        f"with 500 left (goal < 2 ms; {machine()})"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calibrate", action="store_true", help="set the constants on the calibration half")
    parser.add_argument("--bootstrap", action="store_true", help="95%% intervals from resampling the held-out runs")
    parser.add_argument(
        "--leave-one-family-out", action="store_true", help="calibrate without each family, score on it (held out)"
    )
    args = parser.parse_args(argv)

    started = time.perf_counter()
    curves = load()
    calibration, held_out = split(curves)
    print(f"corpus: {CORPUS} ({len(curves)} runs; {len(calibration)} calibration, {len(held_out)} held out)")
    if args.calibrate:
        print(calibrate(cut(calibration)))
        return
    held = outcomes(cut(held_out))
    print(f"\nheld-out half, {len(held)} cases: the monitored metric's final best against the forecast's 20-80% band")
    print(band_table(held))
    print("\nthe point forecast (best_value, the median) against the best so far, and best_epoch against its epoch")
    print(point_table(held))
    share = sum(r.in_band for r in held) / len(held)
    met = abs(share - GOAL_IN_BAND) <= GOAL_TOLERANCE
    print(
        f"\ngoal on the held-out half: {GOAL_IN_BAND:.2f} +/- {GOAL_TOLERANCE:.2f} of final bests in the band: "
        f"{'met' if met else 'MISSED'} ({share:.3f})"
    )
    calibrated = outcomes(cut(calibration))
    print(
        f"calibration half: {sum(r.in_band for r in calibrated) / len(calibrated):.3f} in band; quantile loss "
        f"{pinball(calibrated):.3f}% of the best (held out: {pinball(held):.3f}%)"
    )
    if args.bootstrap:
        print(bootstrap(held))
    if args.leave_one_family_out:
        print("\neach family's held-out cases, the band calibrated without that family")
        print(leave_one_family_out(cut(calibration), cut(held_out)))
    accuracy = outcomes(cut(held_out), "val_accuracy")
    print(
        f"\nmode='max' on the held-out runs' validation accuracy ({len(accuracy)} cases; the constants were set on "
        "losses)"
    )
    print(band_table(accuracy).splitlines()[-1].replace("all", "val_accuracy", 1))
    print(point_table(accuracy).splitlines()[-1].replace("all", "val_accuracy", 1))
    print()
    print(timing(cut(held_out)))
    print(f"\n({time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
