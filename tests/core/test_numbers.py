"""Metric values on the wire: numbers and the spellings of NaN and infinity, nothing else."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter

from trainops.core.numbers import Metric, check_plain_numbers, format_metric, format_optional_metric, parse_metric


def same(a: float, b: float) -> bool:
    """Equal, counting NaN as equal to NaN."""
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("NaN", math.nan, id="NaN"),
        pytest.param("nan", math.nan, id="nan"),
        pytest.param(" NaN\n", math.nan, id="NaN-padded"),
        pytest.param("+nan", math.nan, id="+nan"),
        pytest.param("-nan", math.nan, id="-nan"),
        pytest.param("Infinity", math.inf, id="Infinity"),
        pytest.param("infinity", math.inf, id="infinity"),
        pytest.param("+Infinity", math.inf, id="+Infinity"),
        pytest.param("inf", math.inf, id="inf"),
        pytest.param("+inf", math.inf, id="+inf"),
        pytest.param("INF", math.inf, id="INF"),
        pytest.param("-Infinity", -math.inf, id="-Infinity"),
        pytest.param("-inf", -math.inf, id="-inf"),
        pytest.param("0.25", 0.25, id="decimal-string"),
        pytest.param("-3", -3.0, id="integer-string"),
        pytest.param("1e-3", 0.001, id="exponent-string"),
        pytest.param(" 2.5 ", 2.5, id="padded-string"),
        pytest.param("+5", 5.0, id="plus-sign"),
        pytest.param(".5", 0.5, id="leading-point"),
        pytest.param("5.", 5.0, id="trailing-point"),
        pytest.param("1E5", 100000.0, id="capital-exponent"),
        pytest.param("-2.5e+2", -250.0, id="signed-exponent"),
        pytest.param(0.5, 0.5, id="float"),
        pytest.param(7, 7.0, id="int"),
        pytest.param(math.inf, math.inf, id="float-inf"),
        pytest.param(-math.inf, -math.inf, id="float-minus-inf"),
        pytest.param(math.nan, math.nan, id="float-nan"),
    ],
)
def test_parse_metric_accepts(raw: Any, expected: float) -> None:
    value = parse_metric(raw)

    assert type(value) is float
    assert same(value, expected)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        pytest.param(True, "got the boolean True", id="true"),
        pytest.param(False, "got the boolean False", id="false"),
        pytest.param("abc", r"""one of "NaN", "Infinity", "-Infinity", got 'abc'""", id="word"),
        pytest.param("", "got ''", id="empty-string"),
        pytest.param("1,5", "got '1,5'", id="comma-decimal"),
        pytest.param("Infinityy", "got 'Infinityy'", id="misspelt-infinity"),
        pytest.param("null", "got 'null'", id="null-string"),
        pytest.param("1_000", "got '1_000'; numbers sent as text must be plain decimals", id="underscores"),
        pytest.param("0x10", "got '0x10'", id="hex"),
        pytest.param("\u0661\u0662", "got '\u0661\u0662'", id="arabic-indic-digits"),
        pytest.param("1e", "got '1e'", id="bare-exponent"),
        pytest.param(".", "got '.'", id="lone-point"),
        pytest.param("--1", "got '--1'", id="double-sign"),
        pytest.param("1e999", "a two-digit exponent", id="overflowing-string"),
        pytest.param("1" * 201, "at most 200 digits", id="too-many-digits"),
        pytest.param("\u00a00.5", "a00.5'; numbers sent as text", id="a-space-json-does-not-call-one"),
        pytest.param(None, "must be a number, got NoneType", id="none"),
        pytest.param([1.0], "must be a number, got list", id="list"),
        pytest.param({"value": 1.0}, "must be a number, got dict", id="dict"),
    ],
)
def test_parse_metric_rejects_with_a_message(raw: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        parse_metric(raw)


def test_parse_metric_rejects_an_int_too_large_for_a_float_with_value_error() -> None:
    with pytest.raises(ValueError, match="metric"):
        parse_metric(10**400)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(1.5, 1.5, id="finite"),
        pytest.param(0.0, 0.0, id="zero"),
        pytest.param(-2.0, -2.0, id="negative"),
        pytest.param(math.nan, "NaN", id="nan"),
        pytest.param(math.inf, "Infinity", id="inf"),
        pytest.param(-math.inf, "-Infinity", id="minus-inf"),
    ],
)
def test_format_metric(value: float, expected: float | str) -> None:
    assert format_metric(value) == expected
    assert format_optional_metric(value) == expected


def test_format_optional_metric_keeps_none() -> None:
    assert format_optional_metric(None) is None


@pytest.mark.parametrize("value", [0.125, -4.0, math.nan, math.inf, -math.inf])
def test_format_then_parse_round_trips(value: float) -> None:
    assert same(parse_metric(format_metric(value)), value)


@pytest.mark.parametrize(
    ("value", "json_text"),
    [
        pytest.param(0.25, "0.25", id="finite"),
        pytest.param(math.nan, '"NaN"', id="nan"),
        pytest.param(math.inf, '"Infinity"', id="inf"),
        pytest.param(-math.inf, '"-Infinity"', id="minus-inf"),
    ],
)
def test_metric_type_serializes_non_finite_as_strings_in_json_only(value: float, json_text: str) -> None:
    adapter = TypeAdapter(Metric)

    assert adapter.dump_json(value).decode() == json_text
    assert same(adapter.dump_python(value), value)
    assert same(adapter.validate_json(json_text), value)
    assert json.loads(adapter.dump_json(value)) == json.loads(json_text)


class _Numbers(BaseModel):
    count: int | None = None
    rate: float = 0.0
    label: str = ""
    flag: bool = False


@pytest.mark.parametrize(
    ("data", "refused"),
    [
        pytest.param({"count": "1_000"}, "count: '1_000'", id="optional-int"),
        pytest.param({"rate": "1_0.5"}, "rate: '1_0.5'", id="float"),
        pytest.param({"count": "many", "rate": "0x10"}, None, id="not-numbers-left-to-the-field"),
        pytest.param({"rate": "\u0661"}, "rate: ", id="other-digits"),
        pytest.param({"count": "12", "rate": "-2.5e3"}, None, id="plain-text"),
        pytest.param({"rate": "NaN"}, None, id="non-finite-spelling-left-to-the-field"),
        pytest.param({"label": "1_000", "flag": "true"}, None, id="text-and-bool-fields-untouched"),
        pytest.param({"count": 1_000}, None, id="numbers"),
    ],
)
def test_check_plain_numbers(data: dict[str, Any], refused: str | None) -> None:
    if refused is None:
        assert check_plain_numbers(_Numbers, data) is data
        return
    with pytest.raises(ValueError, match=refused + ".* is not a number in plain decimal notation"):
        check_plain_numbers(_Numbers, data)
