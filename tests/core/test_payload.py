"""Free-form values made safe to store: bad text refused with its place, non-finite numbers spelled out."""

from __future__ import annotations

import math

import numpy as np
import pytest

from trainops.core.payload import MAX_DEPTH, check_text, storable


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"a": 1, "b": [1.5, "x", None, True]}, {"a": 1, "b": [1.5, "x", None, True]}, id="plain"),
        pytest.param({"loss": math.nan}, {"loss": "NaN"}, id="nan"),
        pytest.param([math.inf, -math.inf], ["Infinity", "-Infinity"], id="infinities"),
        pytest.param(("a", ("b",)), ["a", ["b"]], id="tuples-become-lists"),
        pytest.param({"n": np.float32(0.5), "k": np.int64(3)}, {"n": 0.5, "k": 3}, id="numpy-scalars"),
        pytest.param({"emoji": "\U0001f680 café"}, {"emoji": "\U0001f680 café"}, id="unicode"),
    ],
)
def test_storable_keeps_what_json_can_carry(value: object, expected: object) -> None:
    assert storable(value, "result") == expected
    assert type(storable(np.int64(3), "x")) is int


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param({"note": "bad \ud800"}, r"result\.note contains an unpaired UTF-16 surrogate", id="surrogate"),
        pytest.param({"a": ["ok", "nul\x00"]}, r"result\.a\[1\] contains a NUL character", id="nul"),
        pytest.param({"\udfff": 1}, "a key of result contains an unpaired", id="bad-key"),
        pytest.param({1: "x"}, "result has a key of type int", id="int-key"),
        pytest.param({"model": object()}, r"result\.model holds a object", id="object"),
        pytest.param({"s": {1, 2}}, r"result\.s holds a set", id="set"),
    ],
)
def test_storable_refuses_what_would_break_later_reads(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        storable(value, "result")


def test_nesting_is_bounded() -> None:
    deep: list[object] = []
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    with pytest.raises(ValueError, match="nested more than"):
        storable(deep, "result")


def test_check_text() -> None:
    assert check_text("fine", "reason") == "fine"
    with pytest.raises(ValueError, match="reason contains a NUL"):
        check_text("a\x00b", "reason")
