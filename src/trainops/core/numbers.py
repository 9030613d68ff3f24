"""Metric values: finite or not, as JSON can and cannot carry them.

JSON has no NaN or Infinity, yet a diverging run produces exactly those, and hiding them would hide the most
important signal there is. trainops accepts the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (and
Python's non-standard JSON literals) wherever a metric is expected, keeps the non-finite value, and writes it
back out as the same string.
"""

from __future__ import annotations

import math
import numbers
import re
from functools import cache
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, PlainSerializer, WithJsonSchema

_NON_FINITE_SPELLINGS = {
    "nan": math.nan,
    "+nan": math.nan,
    "-nan": math.nan,
    "inf": math.inf,
    "+inf": math.inf,
    "infinity": math.inf,
    "+infinity": math.inf,
    "-inf": -math.inf,
    "-infinity": -math.inf,
}


# What a number sent as text may look like: JSON's own number syntax, loosened only as clients write numbers out
# (a leading "+" or ".", a trailing "."). Python's float() reads much more ("1_000", Arabic-Indic digits "١٢"):
# a typo or another notation would be stored as a value nobody meant to send.
_PLAIN_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")

METRIC_TEXT_PATTERN = (
    r"^[ \t\n\r]*(?:[+-]?(?:[0-9]{1,200}(?:\.[0-9]{0,200})?|\.[0-9]{1,200})(?:[eE][+-]?[0-9]{1,2})?"
    r"|[+-]?(?:[Nn][Aa][Nn]|[Ii][Nn][Ff](?:[Ii][Nn][Ii][Tt][Yy])?))[ \t\n\r]*$"
)
"""A metric sent as text, as the OpenAPI document states it and the server reads it (one pattern, which Python's
``re`` and JSON Schema's ECMA-262 regular expressions read alike): a plain decimal of at most 200 digits on each
side of the point and a two-digit exponent (so it always fits a 64-bit float), or a spelling of NaN or infinity,
with JSON's own whitespace (space, tab, line breaks) around it allowed."""

_METRIC_TEXT = re.compile(METRIC_TEXT_PATTERN.removeprefix("^").removesuffix("$"))


def is_numeric(value: Any) -> bool:
    """Whether ``value`` is a number a metric can be read from: a real number, a numpy scalar or a one-element
    tensor (anything with ``__float__``), but not text.

    >>> is_numeric(0.5), is_numeric("0.5")
    (True, False)
    """
    return isinstance(value, numbers.Real) or (hasattr(value, "__float__") and not isinstance(value, str | bytes))


def detached(value: Any) -> Any:
    """A tensor without its autograd graph (its values read without torch's warning); anything else as it is."""
    detach = getattr(value, "detach", None)
    return detach() if callable(detach) else value


def parse_metric(value: Any) -> float:
    """Turn a metric as sent over the wire into a float.

    Accepts numbers and the spellings of NaN and infinity; refuses booleans and other strings, which are far
    more often a bug in the sender than a metric.

    >>> parse_metric("Infinity")
    inf
    >>> parse_metric(0.25)
    0.25
    """
    if isinstance(value, bool):
        raise ValueError(f"a metric must be a number, got the boolean {value}")
    if is_numeric(value):
        # numpy scalars and one-element tensors arrive here straight from training loops
        try:
            return float(detached(value))  # a loss still in its graph, without torch's warning
        except OverflowError:
            raise ValueError("a metric must fit in a 64-bit float; this number is too large") from None
        except (TypeError, ValueError):
            raise ValueError(f"a metric must be a single number, got {type(value).__name__}") from None
    if isinstance(value, str):
        if _METRIC_TEXT.fullmatch(value):
            text = value.strip(" \t\n\r")
            special = _NON_FINITE_SPELLINGS.get(text.lower())
            return float(text) if special is None else special
        raise ValueError(
            f'a metric must be a number or one of "NaN", "Infinity", "-Infinity", got {value!r}; numbers sent as '
            'text must be plain decimals such as "1000", "-2.5" or "1e-3" (no "_" separators, commas or hex; at '
            "most 200 digits each side of the point, a two-digit exponent)"
        )
    raise ValueError(f"a metric must be a number, got {type(value).__name__}")


def is_plain_number_text(text: str) -> bool:
    """Whether ``text`` is a number as trainops reads one from text: plain decimal notation, or a spelling of NaN or
    infinity.

    >>> is_plain_number_text("-2.5e3"), is_plain_number_text("Infinity"), is_plain_number_text("1_000")
    (True, True, False)
    """
    stripped = text.strip()
    return stripped.lower() in _NON_FINITE_SPELLINGS or _PLAIN_DECIMAL.fullmatch(stripped) is not None


def check_plain_numbers(model: type[BaseModel], data: Any) -> Any:
    """``data`` unchanged, unless a number field of ``model`` (``int`` or ``float``, optional or not) holds text that
    Python reads as a number in another notation than :func:`is_plain_number_text`'s: pydantic would read
    ``"1_000"`` as 1000 (Python's ``int``/``float`` accept underscores and other scripts' digits). Meant for a
    model's ``mode="before"`` validator.

    Raises:
        ValueError: naming the field and the value.
    """
    if not isinstance(data, dict):
        return data
    for name, key in _number_fields(model):
        value = data.get(key, data.get(name))
        for item in value if isinstance(value, list) else [value]:  # a list of numbers: each of them
            if isinstance(item, str) and not is_plain_number_text(item) and _reads_as_number(item):
                raise ValueError(
                    f"{name}: {item!r} is not a number in plain decimal notation; send e.g. 1000, -2.5 or 1e-3 "
                    '(no "_" separators, commas or hex)'
                )
    return data


def _reads_as_number(text: str) -> bool:
    """Whether Python (and so pydantic) would read ``text`` as a number; text it would refuse anyway ("many") is
    left to the field's own, better located, error."""
    try:
        float(text)
    except ValueError:
        return False
    return True


@cache
def _number_fields(model: type[BaseModel]) -> tuple[tuple[str, str], ...]:
    """``(name, alias or name)`` of the model's number fields (records are validated by the thousand: once)."""
    return tuple(
        (name, field.alias or name) for name, field in model.model_fields.items() if _is_number_type(field.annotation)
    )


def _is_number_type(annotation: Any) -> bool:
    if annotation is int or annotation is float:
        return True
    if get_origin(annotation) is list:
        return any(argument is int or argument is float for argument in get_args(annotation))
    return get_origin(annotation) in (Union, UnionType) and any(
        _is_number_type(argument) for argument in get_args(annotation)
    )


def format_metric(value: float) -> float | str:
    """A float as JSON can carry it: finite values unchanged, non-finite ones as their string spelling."""
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def format_optional_metric(value: float | None) -> float | str | None:
    return None if value is None else format_metric(value)


Metric = Annotated[
    float,
    BeforeValidator(parse_metric),
    PlainSerializer(format_metric, return_type=float | str, when_used="json"),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "number"},
                {
                    "type": "string",
                    "pattern": METRIC_TEXT_PATTERN,
                    "description": '"NaN", "Infinity" or "-Infinity" (any case), or a number as plain decimal text',
                },
            ]
        }
    ),
]
"""A float that may be NaN or infinite and survives a round trip through JSON."""
