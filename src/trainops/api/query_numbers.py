"""Number query parameters read only plain decimal notation, as number fields of bodies do, and a parameter that
takes one value is sent once.

FastAPI reads an ``int`` or ``float`` query parameter with pydantic's lax mode, that is Python's ``int()`` and
``float()``, which accept ``"1_000"`` (and other scripts' digits): ``?limit=1_000`` would list 1000 runs. The
router dependency :func:`plain_query_numbers` refuses such text with a 422 naming the parameter, before the
route runs; text that is no number at all keeps FastAPI's own error. A time parameter (``?created_after=``) takes
ISO 8601 text only: pydantic would read ``0.5`` as seconds since 1970. FastAPI reads the last of a single-valued
parameter sent twice (``?name=a&name=b`` lists the runs named ``b``); :func:`single_query_values` refuses it with a
422 naming the parameter, as a body refuses a list where it takes one value. And :func:`no_nul_in_url` refuses a NUL
(``%00``) in a path or query parameter, as :func:`~trainops.api.deps.require_json` does in a body: PostgreSQL can
compare no text holding one.
"""

from __future__ import annotations

from datetime import date, datetime
from types import UnionType
from typing import Any, NamedTuple, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from starlette.routing import BaseRoute

from trainops.core.numbers import is_plain_number_text
from trainops.errors import InvalidInputError


async def plain_query_numbers(request: Request) -> None:
    """Refuse a number query parameter sent in another notation than plain decimal (``?limit=1_000``)."""
    if not request.scope.get("query_string"):
        return  # most requests (a run's metrics, a status poll) carry no query at all
    for name, is_time in _parameters(request.scope.get("route")).numbers:
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
    if not request.scope.get("query_string"):
        return
    for name in _parameters(request.scope.get("route")).singles:
        count = len(request.query_params.getlist(name))
        if count > 1:
            raise InvalidInputError(
                f"query.{name}: sent {count} times; it takes one value, so send it once",
                details={"parameter": name, "count": count},
            )


async def no_nul_in_url(request: Request) -> None:
    """Refuse a path or query parameter holding a NUL character (``/operations/op_x%00``, ``?q=a%00``)."""
    query = request.scope.get("query_string", b"")
    if "\x00" not in request.scope.get("path", "") and b"%00" not in query:
        return  # one scan of each: nearly every request
    sent = [("path", name, value) for name, value in request.path_params.items()]
    sent += [("query", name, value) for name, value in request.query_params.multi_items()]
    for where, name, value in sent:
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInputError(
                f"{where}.{name} contains a NUL character (%00); remove it: no name, id or text holds one",
                details={"parameter": name},
            )


class _QueryParameters(NamedTuple):
    numbers: tuple[tuple[str, bool], ...]
    """``(name, is a time)`` of the ``int``, ``float``, date and time parameters."""
    singles: tuple[str, ...]
    """The parameters that take one value (not a list)."""


_NONE = _QueryParameters((), ())
_CACHED = "_trainops_query_parameters"


def _parameters(route: BaseRoute | None) -> _QueryParameters:
    """``route``'s query parameters as the checks read them, its dependencies' included, found once per route (kept
    on the route: routes are not hashable)."""
    if route is None:
        return _NONE
    cached: _QueryParameters | None = getattr(route, _CACHED, None)
    if cached is None:
        cached = _find_parameters(route)
        setattr(route, _CACHED, cached)
    return cached


def _find_parameters(route: BaseRoute) -> _QueryParameters:
    dependant: Dependant | None = getattr(route, "dependant", None)
    numbers: dict[str, bool] = {}
    singles: dict[str, None] = {}
    pending = [dependant] if dependant is not None else []
    while pending:
        current = pending.pop()
        for field in current.query_params:
            annotation = field.field_info.annotation
            if _is_a(annotation, (int, float)):
                numbers.setdefault(field.alias, False)
            elif _is_a(annotation, (datetime, date)):
                numbers.setdefault(field.alias, True)
            if not _is_a_list(annotation):
                singles.setdefault(field.alias)
        pending += current.dependencies
    return _QueryParameters(tuple(numbers.items()), tuple(singles))


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
