"""thin_epochs: which records of a long history a chart gets, so that every curve keeps its shape."""

from __future__ import annotations

import doctest
import math
import random
from typing import Any

import pytest

from trainops.core import thinning
from trainops.core.epoch import EpochRecord
from trainops.core.thinning import thin_epochs


def flat(count: int, **spikes: dict[int, float]) -> list[EpochRecord]:
    """``count`` epochs whose val_loss is 1.0, with ``spikes`` ({metric: {epoch: value}}) set on top."""
    records = []
    for epoch in range(count):
        fields: dict[str, Any] = {"epoch": epoch, "val_loss": 1.0}
        for name, values in spikes.items():
            if epoch in values:
                fields[name] = values[epoch]
        records.append(EpochRecord.model_validate(fields))
    return records


def epochs_of(records: list[EpochRecord]) -> list[int]:
    return [record.epoch for record in records]


@pytest.mark.parametrize(
    ("history", "points", "best", "kept"),
    [
        pytest.param(flat(10), 10, None, list(range(10)), id="at-the-limit-unchanged"),
        pytest.param(flat(4), 100, None, [0, 1, 2, 3], id="shorter-unchanged"),
        pytest.param(flat(0), 10, None, [], id="empty"),
        pytest.param(flat(100), 10, None, [0, 25, 50, 75, 99], id="flat-one-record-per-bucket"),
        pytest.param(flat(100), 10, 63, [0, 33, 63, 66, 99], id="the-best-epoch-kept-in-fewer-buckets"),
        pytest.param(flat(100, val_loss={40: 9.0}), 10, None, [0, 25, 40, 50, 75, 99], id="a-spike-kept"),
        pytest.param(flat(100, val_loss={41: -3.0}), 10, None, [0, 25, 41, 50, 75, 99], id="a-dip-kept"),
        pytest.param(flat(100, val_loss={33: math.nan}), 10, None, [0, 25, 33, 50, 75, 99], id="nan-kept"),
        pytest.param(flat(100, val_loss={77: math.inf}), 10, None, [0, 25, 50, 75, 77, 99], id="inf-kept"),
        pytest.param(
            flat(100, train_loss={12: 5.0}),
            10,
            None,
            [0, 12, 25, 50, 75, 99],
            id="a-metric-in-one-epoch-only-is-kept",
        ),
        pytest.param(
            [EpochRecord(epoch=epoch) for epoch in range(50)], 10, 20, [0, 20, 49], id="no-metric-first-last-best"
        ),
    ],
)
def test_kept_epochs(history: list[EpochRecord], points: int, best: int | None, kept: list[int]) -> None:
    assert epochs_of(thin_epochs(history, points, best_epoch=best)) == kept


def test_every_metric_keeps_its_extremes_when_fewer_points_than_metrics() -> None:
    # twelve metrics, each with a peak at its own epoch: 5 points cannot hold them all
    history = [
        EpochRecord(epoch=epoch, metrics={f"m{index}": 10.0 if epoch == 10 * index + 5 else 0.0 for index in range(12)})
        for epoch in range(200)
    ]
    kept = epochs_of(thin_epochs(history, 5, best_epoch=100))
    assert len(kept) == 5
    assert kept[0] == 0 and kept[-1] == 199 and 100 in kept
    assert 5 in kept  # the first metric's peak: metrics in order, as far as the points go


def partly_reported(count: int, seed: int) -> list[EpochRecord]:
    """A noisy history where validation runs every 7th epoch, a custom metric starts halfway, and some values
    are NaN or infinite."""
    rng = random.Random(seed)
    records = []
    for epoch in range(count):
        fields: dict[str, Any] = {"epoch": epoch, "train_loss": 1 / (epoch + 1) + rng.gauss(0, 0.05)}
        if epoch % 7 == 0:
            fields["val_loss"] = rng.choice([math.nan, math.inf]) if rng.random() < 0.01 else rng.random()
        if epoch >= count // 2:
            fields["f1"] = rng.random()
        records.append(EpochRecord.model_validate(fields))
    return records


def extremes(records: list[EpochRecord], name: str) -> set[int]:
    """The epochs of ``name``'s smallest and largest value: the first of each, NaN and +inf both counting as
    the largest."""
    values = [(value, record.epoch) for record in records if (value := record.value(name)) is not None]
    high = [epoch for value, epoch in values if math.isnan(value) or value == math.inf]
    finite = [(value, epoch) for value, epoch in values if not math.isnan(value)]
    smallest = min(value for value, _ in finite)
    largest = max(value for value, _ in finite)
    found = {next(epoch for value, epoch in finite if value == smallest)}
    found.add(high[0] if high else next(epoch for value, epoch in finite if value == largest))
    return found


@pytest.mark.parametrize("points", [10, 50, 333, 2000])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_thinned_history_keeps_its_shape(points: int, seed: int) -> None:
    history = partly_reported(3000, seed)
    best = history[1234].epoch
    thinned = thin_epochs(history, points, best_epoch=best)

    assert len(thinned) <= points
    assert len(thinned) >= min(points, len(history)) // 4  # the points are used, not left idle
    assert all(any(kept is record for record in history) for kept in thinned[:20])  # whole records, not copies
    assert epochs_of(thinned) == sorted(set(epochs_of(thinned)))  # oldest first, no repeats
    assert {0, 2999, best} <= set(epochs_of(thinned))
    if points >= 2 * 3 + 3:  # one bucket's extremes of every metric fit: each metric's envelope is whole
        for name in ("train_loss", "val_loss", "f1"):
            assert extremes(history, name) <= set(epochs_of(thinned)), name


def test_every_divergent_epoch_survives() -> None:
    rng = random.Random(5)
    broken = {500: math.nan, 1501: math.inf, 2702: math.nan}
    history = [
        EpochRecord(epoch=epoch, train_loss=rng.random(), val_loss=broken.get(epoch, rng.random()))
        for epoch in range(3000)
    ]
    kept = {record.epoch: record for record in thin_epochs(history, 500)}
    assert set(broken) <= set(kept)
    assert all(kept[epoch] is history[epoch] for epoch in broken)  # NaN stays NaN: the record itself


def test_too_few_points_are_refused() -> None:
    with pytest.raises(ValueError, match="points must be at least 3"):
        thin_epochs(flat(10), 2)


def test_docstring_example() -> None:
    result = doctest.testmod(thinning)
    assert result.attempted > 0 and result.failed == 0
