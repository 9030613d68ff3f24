"""Request bodies hold the JSON types their schema documents, as pydantic's lax mode would not check.

Lax mode reads ``true`` as 1 in a number field, ``"12"`` as 12, ``1700000000`` as a time and ``"yes"`` as true:
values the OpenAPI document calls invalid would be stored as something nobody meant. Ranges, patterns and the
rest are the fields' own business; this module only keeps the types honest:

- a number field (``int`` or ``float``, optional or in a list) takes a JSON number. An integer field takes ``3.0``
  (JSON Schema counts it an integer) but not ``3.5``. Metrics are not number fields here: they also take text
  (``"NaN"``, see :mod:`trainops.core.numbers`), as their schema says;
- a boolean field takes ``true`` or ``false``;
- a time or date field takes text (ISO 8601), not a number.

Query strings carry every value as text, so models read from a query use
:func:`trainops.core.numbers.check_plain_numbers` instead.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import cache
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, BeforeValidator, ValidationInfo, field_validator
from pydantic.fields import FieldInfo

from trainops.core.numbers import parse_metric

Kind = Literal["number", "boolean", "time"]

_WHAT = {
    "number": "a JSON number, e.g. 1000 or 0.5 (not text, not true/false)",
    "boolean": "true or false",
    "time": 'ISO 8601 text, e.g. "2025-06-10T12:00:00Z"',
}


def json_type_problem(value: Any, kind: Kind) -> str | None:
    """What is wrong with ``value`` as a field of ``kind`` (see the module's docstring), ``None`` when nothing is.

    >>> json_type_problem(True, "number")
    'True is a boolean; send a JSON number, e.g. 1000 or 0.5 (not text, not true/false)'
    >>> json_type_problem(3.0, "number") is None
    True
    """
    if value is None:
        return None
    for item in value if isinstance(value, list) and kind == "number" else [value]:
        problem = _problem(item, kind)
        if problem is not None:
            return f"{item!r} is {problem}; send {_WHAT[kind]}"
    return None


class JsonTyped(BaseModel):
    """A base for the models of request bodies: their number, boolean and time fields take only the JSON types the
    document gives them (:func:`json_type_problem`). A field validator, so that an error's location names the
    field (``epochs.1.epoch``)."""

    @field_validator("*", mode="before")
    @classmethod
    def _json_type(cls, value: Any, info: ValidationInfo) -> Any:
        kind = _field_kinds(cls).get(info.field_name or "")
        if kind is not None:
            problem = json_type_problem(value, kind)
            if problem is not None:
                raise ValueError(problem)
        return value


def _problem(value: Any, kind: Kind) -> str | None:
    if kind == "number":
        if isinstance(value, bool):
            return "a boolean"
        return "text" if isinstance(value, str) else None
    if kind == "boolean":
        return None if isinstance(value, bool) else f"a {type(value).__name__}"
    if isinstance(value, bool):
        return "a boolean"
    return "a number" if isinstance(value, int | float) else None


@cache
def _field_kinds(model: type[BaseModel]) -> dict[str, Kind]:
    """The kind of each of ``model``'s fields that has one (records are validated by the thousand: once per
    model)."""
    kinds = {name: _field_kind(field) for name, field in model.model_fields.items()}
    return {name: kind for name, kind in kinds.items() if kind is not None}


def _field_kind(field: FieldInfo) -> Kind | None:
    if _is_metric(field.metadata):
        return None
    return _kind(field.annotation)


def _is_metric(metadata: list[Any] | tuple[Any, ...]) -> bool:
    return any(isinstance(item, BeforeValidator) and item.func is parse_metric for item in metadata)


def _kind(annotation: Any) -> Kind | None:
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *metadata = get_args(annotation)
        return None if _is_metric(metadata) else _kind(inner)
    if origin in (Union, UnionType):
        kinds = {_kind(argument) for argument in get_args(annotation) if argument is not type(None)}
        return kinds.pop() if len(kinds) == 1 else None
    if origin is list:
        (item,) = get_args(annotation) or (Any,)
        return "number" if _kind(item) == "number" else None
    if annotation is bool:
        return "boolean"
    if annotation is int or annotation is float:
        return "number"
    if annotation is datetime or annotation is date:
        return "time"
    return None
