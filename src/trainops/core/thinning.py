"""Thinning a long epoch history for display: which records a chart needs, never what is stored.

A chart of a 10,000-epoch run is at most a few thousand pixels wide: sending every record costs the browser
seconds and shows nothing more. :func:`thin_epochs` keeps at most ``points`` records so that what a chart draws
from them looks like the whole history: min/max buckets (the M4 aggregation of Jugel et al., VLDB 2014) over
every metric at once. The span is cut into buckets of consecutive epochs, and each bucket keeps, for every
metric, the record with its smallest and the record with its largest value, so a spike of one epoch and the
envelope of a noisy curve survive in every metric; the first and the last record and the best epoch are always
kept. Records are returned whole (every metric of a kept epoch, as stored), oldest first.

NaN counts as the largest value of a bucket (above +inf): the epoch where a run diverged stays on the chart.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from trainops.core.epoch import STANDARD_METRICS, EpochRecord

MIN_POINTS = 3
"""The fewest records a thinned history may keep: the first, the last and the best."""

MIN_DISPLAY_POINTS = 10
MAX_DISPLAY_POINTS = 100_000
"""The range of ``points`` the API, the clients and the event stream accept: below 10 no curve is readable, and
a display never needs more than 100,000."""

_ABSENT_LOW = math.inf
"""A missing value in the minimum's keys: it never wins unless nothing in the bucket can."""
_ABSENT_HIGH = -math.inf
_NAN_HIGH = math.inf
"""NaN in the maximum's keys: an extreme, kept as one (with +inf, whichever comes first in its bucket)."""


def thin_epochs(records: Sequence[EpochRecord], points: int, *, best_epoch: int | None = None) -> list[EpochRecord]:
    """At most ``points`` of ``records`` (oldest first), chosen so that every metric's curve keeps its shape.

    Args:
        records: An epoch history, oldest first (as stored).
        points: The most records to return; at least :data:`MIN_POINTS`.
        best_epoch: The diagnosis's best epoch, kept whenever it is among ``records``.

    Returns:
        ``records`` itself (as a list) when it holds at most ``points``; else a subset of them, unaltered, oldest
        first: the first, the last, the best epoch, and for every metric of the records (standard fields, custom
        metrics and ``duration``) the epochs of its smallest and largest value in each bucket of consecutive
        epochs. The bucket count is the largest found whose union fits ``points``; when even one bucket's
        extremes do not fit (``points`` below twice the number of metrics), the overall extremes are kept in the
        metrics' order until ``points`` is reached.

    Raises:
        ValueError: ``points`` is below :data:`MIN_POINTS`.

    Example:
        >>> history = [EpochRecord(epoch=e, val_loss=1.0) for e in range(100)]
        >>> history[40] = EpochRecord(epoch=40, val_loss=9.0)  # a spike
        >>> [record.epoch for record in thin_epochs(history, 10)]
        [0, 25, 40, 50, 75, 99]
    """
    if points < MIN_POINTS:
        raise ValueError(f"points must be at least {MIN_POINTS} (the first, the last and the best epoch), got {points}")
    if len(records) <= points:
        return list(records)
    count = len(records)
    fixed = {0, count - 1}
    if best_epoch is not None:
        fixed.update(index for index, record in enumerate(records) if record.epoch == best_epoch)
    keys = [_keys(values) for values in _columns(records)]
    # each bucket keeps at most two records per metric: this many buckets always fit
    guaranteed = (points - len(fixed)) // (2 * len(keys)) if keys else 0
    if guaranteed < 1:
        return [records[index] for index in sorted(_by_priority(fixed, keys, count, points))]
    best = _kept(fixed, keys, count, guaranteed)
    # extremes shared between metrics (or between the min and max of a smooth curve) leave room for more buckets
    low, high = guaranteed + 1, max(guaranteed, (points - len(fixed)) // 2)
    while low <= high and high - low >= low // 32:  # within 3% of the most buckets that fit: close enough
        middle = (low + high) // 2
        kept = _kept(fixed, keys, count, middle)
        if len(kept) <= points:
            best, low = kept, middle + 1
        else:
            high = middle - 1
    return [records[index] for index in sorted(best)]


def _columns(records: Sequence[EpochRecord]) -> list[list[float | None]]:
    """Each metric's values over ``records`` (``None`` where an epoch did not report it), in the order the
    standard fields, ``duration`` and then the custom metrics first appear."""
    columns = [[getattr(record, name) for record in records] for name in (*STANDARD_METRICS, "duration")]
    custom: dict[str, None] = {}
    for record in records:
        custom.update(dict.fromkeys(record.metrics))
    columns += [[record.metrics.get(name) for record in records] for name in custom]
    return [column for column in columns if any(value is not None for value in column)]


def _keys(values: list[float | None]) -> tuple[list[float], list[float]]:
    """The keys the bucket minimum and maximum are chosen by: a missing value never wins either, NaN only the
    maximum."""
    low = [_ABSENT_LOW if value is None or math.isnan(value) else value for value in values]
    high = [_ABSENT_HIGH if value is None else _NAN_HIGH if math.isnan(value) else value for value in values]
    return low, high


def _kept(fixed: set[int], keys: list[tuple[list[float], list[float]]], count: int, buckets: int) -> set[int]:
    """The indices ``buckets`` min/max buckets keep, with ``fixed``."""
    kept = set(fixed)
    for bucket in range(buckets):
        start, stop = bucket * count // buckets, (bucket + 1) * count // buckets
        if start == stop:
            continue
        for low, high in keys:
            # the keys hold no NaN, so min, max and index (the first of equals) run at C speed
            smallest = min(low[start:stop])
            if smallest != _ABSENT_LOW:
                kept.add(low.index(smallest, start, stop))
            largest = max(high[start:stop])
            if largest != _ABSENT_HIGH:
                kept.add(high.index(largest, start, stop))
    return kept


def _by_priority(fixed: set[int], keys: list[tuple[list[float], list[float]]], count: int, points: int) -> set[int]:
    """When not even one bucket fits: ``fixed``, then each metric's overall largest and smallest, in the metrics'
    order, until ``points`` records are chosen."""
    kept = set(fixed)
    whole = range(count)
    for low, high in keys:
        largest = max(whole, key=high.__getitem__)
        if high[largest] != _ABSENT_HIGH and len(kept) < points:
            kept.add(largest)
        smallest = min(whole, key=low.__getitem__)
        if low[smallest] != _ABSENT_LOW and len(kept) < points:
            kept.add(smallest)
    return kept
