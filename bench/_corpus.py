"""The corpus of real training curves (``bench/curves/``): loading, truth by hindsight, and the split.

A *curve* is one real training run: its per-epoch train and validation losses (and accuracies where the task has
them) for every planned epoch. A *case* is a curve cut after its first ``seen`` epochs: what a monitor could know
at that moment, plus the planned number of epochs. Each case has a right answer, known by hindsight:

- ``stop`` is right when the epochs left never improve the best value of the run's monitored metric seen so far
  by more than ``TOLERANCE`` (1%), or when the run has already gone non-finite;
- otherwise ``continue`` is right.

The monitored metric is the one trainops judged the run by while it trained: the default policy applied to the
task the run was reported with (``task``; :func:`trainops.core.metric_definitions.policy_for_task`). A run with no
task (the scikit-learn, schedule and strategy families) or a regression is judged on its validation loss; a
classification run reported with its task (Lightning, Keras, Hugging Face, timm) on its validation accuracy; a
detection run (YOLO) on its validation mAP50; the last two higher being better. The other tools' rules are given
the same metric where they take a monitor (Keras' and Lightning's early stopping); the rules that read the losses
(KTRDR's, W&B's) read the losses.

The corpus is split by run (never by cut, so no run is on both sides) into a calibration half, on which
trainops' rules were tuned, and a held-out half, on which they are judged.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from trainops.core import EpochRecord, MonitorPolicy, TaskType
from trainops.core.metric_definitions import policy_for_task

CORPUS = Path(__file__).parent / "curves" / "corpus.json"
TOLERANCE = 0.01
"""Continuing is worth it only if it would improve the best value of the monitored metric by more than this
fraction."""
FRACTIONS = (0.25, 0.5, 0.75)
"""Where each run is cut: after this fraction of its planned epochs."""
SPLIT_SEED = 6


def _floats(values: Sequence[float | None] | None) -> tuple[float, ...] | None:
    if values is None:
        return None
    return tuple(math.nan if value is None else float(value) for value in values)


@dataclass(frozen=True)
class Curve:
    """One recorded run: every planned epoch's numbers (NaN where the run had gone non-finite)."""

    id: str
    family: str
    config: dict[str, Any]
    planned: int
    train_loss: tuple[float, ...]
    val_loss: tuple[float, ...]
    train_accuracy: tuple[float, ...] | None = None
    val_accuracy: tuple[float, ...] | None = None
    learning_rate: tuple[float, ...] | None = None
    val_map50: tuple[float, ...] | None = None
    """A detection run's validation mAP50 (trainops stores it as the custom metric ``mAP50``)."""
    task: TaskType | None = None
    """The task the run was reported with (its operation's ``metadata.task``), which picks the monitored metric."""

    @cached_property
    def records(self) -> tuple[EpochRecord, ...]:
        """Every recorded epoch (every planned one, in the corpus) as a monitor would have been sent it, as trainops
        stores it."""
        columns = {
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "train_accuracy": self.train_accuracy,
            "val_accuracy": self.val_accuracy,
            "learning_rate": self.learning_rate,
        }
        present = {name: values for name, values in columns.items() if values is not None}
        return tuple(
            EpochRecord(
                epoch=epoch,
                **{name: values[epoch] for name, values in present.items()},
                metrics={} if self.val_map50 is None else {"mAP50": self.val_map50[epoch]},
            )
            for epoch in range(len(self.val_loss))
        )

    @cached_property
    def policy(self) -> MonitorPolicy:
        """The default policy as trainops applies it to this run: its task's primary metric as the monitor."""
        return policy_for_task(MonitorPolicy(), self.task, self.records)

    @cached_property
    def objective(self) -> tuple[float, ...]:
        """The monitored metric at every epoch, signed so that lower is better (NaN where not finite or missing)."""
        sign = 1.0 if self.policy.resolved_mode == "min" else -1.0
        return tuple(sign * value for value in self.series(self.policy.monitor) or ())

    def series(self, name: str) -> tuple[float, ...] | None:
        """A metric at every epoch (NaN where an epoch lacks it); ``None`` when no epoch reports it."""
        values = [record.value(name) for record in self.records]
        if all(value is None for value in values):
            return None
        return tuple(math.nan if value is None else value for value in values)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Curve:
        return cls(
            id=data["id"],
            family=data["family"],
            config=data["config"],
            planned=data["planned"],
            train_loss=_floats(data["train_loss"]) or (),
            val_loss=_floats(data["val_loss"]) or (),
            train_accuracy=_floats(data.get("train_accuracy")),
            val_accuracy=_floats(data.get("val_accuracy")),
            learning_rate=_floats(data.get("learning_rate")),
            val_map50=_floats(data.get("val_map50")),
            task=TaskType(data["task"]) if data.get("task") else None,
        )


@dataclass(frozen=True)
class Case:
    """A curve seen up to (and including) epoch ``seen - 1``; epochs are numbered from 0."""

    curve: Curve
    seen: int

    @property
    def planned(self) -> int:
        return self.curve.planned

    @property
    def train_loss(self) -> tuple[float, ...]:
        return self.curve.train_loss[: self.seen]

    @property
    def val_loss(self) -> tuple[float, ...]:
        return self.curve.val_loss[: self.seen]

    @property
    def train_accuracy(self) -> tuple[float, ...] | None:
        return None if self.curve.train_accuracy is None else self.curve.train_accuracy[: self.seen]

    @property
    def val_accuracy(self) -> tuple[float, ...] | None:
        return None if self.curve.val_accuracy is None else self.curve.val_accuracy[: self.seen]

    @property
    def learning_rate(self) -> tuple[float, ...] | None:
        return None if self.curve.learning_rate is None else self.curve.learning_rate[: self.seen]

    @property
    def objective(self) -> tuple[float, ...]:
        return self.curve.objective[: self.seen]

    @property
    def records(self) -> tuple[EpochRecord, ...]:
        return self.curve.records[: self.seen]

    @cached_property
    def should_stop(self) -> bool:
        """The right answer, by hindsight (see the module's docstring)."""
        return should_stop(self.curve.train_loss, self.curve.val_loss, self.seen, self.curve.objective)

    @property
    def label(self) -> str:
        return f"{self.curve.id}@{self.seen}/{self.planned}"


def has_gone_non_finite(train_loss: Sequence[float], val_loss: Sequence[float]) -> bool:
    """The latest epoch's train or validation loss is NaN or infinite."""
    return any(values and not math.isfinite(values[-1]) for values in (train_loss, val_loss))


def should_stop(
    train_loss: Sequence[float], val_loss: Sequence[float], seen: int, objective: Sequence[float] | None = None
) -> bool:
    """Truth by hindsight for the cut after ``seen`` epochs of a full curve, judged on ``objective`` (the monitored
    metric, lower is better; the validation loss when not given)."""
    if has_gone_non_finite(train_loss[:seen], val_loss[:seen]):
        return True
    judged = val_loss if objective is None else objective
    past = [value for value in judged[:seen] if math.isfinite(value)]
    future = [value for value in judged[seen:] if math.isfinite(value)]
    if not future:
        return True
    if not past:
        return False
    best = min(past)
    return not min(future) < best - TOLERANCE * abs(best)


def load(path: Path = CORPUS) -> list[Curve]:
    data = json.loads(path.read_text())
    return [Curve.from_json(run) for run in data["runs"]]


def cut(curves: Iterable[Curve], fractions: Sequence[float] = FRACTIONS) -> list[Case]:
    """Every curve cut at every fraction of its planned epochs (at least one epoch seen)."""
    return [Case(curve, max(1, round(curve.planned * fraction))) for curve in curves for fraction in fractions]


def split(curves: Sequence[Curve], seed: int = SPLIT_SEED) -> tuple[list[Curve], list[Curve]]:
    """(calibration, held_out): each family shuffled and dealt alternately into the two halves.

    Each family is shuffled by a generator of its own (seeded with ``seed`` and the family's name), so adding or
    removing a family never moves another family's runs across the split.
    """
    calibration: list[Curve] = []
    held_out: list[Curve] = []
    for family in sorted({curve.family for curve in curves}):
        members = sorted((curve for curve in curves if curve.family == family), key=lambda curve: curve.id)
        random.Random(f"{seed}:{family}").shuffle(members)
        calibration.extend(members[0::2])
        held_out.extend(members[1::2])
    return calibration, held_out
