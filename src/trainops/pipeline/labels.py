"""Training targets: BUY, HOLD or SELL per bar, from the zigzag of the close price.

The zigzag keeps only the swings that matter: a high counts as a turning point (a *pivot*) once the price has
fallen at least ``zigzag_threshold`` below it, a low once the price has risen that much above it. Between a low
pivot and the next high the market was going up, so buying there was right (BUY); between a high and the next
low, SELL; at the turning bars themselves, HOLD.

These labels look into the future on purpose: they are what the model should have done with hindsight, and
they are never features. The same hindsight leaves some bars without a knowable label: before the first pivot
and after the last confirmed one (the swing still in progress may or may not reach the threshold). Those bars
are NaN, and the pipeline drops them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from enum import IntEnum
from typing import Literal, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from trainops.errors import DataError


class Label(IntEnum):
    """The class a bar is labelled with; the values are the model's output indices."""

    BUY = 0
    HOLD = 1
    SELL = 2


LABEL_NAMES: tuple[str, ...] = ("BUY", "HOLD", "SELL")
"""Label names by class index."""


class LabelConfig(BaseModel):
    """How a strategy labels its bars.

    Args:
        source: The labelling method; only ``zigzag`` for now.
        zigzag_threshold: The reversal that makes a swing count, as a fraction of price (0.02 = 2%). Smaller
            thresholds find more, shorter swings (more BUY/SELL, noisier); larger ones fewer, longer swings.
        label_lookahead: A bar gets its move's label only if the move ends (its next pivot) within this many
            bars; further away the trade would be held too long to matter, and the bar is HOLD. So BUY reads "in
            an up-swing that ends within this many bars", and the early bars of a long swing, with the most of its
            move ahead, are HOLD. Nor does it bound the hindsight: the pivot is known only once the price has
            turned by ``zigzag_threshold`` after it, often several times this many bars later
            (:func:`zigzag_decided` says when each label is known).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: Literal["zigzag"] = "zigzag"
    zigzag_threshold: float
    label_lookahead: int = Field(20, ge=1, le=1_000_000)

    @field_validator("zigzag_threshold")
    @classmethod
    def _fraction(cls, value: float) -> float:
        if not (math.isfinite(value) and 0 < value < 1):
            shown = str(int(value)) if math.isfinite(value) and value.is_integer() else repr(value)
            raise ValueError(f"zigzag_threshold is a fraction of price (0.02 = 2%), got {shown}")
        return value


def zigzag_pivots(close: npt.ArrayLike, threshold: float) -> list[int]:
    """Indices of the confirmed turning points of ``close``, oldest first, alternating highs and lows.

    A swing high is confirmed once a later close is at least ``threshold`` (a fraction) below it, a swing low
    once a later close is at least ``threshold`` above it. The extreme still forming at the end of the series is
    not confirmed and not returned. Of several equal closes at an extreme, the first is the pivot.

    >>> zigzag_pivots([100, 104, 110, 105, 99, 103, 108], 0.05)
    [0, 2, 4]

    Raises:
        DataError: ``close`` holds NaN, infinite, zero or negative prices (a relative threshold needs positive
            prices).
        ValueError: ``threshold`` is not in (0, 1).
    """
    return [pivot.bar for pivot in _zigzag(_prices(close), threshold)]


def _prices(close: npt.ArrayLike) -> npt.NDArray[np.float64]:
    prices = np.asarray(close, dtype=np.float64)
    if prices.ndim != 1:
        raise DataError(f"close prices must be one series, got an array of {prices.ndim} dimensions")
    bad = np.flatnonzero(~(np.isfinite(prices) & (prices > 0)))
    if bad.size:
        raise DataError(
            f"zigzag labels need positive finite close prices; position {int(bad[0])} holds {float(prices[bad[0]])!r} "
            "(clean or drop such bars first)",
            details={"positions": bad[:10].tolist()},
        )
    return prices


class Pivot(NamedTuple):
    bar: int
    kind: Literal["high", "low"]
    confirmed: int
    """The bar whose close confirmed it: the first that far enough the other way. Not known before that bar."""


def _zigzag(prices: npt.NDArray[np.float64], threshold: float) -> list[Pivot]:
    if not (math.isfinite(threshold) and 0 < threshold < 1):
        raise ValueError(f"zigzag_threshold is a fraction of price (0.02 = 2%), got {threshold!r}")
    pivots: list[Pivot] = []
    if prices.size == 0:
        return pivots
    up, down = 1.0 + threshold, 1.0 - threshold
    # Until the first swing is confirmed the direction is unknown: follow both the highest and the lowest close.
    high = low = 0
    trend: Literal["up", "down"] | None = None
    extreme = 0  # the candidate pivot of the current swing once the trend is known
    for i in range(1, prices.size):
        price = float(prices[i])
        if trend is None:
            if price > prices[high]:
                high = i
            if price < prices[low]:
                low = i
            if price >= prices[low] * up:
                pivots.append(Pivot(low, "low", i))
                trend, extreme = "up", i
            elif price <= prices[high] * down:
                pivots.append(Pivot(high, "high", i))
                trend, extreme = "down", i
        elif trend == "up":
            if price > prices[extreme]:
                extreme = i
            elif price <= prices[extreme] * down:
                pivots.append(Pivot(extreme, "high", i))
                trend, extreme = "down", i
        else:
            if price < prices[extreme]:
                extreme = i
            elif price >= prices[extreme] * up:
                pivots.append(Pivot(extreme, "low", i))
                trend, extreme = "up", i
    return pivots


def zigzag_labels(close: pd.Series, config: LabelConfig) -> pd.Series:
    """Label each bar BUY, HOLD or SELL from the zigzag of ``close``.

    Bars strictly between a low pivot and the next high are BUY, between a high and the next low SELL, when that
    next pivot is at most ``config.label_lookahead`` bars ahead (else HOLD); pivot bars are HOLD.

    Returns:
        A float series on ``close``'s index named ``label``, holding the :class:`Label` values 0, 1, 2, and NaN
        for bars whose label cannot be known: before the first pivot and after the last confirmed one. Float
        because an integer series cannot hold the gaps; drop the NaN rows and cast to int for training.

    Raises:
        DataError: ``close`` holds NaN, infinite, zero or negative prices.

    >>> config = LabelConfig(zigzag_threshold=0.05)
    >>> zigzag_labels(pd.Series([100.0, 104, 110, 105, 99, 103, 108]), config).tolist()
    [1.0, 0.0, 1.0, 2.0, 1.0, nan, nan]
    """
    pivots = _zigzag(_prices(close), config.zigzag_threshold)
    labels = np.full(len(close), np.nan)
    for start, end in itertools.pairwise(pivots):
        move = Label.BUY if start.kind == "low" else Label.SELL
        bars = np.arange(start.bar + 1, end.bar)
        labels[bars] = np.where(end.bar - bars <= config.label_lookahead, move, Label.HOLD)
    for pivot in pivots:
        labels[pivot.bar] = Label.HOLD
    return pd.Series(labels, index=close.index, name="label", dtype=np.float64)


def zigzag_decided(close: pd.Series, config: LabelConfig) -> pd.Series:
    """When each bar's :func:`zigzag_labels` label became known: the bar whose close confirmed the pivot that
    decides it (the next pivot for a bar inside a swing, its own for a pivot bar).

    That is often further ahead than ``label_lookahead`` (which bounds how far the swing's end may lie, not when it
    is confirmed): a purge between a training split and the next uses it (a training row whose label is decided
    by a later split's prices is a leak of that split's prices into the targets).

    Returns:
        A series of positions into ``close`` (int64) named ``decided``, on ``close``'s index; -1 where the label is
        NaN.

    >>> close = pd.Series([100.0, 104, 110, 105, 99, 103, 108])
    >>> zigzag_decided(close, LabelConfig(zigzag_threshold=0.05)).tolist()  # pivots 0, 2 and 4, confirmed at 2, 4, 6
    [2, 4, 4, 6, 6, -1, -1]
    """
    pivots = _zigzag(_prices(close), config.zigzag_threshold)
    decided = np.full(len(close), -1, dtype=np.int64)
    for start, end in itertools.pairwise(pivots):
        decided[start.bar + 1 : end.bar] = end.confirmed
    for pivot in pivots:
        decided[pivot.bar] = pivot.confirmed
    return pd.Series(decided, index=close.index, name="decided", dtype=np.int64)


def class_balance(labels: Iterable[float] | pd.Series) -> dict[str, dict[str, float | int]]:
    """How many bars of each class, and their share of the labelled (non-missing) bars.

    >>> class_balance([0, 1, 1, 2, float("nan")])["HOLD"]
    {'count': 2, 'fraction': 0.5}

    Raises:
        ValueError: A label is not 0, 1 or 2 (or NaN).
    """
    values = pd.Series(list(labels) if not isinstance(labels, pd.Series) else labels, dtype="float64").dropna()
    unknown = sorted({float(v) for v in values.unique()} - {float(label) for label in Label})
    if unknown:
        raise ValueError(f"labels must be 0 (BUY), 1 (HOLD) or 2 (SELL), got {unknown[:5]}")
    total = len(values)
    counts = values.value_counts()
    balance: dict[str, dict[str, float | int]] = {}
    for label in Label:
        count = int(counts.get(float(label), 0))
        balance[LABEL_NAMES[label]] = {"count": count, "fraction": count / total if total else 0.0}
    return balance
