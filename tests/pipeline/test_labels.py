"""Zigzag pivots, BUY/HOLD/SELL labels with their lookahead and unknowable tail, and class balance."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from trainops.errors import DataError
from trainops.pipeline.labels import (
    LABEL_NAMES,
    Label,
    LabelConfig,
    class_balance,
    zigzag_decided,
    zigzag_labels,
    zigzag_pivots,
)

B, H, S, N = 0.0, 1.0, 2.0, math.nan

# Up 100 -> 120 over bars 0..10, down to 100 at bar 20, up again to 110 (the unfinished tail).
LONG_SWINGS = [100.0 + 2 * i for i in range(11)] + [118.0 - 2 * i for i in range(10)] + [102, 104, 106, 108, 110]


@pytest.mark.parametrize(
    ("close", "threshold", "pivots"),
    [
        pytest.param([100, 104, 110, 105, 99, 103, 108], 0.05, [0, 2, 4], id="100-110-99-108"),
        pytest.param([100, 96, 92, 97, 99, 90], 0.05, [0, 2, 4], id="starts-falling"),
        pytest.param(LONG_SWINGS, 0.05, [0, 10, 20], id="long-swings"),
        pytest.param(LONG_SWINGS, 0.25, [], id="threshold-never-reached"),
        pytest.param([100, 101, 99, 102, 100], 0.05, [], id="noise-below-threshold"),
        pytest.param([100, 110, 110, 100], 0.05, [0, 1], id="first-of-equal-highs"),
        pytest.param([100, 104.9], 0.05, [], id="just-short-of-threshold"),
        pytest.param([100, 110], 0.05, [0], id="low-confirmed-high-still-forming"),
        pytest.param([100, 150], 0.5, [0], id="rise-of-exactly-the-threshold-confirms-the-low"),
        pytest.param([100, 200, 100], 0.5, [0, 1], id="fall-of-exactly-the-threshold-confirms-the-high"),
        pytest.param([], 0.05, [], id="empty"),
        pytest.param([100], 0.05, [], id="one-bar"),
    ],
)
def test_zigzag_pivots(close: list[float], threshold: float, pivots: list[int]) -> None:
    assert zigzag_pivots(np.array(close, dtype=float), threshold) == pivots


def test_pivots_alternate_and_each_swing_reaches_the_threshold() -> None:
    close = 100 * np.exp(np.cumsum(np.random.default_rng(11).normal(0, 0.01, 2_000)))
    threshold = 0.03

    pivots = zigzag_pivots(close, threshold)

    assert len(pivots) > 10
    swings = np.diff(close[pivots]) / close[pivots][:-1]
    assert (np.abs(swings) >= threshold - 1e-12).all()
    assert (np.sign(swings[1:]) == -np.sign(swings[:-1])).all()  # high, low, high, ...
    for start, end in itertools.pairwise(pivots):  # each pivot is the extreme of its swing
        segment = close[start : end + 1]
        assert close[end] in (segment.max(), segment.min())


@pytest.mark.parametrize(
    ("close", "threshold", "lookahead", "labels"),
    [
        pytest.param([100, 104, 110, 105, 99, 103, 108], 0.05, 20, [H, B, H, S, H, N, N], id="100-110-99-108"),
        pytest.param([100, 96, 92, 97, 99, 90], 0.05, 20, [H, S, H, B, H, N], id="starts-falling"),
        pytest.param(
            LONG_SWINGS, 0.05, 20, [H] + [B] * 9 + [H] + [S] * 9 + [H] + [N] * 5, id="long-swings-within-lookahead"
        ),
        pytest.param(
            LONG_SWINGS,
            0.05,
            3,
            [H] + [H] * 6 + [B] * 3 + [H] + [H] * 6 + [S] * 3 + [H] + [N] * 5,
            id="lookahead-3-only-the-last-3-bars-of-each-move",
        ),
        pytest.param(LONG_SWINGS, 0.05, 1, [H] + [H] * 8 + [B] + [H] + [H] * 8 + [S] + [H] + [N] * 5, id="lookahead-1"),
        pytest.param([100, 101, 99, 102, 100], 0.05, 20, [N] * 5, id="no-pivot-no-label"),
    ],
)
def test_zigzag_labels(close: list[float], threshold: float, lookahead: int, labels: list[float]) -> None:
    index = pd.date_range("2024-01-01", periods=len(close), freq="h", name="timestamp")
    config = LabelConfig(zigzag_threshold=threshold, label_lookahead=lookahead)

    result = zigzag_labels(pd.Series(close, index=index, dtype=float), config)

    assert result.index.equals(index)
    assert result.name == "label"
    assert result.dtype == np.float64
    np.testing.assert_array_equal(result.to_numpy(), labels)


def test_bars_before_the_first_pivot_are_unlabelled() -> None:
    # the first pivot is the swing low at bar 2; which move bars 0 and 1 belonged to cannot be known
    close = pd.Series([100.0, 99.0, 98.0, 104.0, 110.0, 100.0])

    labels = zigzag_labels(close, LabelConfig(zigzag_threshold=0.05))

    assert zigzag_pivots(close.to_numpy(), 0.05) == [2, 4]
    np.testing.assert_array_equal(labels.to_numpy(), [N, N, H, B, H, N])


@pytest.mark.parametrize(
    ("close", "message"),
    [
        ([100.0, math.nan, 101.0], r"position 1 holds nan"),
        ([100.0, 0.0], r"position 1 holds 0.0"),
        ([-1.0, 2.0], r"position 0 holds -1.0"),
        ([[100.0, 101.0]], r"one series"),
    ],
)
def test_zigzag_refuses_unusable_prices(close: list[Any], message: str) -> None:
    with pytest.raises(DataError, match=message):
        zigzag_pivots(np.array(close), 0.05)


@pytest.mark.parametrize("threshold", [0.0, 1.0, -0.1, math.nan])
def test_zigzag_pivots_refuses_a_threshold_outside_0_1(threshold: float) -> None:
    with pytest.raises(ValueError, match=r"zigzag_threshold is a fraction of price"):
        zigzag_pivots(np.array([100.0, 110.0]), threshold)


def test_label_config_defaults() -> None:
    config = LabelConfig(zigzag_threshold=0.02)

    assert (config.source, config.zigzag_threshold, config.label_lookahead) == ("zigzag", 0.02, 20)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"zigzag_threshold": 5}, "zigzag_threshold is a fraction of price (0.02 = 2%), got 5"),
        ({"zigzag_threshold": 1}, "zigzag_threshold is a fraction of price (0.02 = 2%), got 1"),
        ({"zigzag_threshold": 0}, "zigzag_threshold is a fraction of price (0.02 = 2%), got 0"),
        ({"zigzag_threshold": -0.02}, "zigzag_threshold is a fraction of price (0.02 = 2%), got -0.02"),
        ({"zigzag_threshold": 2.5}, "zigzag_threshold is a fraction of price (0.02 = 2%), got 2.5"),
        ({"zigzag_threshold": math.inf}, "zigzag_threshold is a fraction of price (0.02 = 2%), got inf"),
        ({}, "zigzag_threshold\n  Field required"),
        (
            {"zigzag_threshold": 0.02, "label_lookahead": 0},
            "label_lookahead\n  Input should be greater than or equal to 1",
        ),
        ({"zigzag_threshold": 0.02, "source": "future_returns"}, "source\n  Input should be 'zigzag'"),
        ({"zigzag_threshold": 0.02, "lookahead": 5}, "lookahead\n  Extra inputs are not permitted"),
    ],
)
def test_label_config_refusals(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        LabelConfig.model_validate(data)

    assert message in str(caught.value)


def test_label_enum_and_names_agree() -> None:
    assert [label.value for label in Label] == [0, 1, 2]
    assert tuple(label.name for label in Label) == LABEL_NAMES


def test_class_balance_counts_labelled_bars_and_sums_to_one() -> None:
    labels = zigzag_labels(pd.Series(LONG_SWINGS), LabelConfig(zigzag_threshold=0.05, label_lookahead=3))

    balance = class_balance(labels)

    assert balance == {
        "BUY": {"count": 3, "fraction": 3 / 21},
        "HOLD": {"count": 15, "fraction": 15 / 21},
        "SELL": {"count": 3, "fraction": 3 / 21},
    }
    assert sum(entry["fraction"] for entry in balance.values()) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("labels", "counts"),
    [
        (pd.Series([0, 0, 2], dtype="Int64"), [2, 0, 1]),
        (pd.Series([0, pd.NA, 1], dtype="Int64"), [1, 1, 0]),
        ([1.0, math.nan, 1.0], [0, 2, 0]),
        (np.array([2, 2, 2, 0]), [1, 0, 3]),
    ],
)
def test_class_balance_accepts_series_and_sequences(labels: Any, counts: list[int]) -> None:
    balance = class_balance(labels)

    assert [balance[name]["count"] for name in LABEL_NAMES] == counts
    assert sum(entry["fraction"] for entry in balance.values()) == pytest.approx(1.0)


def test_class_balance_of_nothing_is_all_zero() -> None:
    assert class_balance(pd.Series([math.nan, math.nan])) == {
        name: {"count": 0, "fraction": 0.0} for name in LABEL_NAMES
    }


def test_class_balance_refuses_unknown_labels() -> None:
    with pytest.raises(ValueError, match=r"labels must be 0 \(BUY\), 1 \(HOLD\) or 2 \(SELL\), got \[3.0\]"):
        class_balance([0, 1, 3])


@pytest.mark.parametrize("seed", [3, 17, 29])
def test_a_label_is_known_from_the_bars_up_to_the_one_that_decides_it(seed: int) -> None:
    # the definition of zigzag_decided: the prices up to that bar give the bar its final label, one bar fewer does not
    # always (the pivot that decides it is not yet confirmed), and later prices never change it
    close = pd.Series(100 * np.exp(np.cumsum(np.random.default_rng(seed).normal(0, 0.01, 400))))
    config = LabelConfig(zigzag_threshold=0.03, label_lookahead=15)
    labels = zigzag_labels(close, config)
    decided = zigzag_decided(close, config)

    assert ((decided >= 0) == labels.notna()).all()
    assert (decided[labels.notna()] >= decided.index[labels.notna()]).all()  # decided at or after the bar
    unknown_one_bar_earlier = 0
    for bar in labels.index[labels.notna()][::7]:
        at = int(decided[bar])
        assert zigzag_labels(close.iloc[: at + 1], config)[bar] == labels[bar]
        unknown_one_bar_earlier += bool(np.isnan(zigzag_labels(close.iloc[:at], config)[bar]))
    assert unknown_one_bar_earlier == len(labels.index[labels.notna()][::7])  # the bar before, it had no label yet
