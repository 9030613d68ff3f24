"""Number query parameters read only plain decimal notation, as number fields of bodies do.

FastAPI reads an ``int`` or ``float`` query parameter with pydantic's lax mode, that is Python's ``int()`` and
``float()``, which accept ``"1_000"`` (and other scripts' digits): ``?limit=1_000`` would list 1000 runs. The
router dependency :func:`plain_query_numbers` refuses such text with a 422 naming the parameter, before the
route runs; text that is no number at all keeps FastAPI's own error. A time parameter (``?created_after=``) takes
ISO 8601 text only: pydantic would read ``0.5`` as seconds since 1970.
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


_CACHED = "_trainops_number_query_parameters"


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


def _find_number_parameters(route: BaseRoute) -> tuple[tuple[str, bool], ...]:
    dependant: Dependant | None = getattr(route, "dependant", None)
    found: dict[str, bool] = {}
    pending = [dependant] if dependant is not None else []
    while pending:
        current = pending.pop()
        for field in current.query_params:
            if _is_a(field.field_info.annotation, (int, float)):
                found.setdefault(field.alias, False)
            elif _is_a(field.field_info.annotation, (datetime, date)):
                found.setdefault(field.alias, True)
        pending += current.dependencies
    return tuple(found.items())


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
