"""What stopping early saves and what it costs: each run of the corpus walked epoch by epoch, as a live run would be.

A *decision* is what a tool says having seen a run's first ``seen`` epochs: continue (``None``), or stop now and
keep the model of a given epoch. :func:`walk` asks it after every epoch, from the first, and the run ends at the
first stop, or at its planned end if the tool never says stop. Of the run that results:

- **saved**: the epochs not trained, as a fraction of the planned epochs (``(planned - trained) / planned``);
- **regret**: the monitored metric of the model kept (the validation loss, an accuracy or an mAP50: the run's
  ``Curve.objective``, signed so lower is better) against its best value anywhere in the full planned run (finite
  values only), in percent of the latter: ``100 * (kept - best) / |best|``. Zero when the model kept is the run's
  best; infinite when the model kept has a NaN or infinite value (a diverged model is worth nothing, whatever the
  loss scale); zero for a run with no finite value at all (there was no model to lose: only saving counts there).

- **regret with the best kept**: the same for the best epoch trained before the stop, the model a checkpoint of the
  best so far (Keras' ``restore_best_weights``, Lightning's ``ModelCheckpoint``) would keep: what the stop's timing
  costs, whatever the tool restores.

- **too soon**: the tool stopped at an epoch where the corpus' truth by hindsight says continue (the epochs left
  would have improved the best so far by more than 1%): a live run's false stop. Walking a run asks a tool after
  every epoch, so one run gives it many chances to stop too soon where the cut benchmark gives it three.

A summary over runs gives the mean saved; the median and 90th percentile of regret (nearest rank, uncapped); the
share of runs with regret over 1%; the runs whose kept model is NaN; and a *capped* mean regret, each run's regret
counted up to :data:`REGRET_CAP_PCT` (100%: a model at twice the best loss, or a NaN one, counts as lost whole).
Uncapped, the mean is decided by a run or two: a loss that explodes to 1e10 before going NaN, or a best near 0
(a separable task) against which any other epoch is thousands of percent off.

The model kept is the one the tool keeps: the epoch it restores when it restores the best, else the last epoch
trained (also when it never stops). The *oracle* stops right after the run's final best epoch (the first epoch
reaching the best value of the run's monitored metric) and keeps it: zero regret and the most saving any
zero-regret tool can have.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from _corpus import Case, Curve, should_stop
from _report import percentile

Decision = Callable[[Case], int | None]
"""``None``: continue. An epoch number: stop after this cut and keep that epoch's model."""

REGRET_CAP_PCT = 100.0
"""The most one run's regret adds to a mean: a model twice as bad as the best is as lost as a NaN one."""
REGRET_THRESHOLD_PCT = 1.0
"""A run counts as costly when its kept model's monitored metric is more than this much (in percent) off the best:
the same 1% that makes continuing worth it in the corpus' truth."""


@dataclass(frozen=True)
class Outcome:
    """One run walked with one tool."""

    run: str
    family: str
    planned: int
    trained: int
    """Epochs trained before the tool said stop (all planned if it never did)."""
    kept: int
    """The epoch whose model the tool keeps."""
    regret_pct: float
    best_kept_regret_pct: float
    """The regret had the best epoch trained been kept instead."""
    too_soon: bool
    """Stopped where continuing was right by hindsight (never, for a run trained to its end)."""

    @property
    def saved(self) -> float:
        return (self.planned - self.trained) / self.planned


def best_epoch(values: Sequence[float]) -> int | None:
    """The first epoch with the lowest finite value (of a lower-is-better series); ``None`` when no epoch is finite."""
    finite = [(value, epoch) for epoch, value in enumerate(values) if math.isfinite(value)]
    return min(finite)[1] if finite else None


def regret_pct(values: Sequence[float], kept: int) -> float:
    """How much worse (in percent of the best) the model of epoch ``kept`` is than the run's best model.

    >>> regret_pct([1.0, 0.5, 0.75], kept=2), regret_pct([1.0, 0.5, 0.75], kept=1)
    (50.0, 0.0)
    >>> regret_pct([1.0, 0.5, float("nan")], kept=2), regret_pct([float("nan")] * 3, kept=2)
    (inf, 0.0)
    """
    best = best_epoch(values)
    if best is None:
        return 0.0
    value = values[kept]
    if not math.isfinite(value):
        return math.inf
    lowest = values[best]
    return 100.0 * (value - lowest) / abs(lowest) if lowest else (0.0 if value == lowest else math.inf)


def walk(curve: Curve, decide: Decision) -> Outcome:
    """Ask ``decide`` after every epoch of the planned run; the run ends at its first stop."""
    for seen in range(1, curve.planned + 1):
        kept = decide(Case(curve, seen))
        if kept is not None:
            return outcome(curve, trained=seen, kept=kept)
    return outcome(curve, trained=curve.planned, kept=curve.planned - 1)


def outcome(curve: Curve, *, trained: int, kept: int) -> Outcome:
    if not 0 <= kept < trained <= curve.planned:
        raise ValueError(
            f"{curve.id}: kept epoch {kept} must be one of the {trained} trained (planned {curve.planned})"
        )
    return Outcome(
        run=curve.id,
        family=curve.family,
        planned=curve.planned,
        trained=trained,
        kept=kept,
        regret_pct=regret_pct(curve.objective, kept),
        best_kept_regret_pct=regret_pct(curve.objective, _best_trained(curve.objective[:trained])),
        too_soon=trained < curve.planned
        and not should_stop(curve.train_loss, curve.val_loss, trained, curve.objective),
    )


def _best_trained(values: Sequence[float]) -> int:
    """The best epoch trained; the last one when none is finite (no checkpoint is better than another)."""
    best = best_epoch(values)
    return len(values) - 1 if best is None else best


def oracle(curve: Curve) -> Outcome:
    """Stop right after the run's final best epoch and keep it (after the first epoch when no epoch is finite)."""
    best = best_epoch(curve.objective)
    kept = 0 if best is None else best
    return outcome(curve, trained=kept + 1, kept=kept)


def keep_last(says_stop: Callable[[Case], bool]) -> Decision:
    """A stop/continue rule that restores nothing: when it says stop, the last epoch trained is the model."""

    def decide(case: Case) -> int | None:
        return case.seen - 1 if says_stop(case) else None

    return decide


def never_stop(case: Case) -> int | None:
    """Train to the planned end and keep the last epoch: what not monitoring at all costs and saves."""
    return None


@dataclass(frozen=True)
class Summary:
    runs: int
    mean_saved: float
    mean_regret: float
    """Each run's regret capped at :data:`REGRET_CAP_PCT`, NaN models included (at the cap)."""
    median_regret: float
    p90_regret: float
    costly: float
    """Share of runs whose regret exceeds :data:`REGRET_THRESHOLD_PCT` (lost runs included)."""
    lost: int
    """Runs whose kept model has a non-finite validation loss (infinite regret)."""
    best_kept_mean_regret: float
    """As ``mean_regret``, had the best epoch trained been kept."""
    best_kept_costly: float
    too_soon: float
    """Share of runs stopped where continuing was right."""


def summarize(outcomes: Iterable[Outcome]) -> Summary:
    outcomes = list(outcomes)
    if not outcomes:
        raise ValueError("no runs to summarize")
    regrets = [o.regret_pct for o in outcomes]
    best_kept = [o.best_kept_regret_pct for o in outcomes]
    return Summary(
        runs=len(outcomes),
        mean_saved=statistics.fmean(o.saved for o in outcomes),
        mean_regret=capped_mean(regrets),
        median_regret=percentile(regrets, 50),
        p90_regret=percentile(regrets, 90),
        costly=sum(regret > REGRET_THRESHOLD_PCT for regret in regrets) / len(regrets),
        lost=sum(regret == math.inf for regret in regrets),
        best_kept_mean_regret=capped_mean(best_kept),
        best_kept_costly=sum(regret > REGRET_THRESHOLD_PCT for regret in best_kept) / len(best_kept),
        too_soon=sum(o.too_soon for o in outcomes) / len(outcomes),
    )


def capped_mean(regrets: Sequence[float]) -> float:
    """The mean regret, each run counted up to :data:`REGRET_CAP_PCT`.

    >>> capped_mean([0.0, 50.0, float("inf")])
    50.0
    """
    return statistics.fmean(min(regret, REGRET_CAP_PCT) for regret in regrets)
