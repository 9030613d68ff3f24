"""Would readings of the model's state, beside those of its curve, tell stop from continue better?

``bench/diagnosis_ceiling.py`` shows that an oracle that knows the weights tells stop from continue far better
(0.985) than any reading of the curve so far (about 0.93 on the same families): the answer is in the state, not in
chance. This benchmark asks whether a few cheap readings of the state, ones a callback could report at the end of
an epoch, carry it. Every run of the five plain-loop families (``FAMILIES``) is trained again from its seed, and at
each cut (25%, 50%, 75% of its planned epochs) the state is read (``state_readings``):

- the validation loss per sample: its median and its 90th percentile against its mean (how the loss is spread);
- the training loss measured as the validation loss is (evaluation mode: no dropout) against the validation loss;
- for a classifier, the shares of validation samples wrong but within 0.2 of the right class's probability (about
  to flip right), right but within 0.2 of the runner-up (about to flip wrong), and wrong;
- how far the weights moved over the last three epochs, against their norm (log10).

Classifiers (boosted trees, logistic regression) are fit on the rule's readings of the curve
(``bench/diagnosis_learned.py``: trainops' verdict, its evidence and the loss readings), then on those and the
state's, cross-validated by run (5 folds, three shuffles), and compared by the area under the ROC curve and by the
balanced accuracy at the best threshold with false stops within 7% (in hindsight). The answers are the run's own
future's (future 0 of the ceiling benchmark).

    .venv/bin/python bench/diagnosis_state.py          # ~3 min on 2 cores
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import diagnosis_learned as learned
import numpy as np
from _corpus import Case, Curve, cut, load
from diagnosis_ceiling import FAMILIES, TabularLoop, _curve, _history, _json, broken, spec_of
from sklearn.base import ClassifierMixin
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from trainops.core import analyze
from trainops.core.metric_definitions import policy_for_task

MOVED_OVER = 3
"""The weights' movement is measured over this many epochs before the cut."""
STATE_READINGS = (
    "validation loss median / mean",
    "validation loss 90th percentile / mean",
    "training loss (evaluation mode) / validation loss",
    "wrong, about to flip right",
    "right, about to flip wrong",
    "wrong",
    "log10 weights moved / norm",
)
MODELS: dict[str, Callable[[], ClassifierMixin]] = {
    "boosted trees": lambda: HistGradientBoostingClassifier(
        max_depth=3, learning_rate=0.05, max_iter=200, min_samples_leaf=20, random_state=0
    ),
    "logistic regression": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
}


def state_readings(loop: TabularLoop, weights_before: Any) -> list[float]:
    """The state readings (:data:`STATE_READINGS`) of ``loop``'s model now; ``weights_before``: its weights
    :data:`MOVED_OVER` epochs ago (flattened), or ``None`` this early."""
    import torch
    from torch.nn.functional import cross_entropy

    model = loop.model
    model.eval()
    with torch.no_grad():
        out, trained = model(loop.xv), model(loop.xt)
        if loop.regression:
            per_sample = ((out - loop.yv) ** 2).flatten()
            training = float(((trained - loop.yt) ** 2).mean())
            flips = [0.0, 0.0, 0.0]
        else:
            per_sample = cross_entropy(out, loop.yv, reduction="none")
            training = float(cross_entropy(trained, loop.yt))
            probability = torch.softmax(out, 1)
            first, second = torch.topk(probability, 2, dim=1).values.unbind(1)
            right_class = probability.gather(1, loop.yv[:, None]).squeeze(1)
            right = out.argmax(1) == loop.yv
            flips = [
                float(((~right) & (first - right_class < 0.2)).float().mean()),
                float((right & (first - second < 0.2)).float().mean()),
                float((~right).float().mean()),
            ]
        mean = float(per_sample.mean()) or 1e-12
        median, high = (float(value) for value in torch.quantile(per_sample, torch.tensor([0.5, 0.9])))
    weights = torch.cat([parameter.detach().flatten() for parameter in model.parameters()])
    moved = 0.0 if weights_before is None else float((weights - weights_before).norm() / (weights.norm() + 1e-12))
    readings = [median / mean, high / mean, training / mean, *flips, math.log10(moved + 1e-9)]
    return [value if math.isfinite(value) else 0.0 for value in readings]


def train_reading(data: dict[str, Any]) -> tuple[str, dict[str, list[float | None]], dict[int, list[float]]]:
    """Train a run again, reading its state at each cut: its id, its curve as trained again, the readings by cut."""
    import torch

    torch.set_num_threads(1)
    curve = Curve.from_json(data)
    spec = spec_of(curve)
    cuts = {case.seen for case in cut([curve])}
    loop = TabularLoop.start(spec)
    records: list[dict[str, float]] = []
    readings: dict[int, list[float]] = {}
    weights: dict[int, Any] = {}  # at the start of each recent epoch
    for epoch in range(curve.planned):
        if records and broken(records[-1]):
            break
        if epoch in cuts:
            readings[epoch] = state_readings(loop, weights.get(epoch - MOVED_OVER))
        weights[epoch] = torch.cat([parameter.detach().flatten().clone() for parameter in loop.model.parameters()])
        weights.pop(epoch - MOVED_OVER - 1, None)
        records.append(loop.epoch(epoch))
    return curve.id, _history(records, curve.planned), readings


def rows(curves: Sequence[Curve], jobs: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(the rule's readings, the state's, the answers, the runs) of every case with a finite latest loss."""
    by_id = {curve.id: curve for curve in curves}
    with ProcessPoolExecutor(jobs) as pool:
        trained = list(pool.map(train_reading, [_json(curve) for curve in curves]))
    rule, state, truth, runs = [], [], [], []
    for run, history, readings in trained:
        again = _curve(by_id[run], history)
        for seen, reading in readings.items():
            case = Case(again, seen)
            loss = learned.loss_readings(case)
            if loss is None:
                continue
            judged = policy_for_task(learned.POLICY, case.curve.task, case.records)
            diagnosis = analyze(case.records, judged, total_epochs_planned=case.planned, with_forecast=False)
            rule.append(learned.rule_readings(case, diagnosis) + loss)
            state.append(reading)
            truth.append(case.should_stop)
            runs.append(run)
    return np.array(rule), np.array(state), np.array(truth), np.array(runs)


def scores(
    make: Callable[[], ClassifierMixin], x: np.ndarray, truth: np.ndarray, runs: np.ndarray
) -> tuple[float, float]:
    """(area under the ROC curve, balanced accuracy at the best threshold in hindsight), cross-validated by run
    and averaged over three shuffles of the runs into folds."""
    areas, accuracies = [], []
    names = np.unique(runs)
    for seed in range(3):
        order = dict(zip(names, np.random.default_rng(seed).permutation(len(names)), strict=True))
        groups = np.array([order[run] for run in runs])
        probability = cross_val_predict(make(), x, truth, cv=GroupKFold(5), groups=groups, method="predict_proba")[:, 1]
        areas.append(roc_auc_score(truth, probability))
        accuracies.append(learned.hindsight(truth, probability)[0])
    return float(np.mean(areas)), float(np.mean(accuracies))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2, help="processes training the runs (default 2)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    curves = [curve for curve in load() if curve.family in FAMILIES]
    rule, state, truth, runs = rows(curves, args.jobs)
    said = rule[:, 0] == 1.0  # trainops' verdict: the rule's first reading
    accuracy, false_stops = learned.balanced(truth, said)
    print(f"{len(curves)} runs of {', '.join(FAMILIES)} trained again: {len(truth)} cases, {int(truth.sum())} stops")
    print(f"trainops (defaults): balanced accuracy {accuracy:.3f}, false stops {false_stops:.1%}\n")
    print(f"{'classifier':<20} {'readings':<28} {'ROC area':>8} {'balanced accuracy (hindsight)':>30}")
    for name, make in MODELS.items():
        for label, x in (("the curve's (rule's)", rule), ("the curve's and the state's", np.hstack([rule, state]))):
            area, best = scores(make, x, truth, runs)
            print(f"{name:<20} {label:<28} {area:8.3f} {best:30.3f}")
    print(f"\n({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
