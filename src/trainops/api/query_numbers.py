"""Number query parameters read only plain decimal notation, as number fields of bodies do, and a parameter that
takes one value is sent once.

FastAPI reads an ``int`` or ``float`` query parameter with pydantic's lax mode, that is Python's ``int()`` and
``float()``, which accept ``"1_000"`` (and other scripts' digits): ``?limit=1_000`` would list 1000 runs. The
router dependency :func:`plain_query_numbers` refuses such text with a 422 naming the parameter, before the
route runs; text that is no number at all keeps FastAPI's own error. A time parameter (``?created_after=``) takes
ISO 8601 text only: pydantic would read ``0.5`` as seconds since 1970. FastAPI reads the last of a single-valued
parameter sent twice (``?name=a&name=b`` lists the runs named ``b``); :func:`single_query_values` refuses it with a
422 naming the parameter, as a body refuses a list where it takes one value.
"""

from __future__ import annotations

from datetime import date, datetime
from types import UnionType
from typing import Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from starlette.routing import BaseRoute

from trainops.core.numbers import is_plain_number_text
from trainops.errors import InvalidInputError


async def plain_query_numbers(request: Request) -> None:
    """Refuse a number query parameter sent in another notation than plain decimal (``?limit=1_000``)."""
    for name, is_time in _number_parameters(request.scope.get("route")):
        for value in request.query_params.getlist(name):
            if is_time and _reads_as_number(value):
                raise InvalidInputError(
                    f"query.{name}: {value!r} is a number; send an ISO 8601 time, e.g. {name}=2025-06-10T12:00:00Z",
                    details={"parameter": name, "value": value[:100]},
                )
            if not is_time and not is_plain_number_text(value) and _reads_as_number(value):
                raise InvalidInputError(
                    f"query.{name}: {value!r} is not a number in plain decimal notation; send e.g. {name}=1000 "
                    '(no "_" separators)',
                    details={"parameter": name, "value": value[:100]},
                )


async def single_query_values(request: Request) -> None:
    """Refuse a query parameter that takes one value sent more than once (``?name=a&name=b``)."""
    for name in _single_parameters(request.scope.get("route")):
        count = len(request.query_params.getlist(name))
        if count > 1:
            raise InvalidInputError(
                f"query.{name}: sent {count} times; it takes one value, so send it once",
                details={"parameter": name, "count": count},
            )


_CACHED = "_trainops_number_query_parameters"
_CACHED_SINGLE = "_trainops_single_query_parameters"


def _number_parameters(route: BaseRoute | None) -> tuple[tuple[str, bool], ...]:
    """``(name, is a time)`` of ``route``'s ``int``, ``float``, date and time query parameters, its dependencies'
    included (kept on the route: routes are not hashable)."""
    if route is None:
        return ()
    cached: tuple[tuple[str, bool], ...] | None = getattr(route, _CACHED, None)
    if cached is None:
        cached = _find_number_parameters(route)
        setattr(route, _CACHED, cached)
    return cached


def _single_parameters(route: BaseRoute | None) -> tuple[str, ...]:
    """The names of ``route``'s query parameters that take one value (not a list), its dependencies' included."""
    if route is None:
        return ()
    cached: tuple[str, ...] | None = getattr(route, _CACHED_SINGLE, None)
    if cached is None:
        cached = tuple(
            dict.fromkeys(field.alias for field in _query_fields(route) if not _is_a_list(field.field_info.annotation))
        )
        setattr(route, _CACHED_SINGLE, cached)
    return cached


def _find_number_parameters(route: BaseRoute) -> tuple[tuple[str, bool], ...]:
    found: dict[str, bool] = {}
    for field in _query_fields(route):
        if _is_a(field.field_info.annotation, (int, float)):
            found.setdefault(field.alias, False)
        elif _is_a(field.field_info.annotation, (datetime, date)):
            found.setdefault(field.alias, True)
    return tuple(found.items())


def _query_fields(route: BaseRoute) -> list[Any]:
    """``route``'s query parameters, its dependencies' included."""
    dependant: Dependant | None = getattr(route, "dependant", None)
    fields: list[Any] = []  # FastAPI's ModelField
    pending = [dependant] if dependant is not None else []
    while pending:
        current = pending.pop()
        fields += current.query_params
        pending += current.dependencies
    return fields


def _is_a_list(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is list:
        return True
    return origin in (Union, UnionType) and any(_is_a_list(argument) for argument in get_args(annotation))


def _is_a(annotation: Any, types: tuple[type, ...]) -> bool:
    if annotation in types:
        return True
    if get_origin(annotation) in (Union, UnionType, list):
        return any(_is_a(argument, types) for argument in get_args(annotation))
    return False


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
