"""Would a learned classifier tell stop from continue better than trainops' rule, given what the rule sees?

The projection's stop is a hand-written rule over a few readings of the curve. This benchmark asks whether the same
readings, handed to a classifier fit on the corpus, do better: if they did, the rule would be leaving information
on the table; if not, what it misses is not in these readings. Each case of ``bench/curves/corpus.json`` (cut as in
``bench/diagnosis.py``) becomes one row of the readings below; a classifier is fit on the calibration half, its
stop threshold chosen by 5-fold cross-validation on that half (the best balanced accuracy with at most 7% false
stops, the raised goal's bound), and it is scored on the held-out half against trainops' defaults on the same
cases. Then leave one family out: fit without the family, scored on its held-out runs.

The readings (all from the epochs seen, as the diagnosis has them): the projected improvement now and one
evaluation earlier, its trend and luck parts (in percent of the best), the decay per window, the |t| of the
monitored metric's and the training loss's slopes over the projection's window, the share of the epochs seen since
the best, the share of the run done, the log of the epochs left, the noise in percent of the best, the latest value
against the best, and the learning rate against its highest so far. The readings are of the validation loss; the
truth and trainops' verdicts follow each run's monitored metric (``bench/_corpus.py``), so on the accuracy- and
mAP-judged families the classifier reads the loss to answer for another metric, as a callback that watches only
the loss would. Cases whose latest loss is not finite are left out: every tool stops on them.

    .venv/bin/python bench/diagnosis_learned.py    # ~15 s
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
from _corpus import Case, cut, load, split
from diagnosis import TARGET_FALSE_STOPS
from sklearn.base import ClassifierMixin
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from trainops.core import Action, MonitorPolicy, analyze
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
}


def _clip(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def readings(case: Case) -> list[float] | None:
    """The case's row, or ``None`` when its latest loss is not finite."""
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


def table(cases: Sequence[Case]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(readings, truth, trainops' verdicts, families) of the cases with a finite latest loss."""
    rows, truth, rule, families = [], [], [], []
    for case in cases:
        row = readings(case)
        if row is None:
            continue
        judged = policy_for_task(POLICY, case.curve.task, case.records)
        diagnosis = analyze(case.records, judged, total_epochs_planned=case.planned, with_forecast=False)
        rows.append(row)
        truth.append(case.should_stop)
        rule.append(diagnosis.recommendation.action is not Action.CONTINUE)
        families.append(case.curve.family)
    return np.array(rows), np.array(truth), np.array(rule), np.array(families)


def balanced(truth: np.ndarray, said: np.ndarray) -> tuple[float, float]:
    """(balanced accuracy, false-stop rate)."""
    recall = (said & truth).sum() / max(truth.sum(), 1)
    false_stops = (said & ~truth).sum() / max((~truth).sum(), 1)
    return (recall + 1 - false_stops) / 2, false_stops


def threshold(make: Callable[[], ClassifierMixin], x: np.ndarray, y: np.ndarray) -> float:
    """The stop threshold on the classifier's probability: 5-fold cross-validated on (x, y), the best balanced
    accuracy with false stops within the raised goal's bound."""
    probability = cross_val_predict(make(), x, y, cv=5, method="predict_proba")[:, 1]
    scored = [(balanced(y, probability >= t), t) for t in np.linspace(0.3, 0.95, 66)]
    candidates = [(score, t) for score, t in scored if score[1] <= TARGET_FALSE_STOPS]
    return max(candidates)[1] if candidates else 0.5


def main() -> None:
    calibration, held_out = split(load())
    xc, yc, _, fc = table(cut(calibration))
    xh, yh, rule, fh = table(cut(held_out))
    ours = balanced(yh, rule)
    print(
        f"held-out half: {len(yh)} cases with a finite latest loss; fit on {len(yc)} calibration-half cases\n"
        f"trainops (defaults) on the same cases: balanced accuracy {ours[0]:.3f}, false stops {ours[1]:.1%}"
    )
    families = sorted(set(fh))
    for name, make in MODELS.items():
        cutoff = threshold(make, xc, yc)
        model = make().fit(xc, yc)
        accuracy, false_stops = balanced(yh, model.predict_proba(xh)[:, 1] >= cutoff)
        left_out = []
        for family in families:
            alone = make().fit(xc[fc != family], yc[fc != family])
            said = alone.predict_proba(xh[fh == family])[:, 1] >= cutoff
            left_out.append(
                f"{family} {balanced(yh[fh == family], said)[0]:.2f} "
                f"(trainops {balanced(yh[fh == family], rule[fh == family])[0]:.2f})"
            )
        print(
            f"{name}: balanced accuracy {accuracy:.3f}, false stops {false_stops:.1%} (threshold {cutoff:.2f})\n"
            f"  left out: {', '.join(left_out)}"
        )


if __name__ == "__main__":
    main()
