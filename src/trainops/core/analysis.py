"""``analyze``: from a metric history to a diagnosis with evidence and a recommendation."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from itertools import pairwise
from operator import attrgetter

from trainops.core import rules
from trainops.core.diagnosis import Action, Diagnosis, Recommendation, Signal, SignalRule, Trend, TrendDirection
from trainops.core.epoch import FIELD_METRICS, EpochRecord
from trainops.core.forecast import Forecast, first_step, forecast
from trainops.core.policy import Mode, MonitorPolicy, unbounded_score
from trainops.core.projection import (
    Horizon,
    ceiling,
    percent_of_best,
    projected_improvement,
    projection,
    worth_continuing,
    worth_gaining,
)
from trainops.core.rules import Best, Point, _fmt, _r

STALL_BACKED_PATIENCE = 1.5
"""A score's projected gain is overruled when neither it nor the validation loss has improved for this many times
``policy.patience`` evaluations (:func:`stall_backed`). Calibrated on the calibration half of the curve corpus
(``bench/diagnosis.py``): 1.25 to 1.75 score alike; at 1 it stops runs that were about to improve."""

MOVING_TOLERANCE_PCT = 0.1
"""The training loss is still changing, for the hold on an unmoved metric (:func:`still_changing`), when its
fitted change over the window is significant and at least this percentage: a model at chance (a cross-entropy
near ln k) changes its loss by a fraction of a percent an epoch before it separates the classes, which the
trend a person reads (``policy.flat_tolerance_pct``, 1%) calls flat. Chosen on the calibration half
(``bench/diagnosis.py``): 0.1 to 0.5 score alike there; at 0 the least significant tilt holds a stalled run."""

DIVERGENCE_RULES = frozenset(
    {SignalRule.NON_FINITE, SignalRule.DIVERGENCE_THRESHOLD, SignalRule.LOSS_BLOWUP, SignalRule.TRAIN_LOSS_RISING}
)
STALL_RULES = frozenset({SignalRule.PLATEAU, SignalRule.NO_IMPROVEMENT})
SECONDING_RULES = frozenset({SignalRule.OVERFITTING, *STALL_RULES})
STOP_RULES: dict[str, tuple[frozenset[SignalRule], ...]] = {
    # which signals mean stop, in order of precedence, for each ``policy.stop_rule``
    "projection": (DIVERGENCE_RULES, frozenset({SignalRule.PROJECTED_IMPROVEMENT})),
    "patience": (DIVERGENCE_RULES, frozenset({SignalRule.OVERFITTING}), STALL_RULES),
}


def series(history: Sequence[EpochRecord], name: str) -> list[Point]:
    """The ``(epoch, value)`` points of one metric, skipping epochs that did not report it."""
    if name in FIELD_METRICS:  # read the attribute directly: this runs over every epoch on every analysis
        return [(record.epoch, value) for record in history if (value := getattr(record, name)) is not None]
    return [(record.epoch, value) for record in history if (value := record.metrics.get(name)) is not None]


def analyze(
    history: Sequence[EpochRecord],
    policy: MonitorPolicy | None = None,
    *,
    total_epochs_planned: int | None = None,
    with_forecast: bool = True,
) -> Diagnosis:
    """Judge a run from its per-epoch history. Pure: same history and policy, same diagnosis.

    Args:
        history: Epoch records, oldest first.
        policy: What to monitor and how patient to be; the defaults watch ``val_loss``.
        total_epochs_planned: The run's planned length, when known: the horizon of the projection and the forecast
            (without one, as many epochs again as the run has done, at least ``patience``).
        with_forecast: ``False`` leaves ``forecast`` out (a replay judges every prefix and needs only the
            recommendation, which does not depend on it).

    Returns:
        The best epoch, epochs since improvement, overfitting / plateau / divergence verdicts, the trend, every
        signal that fired with its evidence, and a recommendation with a reason a person can act on.

    Example:
        >>> records = [EpochRecord(epoch=e, train_loss=1 / (e + 1), val_loss=1 / (e + 1)) for e in range(20)]
        >>> diagnosis = analyze(records)
        >>> diagnosis.best_epoch, diagnosis.recommendation.action.value
        (19, 'continue')
    """
    return analyze_prefix(
        in_order(history), policy or MonitorPolicy(), total_epochs_planned, with_forecast=with_forecast, said_stop={}
    )


def analyze_prefix(
    history: Sequence[EpochRecord],
    policy: MonitorPolicy,
    total_epochs_planned: int | None,
    *,
    with_forecast: bool,
    said_stop: dict[int, bool],
) -> Diagnosis:
    """:func:`analyze` of ``history`` (in order, one record per epoch), sharing the projection's verdicts with the
    other prefixes of one history: ``said_stop`` maps an epoch to whether the projection said stop on the history up
    to it. The prefix ending at an epoch records its verdict there, and :func:`confirm` reads the verdicts of the
    evaluations before the latest from it instead of projecting them again: a replay, which judges every prefix in
    order, then projects each once (with ``confirm_epochs=1000`` it projected each up to 999 times).
    """
    mode = policy.resolved_mode
    monitored = series(history, policy.monitor)
    train = series(history, "train_loss")
    val = series(history, "val_loss")
    rates = series(history, "learning_rate")
    fraction = _fraction(policy.monitor, monitored, mode)

    best = rules.find_best(monitored, mode, policy.min_delta)
    best_val = best if policy.monitor == "val_loss" else rules.find_best(val, "min", 0.0)
    current_trend = rules.trend(policy.monitor, monitored, policy, mode)
    latest = rules.last_window(monitored, 1)

    candidates: list[Signal | None] = []
    if policy.check_finite:
        watched = {policy.monitor: monitored, "train_loss": train}
        candidates.append(rules.non_finite(watched, policy.window))
    if latest:
        candidates.append(rules.divergence_threshold(policy.monitor, latest[0], policy, mode))
        if best is not None:
            candidates.append(rules.blowup(policy.monitor, monitored, best, policy, mode))
    start = unmoved_start(monitored, policy)
    if start is None:  # while the metric has not moved, a rising training loss is the model changing (see below)
        candidates.append(rules.train_loss_rising(train, policy, rates))
    candidates.append(rules.overfitting(train, val, policy, policy.min_delta if best_val is best else 0.0))
    if best is not None:
        # Judge the stall on what happened since the best epoch: a window reaching back past it would average
        # the fall into the best with the rise after it and call a rising metric flat.
        since_best = [point for point in monitored if point[0] > best.epoch]
        candidates.append(
            rules.no_improvement(policy.monitor, best, policy, rules.trend(policy.monitor, since_best, policy, mode))
        )
    done = epochs_done(len(history), history[0].epoch, history[-1].epoch) if history else 0
    epochs_left, horizon = _horizon(done, total_epochs_planned, policy)
    extension = None
    improving = current_trend.direction is TrendDirection.IMPROVING
    if horizon == "planned" and epochs_left == 0 and best is not None and improving:  # still improving at its end
        extension = extend(monitored, best.value, policy, mode, done, fraction)
    projected = None
    if best is not None and policy.stop_rule == "projection":
        projected = _projected(monitored, rates, best, epochs_left, horizon, policy, mode, extension)
        if history[-1].epoch == monitored[-1][0]:  # the projection at this epoch, as confirm reads it later
            said_stop[monitored[-1][0]] = projected is not None and projected.evidence["worth_continuing"] is False
        if projected is not None and projected.severity != "info" and epochs_left > 0 and start is not None:
            projected = hold_unmoved(projected, start, train, policy)
        if projected is not None and projected.severity != "info" and epochs_left > 0:
            projected = confirm(projected, history, monitored, rates, policy, mode, total_epochs_planned, said_stop)
        if projected is not None and projected.severity == "info" and epochs_left > 0 and start is None:
            projected = stall_backed(projected, best, best_val, val, policy)
        if projected is not None and projected.severity != "info":
            candidates.append(projected)
    signals = [signal for signal in candidates if signal is not None]
    fired = {signal.rule: signal for signal in signals}

    overfit = fired.get(SignalRule.OVERFITTING)
    # the weights at hand are the latest epoch's, validated or not: a best before it is one to restore
    last_epoch = history[-1].epoch if history else None
    return Diagnosis(
        monitor=policy.monitor,
        mode=mode,
        best_epoch=best.epoch if best else None,
        best_value=best.value if best else None,
        best_val_loss=best_val.value if best_val else None,
        epochs_since_improvement=best.since if best else len(monitored),
        is_plateaued=SignalRule.PLATEAU in fired,
        is_overfitting=overfit is not None,
        overfitting_since_epoch=_int(overfit.evidence["since_epoch"]) if overfit else None,
        is_diverging=bool(DIVERGENCE_RULES & fired.keys()),
        trend=current_trend,
        signals=signals,
        projection=projected,
        forecast=forecast(monitored, mode=mode, epochs_left=epochs_left, fraction=fraction) if with_forecast else None,
        recommendation=recommend(
            signals, best, current_trend, policy, monitored, last_epoch, total_epochs_planned, projected, extension
        ),
        epochs_analyzed=len(history),
    )


def _fraction(metric: str, monitored: Sequence[Point], mode: Mode) -> bool | None:
    """What the forecast is told of the monitored metric's ceiling: a fraction as trainops defines them (1 is
    its ceiling), a score with none (a Sharpe ratio), or unknown (judged from its values)."""
    if ceiling(metric, monitored, mode) is not None:
        return True
    return False if unbounded_score(metric) else None


def in_order(history: Sequence[EpochRecord]) -> Sequence[EpochRecord]:
    """``history`` oldest first with one record per epoch, the last one sent (as the store keeps them): a list
    collected across restarts, or newest first, would otherwise fit trends backwards. Returned as it is when it is
    in order already, as the store's histories are.

    >>> [r.epoch for r in in_order([EpochRecord(epoch=e) for e in (2, 0, 1, 0)])]
    [0, 1, 2]
    """
    if all(earlier.epoch < later.epoch for earlier, later in pairwise(history)):
        return history
    return sorted({record.epoch: record for record in history}.values(), key=lambda record: record.epoch)


def _int(value: object) -> int | None:
    return value if isinstance(value, int) else None


def epochs_done(records: int, first_epoch: int, last_epoch: int) -> int:
    """How many epochs a run has trained, from its ``records`` numbered ``first_epoch`` to ``last_epoch``: its
    epoch numbers count when they say more than its records do, as a resumed run's (Keras' ``initial_epoch``, a
    Lightning checkpoint) or one that reports every few epochs. Numbered from 0, as trainops' callbacks number
    them, unless the first epoch is 1 (a loop counting from 1).

    >>> epochs_done(10, 0, 9), epochs_done(10, 1, 10), epochs_done(50, 50, 99), epochs_done(30, 0, 290)
    (10, 10, 100, 291)
    """
    return max(records, last_epoch + (0 if first_epoch == 1 else 1))


def _horizon(epochs_done: int, total_epochs_planned: int | None, policy: MonitorPolicy) -> tuple[int, Horizon]:
    """The epochs the run has left: of its planned length, or with no plan, as many again as it has run (at least
    ``patience``)."""
    if total_epochs_planned:
        return max(total_epochs_planned - epochs_done, 0), "planned"
    return max(policy.patience, epochs_done), "assumed"


def extend(
    monitored: Sequence[Point],
    best: float,
    policy: MonitorPolicy,
    mode: Mode,
    epochs_done: int,
    fraction: bool | None = None,
) -> tuple[int, Forecast] | None:
    """How many epochs past the end of a run are projected to improve its ``best`` by more than
    ``policy.min_improvement_pct``, with the forecast at that many, by the forecast's median (its cautious end);
    ``None`` when not even as many epochs again as the run has done (at least ``patience``) would.

    >>> losses = [(e, 1.0 / (e + 1)) for e in range(40)]
    >>> epochs, projected = extend(losses, losses[-1][1], MonitorPolicy(), "min", 40)
    >>> 0 < epochs <= 40, projected.best_value < losses[-1][1]
    (True, True)
    """
    sign = 1.0 if mode == "min" else -1.0

    def worth(epochs: int) -> Forecast | None:
        projected = forecast(monitored, mode=mode, epochs_left=epochs, fraction=fraction)
        if projected is None or projected.method != "ensemble":
            return None
        gain = sign * (best - projected.best_value)
        return projected if worth_gaining(gain, percent_of_best(gain, best), policy) else None

    # the projected gain never shrinks with more epochs: the first worth it, by bisection (the limit if none is)
    epochs = first_step(lambda step: worth(step) is not None, max(policy.patience, epochs_done))
    projected = worth(epochs)
    return None if projected is None else (epochs, projected)


def confirm(
    signal: Signal,
    history: Sequence[EpochRecord],
    monitored: Sequence[Point],
    rates: Sequence[Point],
    policy: MonitorPolicy,
    mode: Mode,
    total_epochs_planned: int | None,
    said_stop: dict[int, bool] | None = None,
) -> Signal:
    """A projection's stop, confirmed: it stands when the projection also found continuing not worth it at the
    ``policy.confirm_epochs - 1`` evaluations of the monitored metric before the latest, each judged on the history
    up to it as it was then. Otherwise the signal turns to information (the run continues), saying how many
    evaluations in a row have said stop so far.

    Judging the earlier evaluations again from the history keeps the diagnosis pure: whoever asks, whenever they
    ask, the same history gets the same answer, with no state kept between calls. ``said_stop`` holds verdicts
    already judged on this history's earlier prefixes (:func:`analyze_prefix`).
    """
    needed = policy.confirm_epochs
    known = {} if said_stop is None else said_stop
    in_a_row = 1
    while in_a_row < needed and in_a_row < len(monitored):
        epoch = monitored[len(monitored) - in_a_row - 1][0]
        if epoch not in known:
            earlier = monitored[: len(monitored) - in_a_row]
            known[epoch] = _said_stop(earlier, history, rates, policy, mode, total_epochs_planned)
        if not known[epoch]:
            break
        in_a_row += 1
    confirmed = in_a_row >= needed
    update: dict[str, object] = {
        "parameters": {**signal.parameters, "confirm_epochs": needed},
        "evidence": {**signal.evidence, "stop_evaluations_in_a_row": in_a_row, "confirmed": confirmed},
    }
    if not confirmed:
        update["severity"] = "info"
        update["message"] = (
            f"{signal.message}; not yet confirmed: said at {in_a_row} evaluation(s) in a row of the "
            f"{needed} confirm_epochs asks for"
        )
    return signal.model_copy(update=update)


def _said_stop(
    earlier: Sequence[Point],
    history: Sequence[EpochRecord],
    rates: Sequence[Point],
    policy: MonitorPolicy,
    mode: Mode,
    total_epochs_planned: int | None,
) -> bool:
    """Whether the projection said stop on ``history`` up to ``earlier``'s last point."""
    best = rules.find_best(earlier, mode, policy.min_delta)
    if best is None:
        return False
    last = earlier[-1][0]
    records = bisect_right(history, last, key=attrgetter("epoch"))  # the records up to it, in order
    then_done = epochs_done(records, history[0].epoch, last)
    epochs_left, horizon = _horizon(then_done, total_epochs_planned, policy)
    then = projection(earlier, best, epochs_left, horizon, policy, mode, rates)
    return then is not None and not worth_continuing(then, policy)


def unmoved_start(monitored: Sequence[Point], policy: MonitorPolicy) -> Point | None:
    """The monitored metric's first point while the metric has not left it: exactly, or for a fraction (an accuracy,
    an mAP: :func:`~trainops.core.projection.ceiling`) by no more than ``min_improvement_pct`` of its range. ``None``
    once it has, and for a fraction that started at its ceiling (an accuracy of 1: nothing to wait for).

    >>> unmoved_start([(0, 0.0), (1, 0.004), (2, 0.0)], MonitorPolicy(monitor="mAP50"))
    (0, 0.0)
    >>> print(unmoved_start([(0, 0.0), (1, 0.004), (2, 0.0)], MonitorPolicy(monitor="val_loss")))
    None
    """
    top = ceiling(policy.monitor, monitored, policy.resolved_mode)
    tolerance = 0.0 if top is None else top * policy.min_improvement_pct / 100.0
    start = rules.unmoved(monitored, tolerance)
    if start is None or (top is not None and top - start[1] <= tolerance):
        return None
    return start


def still_changing(train: Sequence[Point], policy: MonitorPolicy) -> tuple[str, Trend] | None:
    """Whether the training loss says the model may still be changing, and how (words for a reason, and the
    trend); ``None`` once it has gone flat.

    It is: with fewer than ``policy.window`` finite values (too early to tell); with a significant trend either way
    over the last ``policy.window`` epochs, of at least :data:`MOVING_TOLERANCE_PCT`; or falling significantly since
    its highest epoch (a rise and a fall within one window fit a flat line). A run that reports no training loss
    cannot say: ``None``.
    """
    finite = [point for point in train if math.isfinite(point[1])]
    if not finite:
        return None
    policy = policy.model_copy(update={"flat_tolerance_pct": MOVING_TOLERANCE_PCT})
    moving = rules.trend("train_loss", finite, policy, "min")
    if len(finite) < policy.window:
        return (
            f"only {len(finite)} epoch(s) of train_loss are in, too few to tell whether the model is still changing",
            moving,
        )
    if moving.direction is TrendDirection.FLAT:
        peak = max(range(len(finite)), key=lambda index: finite[index][1])
        since_peak = rules.trend("train_loss", finite[peak + 1 :], policy, "min")
        if since_peak.direction is TrendDirection.IMPROVING:
            moving = since_peak
    if moving.direction not in (TrendDirection.IMPROVING, TrendDirection.WORSENING):
        return None
    change = f"{moving.percent_change:+.1f}%" if moving.percent_change is not None else "a significant change"
    where = f"over epochs {moving.from_epoch}-{moving.to_epoch}"
    return f"train_loss is {moving.direction.value} ({change} {where}): the model is still changing", moving


def hold_unmoved(signal: Signal, start: Point, train: Sequence[Point], policy: MonitorPolicy) -> Signal:
    """A projection's stop, held (turned to information: the run continues) while the monitored metric has not left
    its first value (``start``, :func:`unmoved_start`) and the training loss says the model is still changing
    (:func:`still_changing`).

    Such a metric says nothing yet about where the run is going: a detector's mAP stays at 0 until it finds its
    first box (8 to 30 epochs for the corpus' small YOLO runs), an accuracy at one class's share until the model
    separates the classes. The stall is the metric's, not the run's. Ultralytics' own early stopping likewise counts
    no patience while its fitness is 0. A run whose metric never moves and whose training loss has gone flat is
    still told to stop. While the metric has not moved, a rising training loss is not taken for divergence either
    (``train_loss_rising`` is not raised; :func:`analyze`): Ultralytics' summed loss climbs for a detector's first
    epochs while its mAP50 is 0, and the reason says so here.
    """
    changing = still_changing(train, policy)
    if changing is None:
        return signal
    words, moving = changing
    return as_information(
        signal,
        f"held: {policy.monitor} has stayed at {_fmt(start[1])} since epoch {start[0]} while {words}",
        held_unmoved_since_epoch=start[0],
        train_loss_trend=moving.direction.value,
        train_loss_percent_change=moving.percent_change,
    )


def stall_backed(
    signal: Signal, best: Best, best_val: Best | None, val: Sequence[Point], policy: MonitorPolicy
) -> Signal:
    """A projection's "continue" on a score other than the validation loss (an accuracy, an mAP), overruled when
    the validation loss backs the score's stall: neither has improved for :data:`STALL_BACKED_PATIENCE` times
    ``policy.patience`` evaluations, and the loss is not improving over the last ``policy.window``. The signal then
    says stop (``warning``), its evidence keeping the projection's own reading (``worth_continuing``) beside why it
    was overruled.

    A score measured on a small validation set moves in steps of one sample, and its noise is mostly that: the
    projection's allowance for luck (a new best from noise alone, more likely the more epochs are left) keeps such a
    run going long after the model has stopped learning anything the validation data can see. The validation loss
    is the smoother witness of the same data: when it too has stopped improving, a new best of the score would be
    a lucky sample, not a better model. Returned unchanged when the run reports no validation loss, or the monitored
    metric is the loss itself.
    """
    if policy.monitor == "val_loss" or best_val is None:
        return signal
    stalled = math.ceil(STALL_BACKED_PATIENCE * policy.patience)
    if best.since < stalled or best_val.since < stalled:
        return signal
    loss_trend = rules.trend("val_loss", val, policy, "min")
    if loss_trend.direction is TrendDirection.IMPROVING:
        return signal
    return signal.model_copy(
        update={
            "severity": "warning",
            "message": (
                f"{signal.message}; but {policy.monitor} has not improved for {best.since} evaluations, nor val_loss "
                f"for {best_val.since} (best {_fmt(best_val.value)} at epoch {best_val.epoch}; "
                f"{loss_trend.direction.value} over epochs {loss_trend.from_epoch}-{loss_trend.to_epoch}): a gain "
                "the loss does not back is luck"
            ),
            "parameters": {
                **signal.parameters,
                "patience": policy.patience,
                "stall_backed_patience": STALL_BACKED_PATIENCE,
            },
            "evidence": {
                **signal.evidence,
                "stall_backed": True,
                "val_loss_best_epoch": best_val.epoch,
                "val_loss_best_value": _r(best_val.value),
                "val_loss_evaluations_since_best": best_val.since,
                "val_loss_trend": loss_trend.direction.value,
            },
        }
    )


def as_information(signal: Signal, note: str, **evidence: object) -> Signal:
    """A stopping signal turned to information (the run continues), its message followed by why, its evidence
    by the numbers that say so."""
    return signal.model_copy(
        update={
            "severity": "info",
            "message": f"{signal.message}; {note}",
            "evidence": {**signal.evidence, **evidence},
        }
    )


def _projected(
    monitored: Sequence[Point],
    rates: Sequence[Point],
    best: Best,
    epochs_left: int,
    horizon: Horizon,
    policy: MonitorPolicy,
    mode: Mode,
    extension: tuple[int, Forecast] | None,
) -> Signal | None:
    """The projection over the epochs left, as a signal; a run at its planned end that is still improving is told
    how far past it to go (``extension``), as information rather than a reason to stop."""
    projected = projection(monitored, best, epochs_left, horizon, policy, mode, rates)
    if projected is None:
        return None
    signal = projected_improvement(policy.monitor, projected, best, policy)
    if extension is None:
        return signal
    epochs, extended = extension
    return as_information(
        signal,
        f"still improving: {_extension_text(policy, epochs, extended)}",
        extend_by=epochs,
        extended_best=extended.best_value,
    )


def _extension_text(policy: MonitorPolicy, epochs: int, extended: Forecast) -> str:
    low, high = sorted((extended.best_value_q20, extended.best_value_q80))
    return (
        f"{epochs} more epoch(s) past the planned end are projected to improve {policy.monitor} by more than "
        f"{policy.min_improvement_pct:g}%, to {_fmt(extended.best_value)} (20-80%: {_fmt(low)} to "
        f"{_fmt(high)})"
    )


def recommend(
    signals: Sequence[Signal],
    best: Best | None,
    current_trend: Trend,
    policy: MonitorPolicy,
    monitored: Sequence[Point],
    last_epoch: int | None,
    total_epochs_planned: int | None = None,
    projected: Signal | None = None,
    extension: tuple[int, Forecast] | None = None,
) -> Recommendation:
    """Pick one action from the signals; else continue (past the planned end by ``extension``'s epochs, when the
    run is still improving there).

    With ``stop_rule="projection"``: divergence first, then a projection that continuing is not worth it. With
    ``"patience"``: divergence, then overfitting, then a stall (Keras/Lightning early stopping).
    """
    restore = best.epoch if best is not None and best.epoch != last_epoch else None

    def stop(signal: Signal) -> Recommendation:
        # A projected stop names what else was seen, overfitting before a stall: the evidence a person looks for
        # (a stop the loss's stall backs has said so already).
        seconded = [other.message for other in signals if other.rule in SECONDING_RULES]
        if signal.rule is SignalRule.PROJECTED_IMPROVEMENT and seconded and not signal.evidence.get("stall_backed"):
            message = f"{signal.message}; {seconded[0]}"
        else:
            message = signal.message
        if restore is not None:
            return Recommendation(
                action=Action.STOP_AND_RESTORE_BEST,
                reason=f"Stop and use epoch {restore}: {message}",
                restore_epoch=restore,
            )
        return Recommendation(action=Action.STOP, reason=f"Stop: {message}")

    for group in STOP_RULES[policy.stop_rule]:
        for signal in signals:
            if signal.rule in group:
                return stop(signal)

    metric = policy.monitor
    if not monitored:
        return Recommendation(
            action=Action.CONTINUE,
            reason=f"No {metric} reported yet: keep training and check again after a few epochs.",
        )
    planned = f" of {total_epochs_planned} planned" if total_epochs_planned else ""
    if current_trend.direction is TrendDirection.UNKNOWN or best is None:
        finite = sum(1 for _, value in monitored if math.isfinite(value))
        if finite >= 3 and best is not None:  # enough points, but values a line cannot be fitted to (near 1e308)
            return Recommendation(
                action=Action.CONTINUE,
                reason=f"{metric}'s values are too large to fit a trend to (best {_fmt(best.value)} at epoch "
                f"{best.epoch}); keep training, and check that the metric is what it should be.",
            )
        return Recommendation(
            action=Action.CONTINUE,
            reason=f"Only {finite} epoch(s){planned} with {metric}: too few to judge a trend; keep training.",
        )
    if extension is not None:
        epochs, extended = extension
        return Recommendation(
            action=Action.CONTINUE,
            reason=f"Continue past the planned end: {metric} is still improving at epoch {last_epoch}"
            f"{planned}; {_extension_text(policy, epochs, extended)}.",
            extend_by=epochs,
            extend_forecast=extended,
        )
    trend = rules.trend_text(current_trend, policy)
    if projected is not None:
        return Recommendation(action=Action.CONTINUE, reason=f"Continue: {projected.message}; {trend}.")
    progress = f"; at epoch {last_epoch} of {total_epochs_planned} planned" if total_epochs_planned else ""
    return Recommendation(
        action=Action.CONTINUE,
        reason=(
            f"Continue: {trend}; "
            f"best {best.value:.4g} at epoch {best.epoch}, {best.since} epoch(s) without improvement "
            f"(patience {policy.patience}){progress}."
        ),
    )
