"""Baselines for the stop/continue benchmark: what other tools' rules say at a cut.

Each baseline answers, for a :class:`~_corpus.Case`, "having seen exactly these epochs, does this tool say stop?".
A rule that would have stopped training at any epoch up to the last one seen counts as stop: the run would never
have reached the cut. Each rule is re-implemented in plain Python from the source file named in its docstring,
read in the public repository at the version named there, including what that code does with NaN (the corpus
writes NaN wherever a run had gone non-finite).

:data:`BASELINES` maps a readable name to each baseline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Literal

from _corpus import Case

# --- Keras ------------------------------------------------------------------------------------------------------


def keras_stop_epoch(val_loss: Sequence[float], patience: int) -> int | None:
    """The epoch at which Keras' ``EarlyStopping`` stops training, or None if it lets every epoch given run.

    Source: keras-team/keras ``keras/src/callbacks/early_stopping.py`` (version 9a97f39, after PR #20533 made
    instances reusable; its ``_is_improvement`` is the one in ``monitor_callback.py``), configured as
    ``monitor="val_loss", mode="min", min_delta=0, baseline=None, start_from_epoch=0``:

    - ``on_train_begin`` sets ``best = None`` and ``_is_improvement(current, None)`` is True, so the first epoch's
      value becomes ``best`` whatever it is, NaN included. (Keras 3 before that PR started ``best`` at ``inf``,
      where a NaN epoch 0 is not an improvement; the two versions differ only when epoch 0 is NaN.)
    - Every epoch first does ``wait += 1``. If ``current < best`` (``ops.less``; NaN compares False, so a NaN
      epoch is never an improvement and counts toward patience), ``best`` and ``wait = 0`` are updated and the
      epoch ends. Otherwise training stops when ``wait >= patience and epoch > 0``.

    So training stops at exactly ``best epoch + patience``. Keras does not check finiteness here (that is the
    separate ``TerminateOnNaN`` callback), so a run gone NaN stops only when patience runs out.

    >>> keras_stop_epoch([1.0, 0.9, 0.8, 0.85, 0.9, 0.95, 1.0], patience=3)  # best at epoch 2
    5
    >>> print(keras_stop_epoch([1.0, 0.9, 0.8, float("nan")], patience=3))  # NaN is only a non-improvement
    None
    >>> keras_stop_epoch([float("nan"), 0.9, 0.8, 0.7], patience=3)  # a NaN epoch 0 is a best nothing beats
    3
    """
    best: float | None = None
    wait = 0
    for epoch, current in enumerate(val_loss):
        wait += 1
        if best is None or current < best:
            best = current
            wait = 0
        elif wait >= patience and epoch > 0:
            return epoch
    return None


def keras_early_stopping(case: Case, patience: int) -> bool:
    """Keras ``EarlyStopping`` on the run's monitored metric (see :func:`keras_stop_epoch`) has stopped by the cut.

    The metric is the validation loss, or a classification's accuracy or a detection's mAP50 with ``mode="max"``:
    with ``min_delta=0``, Keras in max mode stops where it would in min mode on the negated values
    (``Case.objective``).

    >>> from _corpus import Curve
    >>> curve = Curve(id="x", family="t", config={}, planned=10, train_loss=(1.0,) * 7,
    ...               val_loss=(1.0, 0.9, 0.8, 0.85, 0.9, 0.95, 1.0))
    >>> keras_early_stopping(Case(curve, seen=5), patience=3), keras_early_stopping(Case(curve, seen=6), patience=3)
    (False, True)
    """
    return keras_stop_epoch(case.objective, patience) is not None


# --- Lightning --------------------------------------------------------------------------------------------------


def lightning_stop_epoch(val_loss: Sequence[float], patience: int) -> int | None:
    """The epoch at which Lightning's ``EarlyStopping`` stops training, or None if it lets every epoch given run.

    Source: Lightning-AI/pytorch-lightning ``src/lightning/pytorch/callbacks/early_stopping.py`` (versions
    02095be and eddba2f, same logic), ``_evaluate_stopping_criteria`` with ``monitor="val_loss", mode="min",
    min_delta=0, check_finite=True`` and ``stopping_threshold`` / ``divergence_threshold`` unset; one check per
    epoch (the default when validation runs every epoch):

    - ``best_score`` starts at ``inf``.
    - A non-finite value (NaN or +-inf) stops training at once: ``check_finite`` is tested first.
    - Otherwise ``monitor_op(current - min_delta, best_score)``, i.e. ``current < best`` with ``min_delta`` 0,
      is an improvement: ``best_score = current``, ``wait_count = 0``.
    - Otherwise ``wait_count += 1`` and training stops when ``wait_count >= patience``.

    For finite values this stops at ``best epoch + patience``, the same epoch as Keras.

    >>> lightning_stop_epoch([1.0, 0.9, 0.8, 0.85, 0.9, 0.95, 1.0], patience=3)
    5
    >>> lightning_stop_epoch([1.0, 0.9, 0.8, float("nan")], patience=3)
    3
    """
    best = math.inf
    wait = 0
    for epoch, current in enumerate(val_loss):
        if not math.isfinite(current):
            return epoch
        if current < best:
            best = current
            wait = 0
        else:
            wait += 1
            if wait >= patience:
                return epoch
    return None


def lightning_early_stopping(case: Case, patience: int) -> bool:
    """Lightning ``EarlyStopping`` on the run's monitored metric (see :func:`lightning_stop_epoch`) has stopped by
    the cut; in max mode (an accuracy, an mAP50) as in min mode on the negated values, as for Keras.

    A NaN at the last epoch seen: Lightning stops there, Keras (patience 3) does not yet.

    >>> from _corpus import Curve
    >>> nan = float("nan")
    >>> curve = Curve(id="x", family="t", config={}, planned=10, train_loss=(1.0, 0.9, 0.8, nan),
    ...               val_loss=(1.0, 0.9, 0.8, nan))
    >>> lightning_early_stopping(Case(curve, seen=4), patience=3), keras_early_stopping(Case(curve, seen=4), patience=3)
    (True, False)
    """
    return lightning_stop_epoch(case.objective, patience) is not None


# --- KTRDR ------------------------------------------------------------------------------------------------------

KTRDR_WINDOW = 10
"""Epochs in KTRDR's overfitting window, and epochs without a new best before it calls a plateau."""
KTRDR_CHANGE = 0.05
"""Relative fall of the train loss and rise of the validation loss that KTRDR's overfitting check needs."""


@dataclass(frozen=True)
class KtrdrAnalysis:
    """The trend indicators KTRDR's operations service stores with a training's metrics after an epoch."""

    best_epoch: int | None
    epochs_since_improvement: int
    is_overfitting: bool
    is_plateaued: bool


def ktrdr_analysis(train_loss: Sequence[float], val_loss: Sequence[float]) -> KtrdrAnalysis:
    """KTRDR's trend indicators for a training that has run these epochs (one value of each loss per epoch).

    Source: kpiteira/ktrdr ``ktrdr/api/services/operations_service.py``,
    ``OperationsService._update_training_metrics_analysis`` (versions 029af89 and 71a9ca5, same logic), run after
    every epoch a training reports; its design is ``docs/architecture/training/metrics-exposure/02-design.md``.
    (``ktrdr/training/analytics/`` holds a different thing: a per-epoch ``overfitting_score`` from the train/val
    loss and accuracy gaps that only raises alerts.)

    - Best epoch: Python's ``min`` over ``(epoch, val_loss)`` pairs by loss, so the earliest of equal lowest
      values, with no ``min_delta``. A NaN is a value there (only None is skipped): ``min`` never replaces a
      candidate by a NaN, but a NaN at epoch 0 stays the best forever, since nothing compares below it.
    - ``is_plateaued``: ``epochs_since_improvement = last epoch - best epoch >= 10``.
    - ``is_overfitting``: only once 10 epochs have run, over the last 10 (``epochs[-10:]``), comparing their
      first and last values only (9 epochs apart; no means, no fit): train loss fell, validation loss rose, and
      ``(first - last) / first > 0.05`` for train and ``(last - first) / first > 0.05`` for validation, a change
      counting as 0 when the first value is not positive.

    There is no finiteness check: a NaN compares False everywhere, so it never reads as overfitting.

    The issue summarised the rules as "train loss down > 5% and val loss up > 5% over the last 10 epochs;
    10 epochs without improvement": the source agrees, and the above is what "over the last 10 epochs" means in it.

    >>> ktrdr_analysis([1.0, 0.9, 0.8] + [0.7] * 10, [1.0, 0.9, 0.8] + [0.85] * 10)
    KtrdrAnalysis(best_epoch=2, epochs_since_improvement=10, is_overfitting=False, is_plateaued=True)
    >>> train = [1.0 - 0.05 * epoch for epoch in range(10)]
    >>> val = [0.5, 0.45, 0.42, 0.41, 0.41, 0.42, 0.43, 0.45, 0.5, 0.53]  # 0.5 -> 0.53: up 6% in the window
    >>> ktrdr_analysis(train, val).is_overfitting
    True
    >>> ktrdr_analysis(train, val[:-1] + [0.52]).is_overfitting  # up 4%
    False
    """
    if not val_loss:
        return KtrdrAnalysis(best_epoch=None, epochs_since_improvement=0, is_overfitting=False, is_plateaued=False)
    best_epoch, _ = min(enumerate(val_loss), key=lambda pair: pair[1])
    epochs_since_improvement = len(val_loss) - 1 - best_epoch
    is_overfitting = False
    if len(val_loss) >= KTRDR_WINDOW:
        train_first, train_last = train_loss[-KTRDR_WINDOW], train_loss[-1]
        val_first, val_last = val_loss[-KTRDR_WINDOW], val_loss[-1]
        train_improvement = (train_first - train_last) / train_first if train_first > 0 else 0
        val_degradation = (val_last - val_first) / val_first if val_first > 0 else 0
        is_overfitting = (
            train_last < train_first
            and val_last > val_first
            and train_improvement > KTRDR_CHANGE
            and val_degradation > KTRDR_CHANGE
        )
    return KtrdrAnalysis(
        best_epoch=best_epoch,
        epochs_since_improvement=epochs_since_improvement,
        is_overfitting=is_overfitting,
        is_plateaued=epochs_since_improvement >= KTRDR_WINDOW,
    )


def ktrdr_stop_epoch(train_loss: Sequence[float], val_loss: Sequence[float]) -> int | None:
    """The first epoch after which KTRDR's indicators say overfitting or plateau, or None.

    KTRDR recomputes its indicators after every epoch and does not stop training itself: an agent polls them
    (the design's example agent polls every 30 s and cancels the operation), so the first epoch at which either
    indicator is set is where such an agent stops the run. The indicators are not sticky, so a later epoch may
    clear them again; that does not matter once the run is cancelled. (That example agent tests its own plateau,
    ``epochs_since_improvement > 15``; this baseline uses the shipped ``is_plateaued``, 10 or more.)
    """
    for seen in range(1, len(val_loss) + 1):
        analysis = ktrdr_analysis(train_loss[:seen], val_loss[:seen])
        if analysis.is_overfitting or analysis.is_plateaued:
            return seen - 1
    return None


def ktrdr_rules(case: Case) -> bool:
    """KTRDR's overfitting or plateau indicator (see :func:`ktrdr_analysis`) has been set by the cut.

    A validation loss that only equals its best (epoch 2) from then on: the plateau is called at epoch 12.

    >>> from _corpus import Curve
    >>> curve = Curve(id="x", family="t", config={}, planned=20, train_loss=(1.0, 0.9, 0.8) + (0.7,) * 10,
    ...               val_loss=(1.0, 0.9, 0.8) + (0.8,) * 10)
    >>> ktrdr_rules(Case(curve, seen=12)), ktrdr_rules(Case(curve, seen=13))
    (False, True)

    With the validation loss at 0.85 instead, overfitting is called at epoch 11 already: over epochs 2 to 11
    the train loss fell 12.5% and the validation loss rose 6.25%.

    >>> curve = Curve(id="x", family="t", config={}, planned=20, train_loss=(1.0, 0.9, 0.8) + (0.7,) * 10,
    ...               val_loss=(1.0, 0.9, 0.8) + (0.85,) * 10)
    >>> ktrdr_stop_epoch(curve.train_loss, curve.val_loss)
    11
    """
    return ktrdr_stop_epoch(case.train_loss, case.val_loss) is not None


# --- W&B MCP server ---------------------------------------------------------------------------------------------

Trend = Literal["insufficient_data", "decreasing", "plateaued", "increasing"]
Diagnosis = Literal["insufficient_data", "training", "converged", "diverging"]

WANDB_MIN_POINTS = 10
"""Fewer finite values than this and W&B's diagnosis reports ``insufficient_data`` instead of a trend."""
WANDB_BAND = 0.05
"""W&B's trend band: half means (and the tail against the second half) within 5% read as flat."""
WANDB_GAP_GROWTH = 1.3
"""W&B calls overfitting when the train/val gap of the second half is this many times that of the first."""


def wandb_trend(values: Sequence[float]) -> Trend:
    """W&B MCP server's trend of a metric series (``_compute_trend``; see :func:`wandb_diagnose`).

    Compares the means of the two halves (the second gets the odd point) with a 5% band. A fall is called
    ``plateaued`` rather than ``decreasing`` when the mean of the last 10% of points is within 5% of the second
    half's mean, so a curve that fell and then levelled off reads as flat.

    >>> wandb_trend([1 / (epoch + 1) for epoch in range(10)])
    'decreasing'
    >>> wandb_trend([1.0, 0.6, 0.45, 0.4, 0.38, 0.37, 0.37, 0.37, 0.37, 0.37])
    'plateaued'
    """
    if len(values) < WANDB_MIN_POINTS:
        return "insufficient_data"
    half = len(values) // 2
    first_half_mean = sum(values[:half]) / half
    second_half_mean = sum(values[half:]) / (len(values) - half)
    tail = values[-max(1, len(values) // 10) :]
    tail_mean = sum(tail) / len(tail)
    if second_half_mean < first_half_mean * (1 - WANDB_BAND):
        if abs(tail_mean - second_half_mean) / max(abs(second_half_mean), 1e-8) < WANDB_BAND:
            return "plateaued"
        return "decreasing"
    if second_half_mean > first_half_mean * (1 + WANDB_BAND):
        return "increasing"
    return "plateaued"


@dataclass(frozen=True)
class WandbDiagnosis:
    """The fields of W&B's ``diagnose_run`` answer that bear on stopping.

    ``says_stop`` is how an agent acting on the answer reads it: stop when it reports overfitting
    (``overfit_signal.detected``), a flat or worsening validation trend (``overfit_signal.val_loss_trend``
    ``plateaued`` or ``increasing``), a flat or rising train loss (``diagnosis`` ``converged``, for which the tool
    itself recommends that "run can likely be stopped", or ``diverging``), or non-finite values
    (``nan_warnings``). Continue on ``training`` (train loss falling) with none of those, and on
    ``insufficient_data`` (fewer than 10 finite points, where the tool has no trend to report).
    """

    diagnosis: Diagnosis
    train_loss_trend: Trend | None
    val_loss_trend: Trend | None
    overfit_detected: bool
    non_finite: bool

    @property
    def says_stop(self) -> bool:
        return (
            self.diagnosis in ("converged", "diverging")
            or self.overfit_detected
            or self.val_loss_trend in ("plateaued", "increasing")
            or self.non_finite
        )


def wandb_diagnose(
    train_loss: Sequence[float], val_loss: Sequence[float], *others: Sequence[float] | None
) -> WandbDiagnosis:
    """W&B MCP server's ``diagnose_run`` on a run that logged one history row per epoch.

    Source: wandb/wandb-mcp-server ``src/wandb_mcp_server/mcp_tools/diagnose_run.py`` (version 0b2dff3), with
    ``train_loss`` and ``val_loss`` as the auto-detected loss keys and ``others`` the further metrics it reads
    (accuracies):

    - History: up to ``DIAGNOSIS_SAMPLES`` (500) sampled rows; every epoch here (the server's sampling of longer
      runs is not reproduced). ``get_run_history`` drops NaN and +-inf from the rows and counts them per key;
      any count gives ``nan_warnings``.
    - ``diagnosis`` comes from the trend (:func:`wandb_trend`) of the finite train losses only: ``decreasing``
      -> ``training``, ``plateaued`` -> ``converged``, ``increasing`` -> ``diverging``; fewer than 10 values ->
      ``insufficient_data``.
    - ``overfit_signal`` (``_detect_overfit``), only with 10 or more finite values of each loss:
      detected when the train trend is ``decreasing`` and the validation trend ``increasing`` or ``plateaued``,
      or when the mean ``|val - train|`` over the second half of the epochs where both are finite exceeds 1.3
      times that over the first half (needs 10 such epochs; the gap is absolute, so a growing val-below-train gap
      counts too).

    An older version (32f6b31) paired the two series by position after dropping NaNs (not by epoch), and let
    infinities into the trends; the version followed here pairs by epoch and keeps only finite values.

    >>> train = [1 / (epoch + 1) for epoch in range(12)]
    >>> healthy = wandb_diagnose(train, [loss + 0.1 for loss in train])
    >>> healthy.diagnosis, healthy.val_loss_trend, healthy.overfit_detected, healthy.says_stop
    ('training', 'decreasing', False, False)
    >>> wandb_diagnose(train, [0.6, 0.5, 0.45, 0.42, 0.41, 0.42, 0.44, 0.47, 0.5, 0.53, 0.56, 0.6]).overfit_detected
    True
    """
    train = [value for value in train_loss if math.isfinite(value)]
    val = [value for value in val_loss if math.isfinite(value)]
    series = (train_loss, val_loss, *(other for other in others if other is not None))
    non_finite = any(not math.isfinite(value) for values in series for value in values)
    train_trend = wandb_trend(train)
    diagnosis: Diagnosis = {
        "insufficient_data": "insufficient_data",
        "decreasing": "training",
        "plateaued": "converged",
        "increasing": "diverging",
    }[train_trend]
    if len(train) < WANDB_MIN_POINTS or len(val) < WANDB_MIN_POINTS:
        return WandbDiagnosis(diagnosis, None, None, overfit_detected=False, non_finite=non_finite)
    val_trend = wandb_trend(val)
    overfit = train_trend == "decreasing" and val_trend in ("increasing", "plateaued")
    pairs = [(t, v) for t, v in zip(train_loss, val_loss, strict=True) if math.isfinite(t) and math.isfinite(v)]
    if len(pairs) >= WANDB_MIN_POINTS:
        half = len(pairs) // 2
        gap_early = sum(abs(v - t) for t, v in pairs[:half]) / half
        gap_late = sum(abs(v - t) for t, v in pairs[half:]) / (len(pairs) - half)
        overfit = overfit or gap_late > gap_early * WANDB_GAP_GROWTH
    return WandbDiagnosis(diagnosis, train_trend, val_trend, overfit_detected=overfit, non_finite=non_finite)


def wandb_mcp_diagnose(case: Case) -> bool:
    """W&B's ``diagnose_run``, called once on the epochs seen, says stop (see :attr:`WandbDiagnosis.says_stop`).

    ``diagnose_run`` is an on-demand health check ("is my run okay?"), not a monitor, so it is asked once at the
    cut rather than after every epoch.

    >>> from _corpus import Curve
    >>> train = tuple(1 / (epoch + 1) for epoch in range(12))
    >>> healthy = Curve(id="x", family="t", config={}, planned=20, train_loss=train,
    ...                 val_loss=tuple(loss + 0.1 for loss in train))
    >>> wandb_mcp_diagnose(Case(healthy, seen=12)), wandb_mcp_diagnose(Case(healthy, seen=9))
    (False, False)
    >>> gone_nan = Curve(id="y", family="t", config={}, planned=20, train_loss=train[:8] + (float("nan"),),
    ...                  val_loss=train[:8] + (float("nan"),))
    >>> wandb_mcp_diagnose(Case(gone_nan, seen=9))
    True
    """
    return wandb_diagnose(case.train_loss, case.val_loss, case.train_accuracy, case.val_accuracy).says_stop


# --- Registry ---------------------------------------------------------------------------------------------------

BASELINES: dict[str, Callable[[Case], bool]] = {
    "Keras EarlyStopping (patience 3)": partial(keras_early_stopping, patience=3),
    "Keras EarlyStopping (patience 5)": partial(keras_early_stopping, patience=5),
    "Keras EarlyStopping (patience 10)": partial(keras_early_stopping, patience=10),
    "Lightning EarlyStopping (patience 3, check_finite)": partial(lightning_early_stopping, patience=3),
    "Lightning EarlyStopping (patience 10, check_finite)": partial(lightning_early_stopping, patience=10),
    "KTRDR rules": ktrdr_rules,
    "W&B MCP diagnose": wandb_mcp_diagnose,
}
"""Every baseline by readable name: each says whether its tool says stop (True) or continue (False) at a cut."""
