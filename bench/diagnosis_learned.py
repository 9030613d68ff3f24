"""Would a learned classifier tell stop from continue better than trainops' rule, given what the rule sees?

The projection's stop is a hand-written rule over a few readings of the curve. This benchmark asks whether readings
of the same curves, handed to a classifier fit on the corpus, do better: if they did, the rule would be leaving
information on the table; if not, what it misses is not in these readings. Each case of
``bench/curves/corpus.json`` (cut as in ``bench/diagnosis.py``) becomes one row; a classifier is fit on the
calibration half, its stop threshold chosen by 5-fold cross-validation on that half (the best balanced accuracy
with at most 7% false stops, the raised goal's bound), and it is scored on the held-out half against trainops'
defaults on the same cases. Beside it, the classifier at the threshold best on the held-out half itself (false
stops still within 7%): chosen in hindsight, an upper bound on what it could do. Then leave one family out: fit
without the family, scored on its held-out runs.

Two sets of readings, each a question of its own:

- ``loss``: the projection's readings of the validation loss alone (projected improvement now and one evaluation
  earlier, its trend and luck parts in percent of the best, the decay per window, the |t| of the validation and
  training losses' slopes over the projection's window, the share of the epochs seen since the best, the share of
  the run done, the log of the epochs left, the noise in percent of the best, the latest value against the best,
  the learning rate against its highest so far). On the accuracy- and mAP-judged families the classifier reads
  the loss to answer for another metric, as a callback that watches only the loss would. Can a classifier replace
  the rule?
- ``rule``: trainops' own verdict and the evidence it came with, on the metric the run is judged by (the
  projection's improvement, decay, learning-rate change and luck, the shares of the epochs seen since the best of
  the monitored metric and of the validation loss, overfitting and plateau) and the training side (the training
  loss against its highest and against the best validation loss, the training accuracy now and at its highest),
  beside the loss readings above. The classifier starts from the rule's answer and may overturn it: an estimate
  of the ceiling of what these readings hold, the rule included.
- ``rule+forecast``: the rule's readings and the forecast's (``trainops.core.forecast``: the gains on the best so
  far of its median and of either end of its 20-80% band, in percent of the best, and whether it fitted curves).
  Does a fit of the Domhan curve families tell the classifier what the rule's trend does not?

Cases whose latest loss is not finite are left out: every tool stops on them. With ``--fresh FILE ...`` the
classifiers are also fit on every run of those corpus files (generated with another seed: ``bench/diagnosis.py
--fresh``), the held-out half still the test: whether more curves would teach them more.

    .venv/bin/python bench/diagnosis_learned.py                  # ~3 min
    .venv/bin/python bench/diagnosis_learned.py --fresh A.json   # also fit on the runs of A.json
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from _corpus import Case, cut, load, split
from diagnosis import TARGET_FALSE_STOPS
from sklearn.base import ClassifierMixin
from sklearn.ensemble import GradientBoostingClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from trainops.core import Action, Diagnosis, MonitorPolicy, analyze
from trainops.core.forecast import forecast
from trainops.core.metric_definitions import policy_for_task
from trainops.core.projection import PROJECTION_MIN_WINDOW, PROJECTION_WINDOW_FRACTION, projection
from trainops.core.rules import find_best
from trainops.core.stats import fit_line

POLICY = MonitorPolicy()

MODELS: dict[str, Callable[[], ClassifierMixin]] = {
    "logistic regression": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    "gradient boosting": lambda: GradientBoostingClassifier(
        n_estimators=150, max_depth=2, learning_rate=0.05, subsample=0.8, random_state=0
    ),
    "random forest": lambda: RandomForestClassifier(n_estimators=300, min_samples_leaf=5, random_state=0),
    "boosted trees, classes balanced": lambda: HistGradientBoostingClassifier(
        max_depth=3, learning_rate=0.05, max_iter=200, min_samples_leaf=20, class_weight="balanced", random_state=0
    ),
}


def _clip(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def loss_readings(case: Case) -> list[float] | None:
    """The projection's readings of the validation loss, or ``None`` when the latest loss is not finite."""
    val = [(epoch, value) for epoch, value in enumerate(case.val_loss) if math.isfinite(value)]
    train = [(epoch, value) for epoch, value in enumerate(case.train_loss) if math.isfinite(value)]
    if len(val) < 4 or not math.isfinite(case.val_loss[-1]) or not math.isfinite(case.train_loss[-1]):
        return None
    rates = list(enumerate(case.learning_rate or ()))
    left = case.planned - case.seen
    best, before = find_best(val, "min", 0.0), find_best(val[:-1], "min", 0.0)
    assert best is not None and before is not None
    now = projection(val, best, left, "planned", POLICY, "min", rates)
    then = projection(val[:-1], before, left + 1, "planned", POLICY, "min", rates)
    assert now is not None and then is not None
    scale = abs(best.value) or 1e-12
    width = max(POLICY.window, PROJECTION_MIN_WINDOW, round(PROJECTION_WINDOW_FRACTION * len(val)))
    val_fit = fit_line([e for e, _ in val[-width:]], [v for _, v in val[-width:]])
    train_fit = fit_line([e for e, _ in train[-width:]], [v for _, v in train[-width:]])
    highest = max(case.learning_rate) if case.learning_rate else 0.0
    return [
        _clip(now.improvement_pct, -50, 100),
        _clip(then.improvement_pct, -50, 100),
        _clip(now.trend_gain / scale * 100, 0, 100),
        _clip(now.noise_gain / scale * 100, 0, 100),
        now.decay,
        _clip(val_fit.t_stat, -10, 10) if val_fit else 0.0,
        _clip(train_fit.t_stat, -10, 10) if train_fit else 0.0,
        (len(val) - 1 - best.epoch) / len(val),
        case.seen / case.planned,
        math.log(left + 1),
        _clip(now.noise / scale * 100, 0, 100),
        _clip((val[-1][1] - best.value) / scale * 100, -50, 200),
        case.learning_rate[case.seen - 1] / highest if highest > 0 else 1.0,
    ]


def rule_readings(case: Case, diagnosis: Diagnosis) -> list[float]:
    """trainops' verdict, its evidence on the monitored metric, and the training side."""
    evidence = diagnosis.projection.evidence if diagnosis.projection else {}
    scale = abs(float(evidence.get("best_value") or 0.0)) or 1e-12
    val = [value for value in case.val_loss if math.isfinite(value)]
    val_best = len(val) - 1 - int(np.argmin(val)) if val else 0
    train = [value for value in case.train_loss if math.isfinite(value)]
    accuracy = [value for value in case.train_accuracy or () if math.isfinite(value)]
    return [
        float(diagnosis.recommendation.action is not Action.CONTINUE),
        _clip(float(evidence.get("projected_improvement_pct") or 0.0), -50, 100),
        float(evidence.get("decay_per_window") or 1.0),
        _clip(float(evidence.get("learning_rate_change") or 1.0), 0, 20),
        _clip(float(evidence.get("noise_gain") or 0.0) / scale * 100, 0, 100),
        _clip(float(evidence.get("trend_gain") or 0.0) / scale * 100, 0, 100),
        diagnosis.epochs_since_improvement / case.seen,
        val_best / case.seen,
        float(diagnosis.monitor != "val_loss"),
        float(diagnosis.is_overfitting),
        float(diagnosis.is_plateaued),
        train[-1] / max(train) if train and max(train) > 0 else 1.0,
        _clip(train[-1] / min(val), 0, 10) if train and val and min(val) > 0 else 1.0,
        accuracy[-1] if accuracy else -1.0,
        max(accuracy) if accuracy else -1.0,
    ]


def forecast_readings(case: Case, judged: MonitorPolicy) -> list[float]:
    """The forecast of the monitored metric: its median's and band's gains on the best so far, in percent of the
    best (optimistic end first), and whether it fitted curves (zeros when it has too few points to say)."""
    series = case.curve.series(judged.monitor) or ()
    mode = judged.resolved_mode
    projected = forecast(list(enumerate(series[: case.seen])), mode=mode, epochs_left=case.planned - case.seen)
    finite = [value for value in series[: case.seen] if math.isfinite(value)]
    if projected is None or not finite:
        return [0.0, 0.0, 0.0, 0.0]
    sign = 1.0 if mode == "min" else -1.0
    best = min(sign * value for value in finite)
    scale = abs(best) or 1e-12

    def gain(value: float) -> float:
        return _clip((best - sign * value) / scale * 100, -50, 100)

    optimistic, pessimistic = projected.best_value_q20, projected.best_value_q80
    if mode == "max":
        optimistic, pessimistic = pessimistic, optimistic
    return [gain(optimistic), gain(projected.best_value), gain(pessimistic), float(projected.method == "ensemble")]


@dataclass(frozen=True)
class Table:
    """The cases with a finite latest loss: both sets of readings, the truth, the families."""

    loss: np.ndarray
    rule: np.ndarray
    forecast: np.ndarray
    truth: np.ndarray
    families: np.ndarray

    @property
    def said(self) -> np.ndarray:
        """trainops' verdicts (stop: True): the first of the rule readings."""
        return self.rule[:, 0] == 1.0

    def readings(self, which: str) -> np.ndarray:
        if which == "loss":
            return self.loss
        if which == "rule":
            return np.hstack([self.rule, self.loss])
        return np.hstack([self.rule, self.loss, self.forecast])


def table(cases: Sequence[Case]) -> Table:
    loss, rule, forecasts, truth, families = [], [], [], [], []
    for case in cases:
        row = loss_readings(case)
        if row is None:
            continue
        judged = policy_for_task(POLICY, case.curve.task, case.records)
        diagnosis = analyze(case.records, judged, total_epochs_planned=case.planned, with_forecast=False)
        loss.append(row)
        rule.append(rule_readings(case, diagnosis))
        forecasts.append(forecast_readings(case, judged))
        truth.append(case.should_stop)
        families.append(case.curve.family)
    return Table(np.array(loss), np.array(rule), np.array(forecasts), np.array(truth), np.array(families))


def balanced(truth: np.ndarray, said: np.ndarray) -> tuple[float, float]:
    """(balanced accuracy, false-stop rate)."""
    recall = (said & truth).sum() / max(truth.sum(), 1)
    false_stops = (said & ~truth).sum() / max((~truth).sum(), 1)
    return (recall + 1 - false_stops) / 2, false_stops


def best_threshold(
    truth: np.ndarray, probability: np.ndarray, thresholds: np.ndarray
) -> tuple[float, float, float] | None:
    """(balanced accuracy, false stops, threshold) of the threshold with the best balanced accuracy whose false stops
    are within the raised goal's bound; ``None`` when no threshold keeps them there."""
    scored = [(*balanced(truth, probability >= t), t) for t in thresholds]
    return max((row for row in scored if row[1] <= TARGET_FALSE_STOPS), default=None)


def threshold(make: Callable[[], ClassifierMixin], x: np.ndarray, y: np.ndarray) -> float:
    """The stop threshold on the classifier's probability: 5-fold cross-validated on (x, y), the best balanced
    accuracy with false stops within the raised goal's bound (0.5 when none keeps them there)."""
    probability = cross_val_predict(make(), x, y, cv=5, method="predict_proba")[:, 1]
    best = best_threshold(y, probability, np.linspace(0.3, 0.95, 66))
    return 0.5 if best is None else best[2]


def hindsight(truth: np.ndarray, probability: np.ndarray) -> tuple[float, float, float]:
    """(balanced accuracy, false stops, threshold) at the threshold best on these very cases with false stops within
    the raised goal's bound: no classifier could choose it honestly, which makes it an upper bound."""
    return best_threshold(truth, probability, np.linspace(0.05, 0.95, 91)) or (0.0, 0.0, 0.0)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--fresh", nargs="+", type=Path, default=(), metavar="CORPUS", help="also fit on every run of these files"
    )
    args = parser.parse_args(argv)
    calibration, held_out = split(load())
    fit_on = table(cut([*calibration, *(run for path in args.fresh for run in load(path))]))
    held = table(cut(held_out))
    ours = balanced(held.truth, held.said)
    print(
        f"held-out half: {len(held.truth)} cases with a finite latest loss; fit on {len(fit_on.truth)} cases "
        f"(the calibration half{' and every run of ' + ', '.join(map(str, args.fresh)) if args.fresh else ''})\n"
        f"trainops (defaults) on the same cases: balanced accuracy {ours[0]:.3f}, false stops {ours[1]:.1%}"
    )
    families = sorted(set(held.families))
    for which in ("loss", "rule", "rule+forecast"):
        x, y, f = fit_on.readings(which), fit_on.truth, fit_on.families
        test = held.readings(which)
        print(f"\nreadings: {which}")
        for name, make in MODELS.items():
            cutoff = threshold(make, x, y)
            model = make().fit(x, y)
            probability = model.predict_proba(test)[:, 1]
            accuracy, false_stops = balanced(held.truth, probability >= cutoff)
            bound = hindsight(held.truth, probability)
            left_out = []
            for family in families:
                alone = make().fit(x[f != family], y[f != family])
                own = held.families == family
                said = alone.predict_proba(test[own])[:, 1] >= cutoff
                left_out.append(
                    f"{family} {balanced(held.truth[own], said)[0]:.2f} "
                    f"(trainops {balanced(held.truth[own], held.said[own])[0]:.2f})"
                )
            print(
                f"{name}: balanced accuracy {accuracy:.3f}, false stops {false_stops:.1%} (threshold {cutoff:.2f}); "
                f"at the best threshold in hindsight {bound[0]:.3f}, {bound[1]:.1%} ({bound[2]:.2f})\n"
                f"  left out: {', '.join(left_out)}"
            )


if __name__ == "__main__":
    main()
