"""Number query parameters read only plain decimal notation, as number fields of bodies do.

FastAPI reads an ``int`` or ``float`` query parameter with pydantic's lax mode, that is Python's ``int()`` and
``float()``, which accept ``"1_000"`` (and other scripts' digits): ``?limit=1_000`` would list 1000 runs. The
router dependency :func:`plain_query_numbers` refuses such text with a 422 naming the parameter, before the
route runs; text that is no number at all keeps FastAPI's own error.
"""

from __future__ import annotations

from types import UnionType
from typing import Any, Union, get_args, get_origin

from fastapi import Request
from fastapi.dependencies.models import Dependant
from starlette.routing import BaseRoute

from trainops.core.numbers import is_plain_number_text
from trainops.errors import InvalidInputError


async def plain_query_numbers(request: Request) -> None:
    """Refuse a number query parameter sent in another notation than plain decimal (``?limit=1_000``)."""
    for name in _number_parameters(request.scope.get("route")):
        for value in request.query_params.getlist(name):
            if not is_plain_number_text(value) and _reads_as_number(value):
                raise InvalidInputError(
                    f"query.{name}: {value!r} is not a number in plain decimal notation; send e.g. {name}=1000 "
                    '(no "_" separators)',
                    details={"parameter": name, "value": value[:100]},
                )


_CACHED = "_trainops_number_query_parameters"


def _number_parameters(route: BaseRoute | None) -> tuple[str, ...]:
    """The query names of ``route``'s ``int`` and ``float`` parameters, its dependencies' included (kept on the
    route: routes are not hashable)."""
    if route is None:
        return ()
    cached: tuple[str, ...] | None = getattr(route, _CACHED, None)
    if cached is None:
        cached = _find_number_parameters(route)
        setattr(route, _CACHED, cached)
    return cached


def _find_number_parameters(route: BaseRoute) -> tuple[str, ...]:
    dependant: Dependant | None = getattr(route, "dependant", None)
    names: list[str] = []
    pending = [dependant] if dependant is not None else []
    while pending:
        current = pending.pop()
        names += [field.alias for field in current.query_params if _is_number(field.field_info.annotation)]
        pending += current.dependencies
    return tuple(dict.fromkeys(names))


def _is_number(annotation: Any) -> bool:
    if annotation in (int, float):
        return True
    if get_origin(annotation) in (Union, UnionType):
        return any(_is_number(argument) for argument in get_args(annotation))
    if get_origin(annotation) is list:
        return any(_is_number(argument) for argument in get_args(annotation))
    return False


def _reads_as_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
