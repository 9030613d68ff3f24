"""Dependencies shared by the routes: the service, authentication, JSON bodies (required and parsed)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from trainops.api.guards import WRITE_METHODS, token_refusal
from trainops.core.payload import nul_at
from trainops.errors import InvalidInputError, UnsupportedMediaTypeError
from trainops.executors.base import Executor
from trainops.service.operations import OperationsService
from trainops.settings import Settings


async def get_service(request: Request) -> OperationsService:
    # async: a plain attribute read should not cost a hop through the thread pool on every request
    service: OperationsService = request.app.state.service
    return service


ServiceDep = Annotated[OperationsService, Depends(get_service)]


async def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


SettingsDep = Annotated[Settings, Depends(get_app_settings)]


async def get_executor(request: Request) -> Executor:
    executor: Executor = request.app.state.executor
    return executor


ExecutorDep = Annotated[Executor, Depends(get_executor)]


_BEARER = HTTPBearer(
    scheme_name="bearerAuth",
    description="TRAINOPS_API_TOKEN, when the server was given one: 'Authorization: Bearer <token>'",
    auto_error=False,
)
"""The token as OpenAPI declares it (``components.securitySchemes.bearerAuth``, on every route that checks it);
:func:`require_token` reads the header itself, so a server without a token answers without one."""


async def require_token(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_BEARER)] = None
) -> None:
    """Bearer-token check, active when the server was given a token. The server refuses a request without it
    before reading its body (:class:`~trainops.api.guards.RequestGuardMiddleware`); this check holds for an app
    mounted without that layer, and declares the token in the OpenAPI document."""
    expected: str | None = request.app.state.api_token
    if expected is None:
        return
    refusal = token_refusal(request.headers.get("authorization", ""), expected)
    if refusal is not None:
        raise refusal


def is_json_media_type(content_type: str) -> bool:
    """Whether a ``Content-Type`` names JSON: ``application/json`` or ``application/<anything>+json``, with any
    parameters (``; charset=utf-8``).

    >>> is_json_media_type("application/json; charset=utf-8"), is_json_media_type("text/plain")
    (True, False)
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (media_type.startswith("application/") and media_type.endswith("+json"))


def _reads_raw_body(route: Any) -> bool:
    """Whether the route documents a body that is not JSON (an upload of a file's bytes, which checks its own)."""
    extra = getattr(route, "openapi_extra", None) or {}
    content = extra.get("requestBody", {}).get("content", {})
    return bool(content) and "application/json" not in content


async def require_json(request: Request) -> None:
    """A write that carries a body must send it as JSON (415 otherwise), with no NUL character in its text (422).

    A browser sends a ``text/plain`` (or form) POST to any site without asking it first (no CORS preflight), so a
    page on the web could otherwise write to a server on this machine that has no token. Requiring
    ``Content-Type: application/json`` makes every such write need a preflight, which the API never grants. Writes
    without a body (a heartbeat, ``DELETE ?reason=``) and the raw uploads (artifacts, model versions) are exempt.

    NUL (``\\u0000``) is refused in every string and key of a body, as the OpenAPI document says
    (``api/openapi.py``): PostgreSQL can hold it in neither text nor JSONB. One scan of the bytes finds the escape
    (JSON has no other way to write it); only a body that has one is parsed to say where.
    """
    if request.method not in WRITE_METHODS or _reads_raw_body(request.scope.get("route")):
        return
    headers = request.headers
    has_body = headers.get("content-length", "0").strip() not in ("0", "") or "transfer-encoding" in headers
    content_type = headers.get("content-type", "")
    if has_body and not is_json_media_type(content_type):
        sent = f"Content-Type {content_type!r}" if content_type else "no Content-Type"
        raise UnsupportedMediaTypeError(
            f"{request.method} {request.url.path} reads a JSON body, and this request sent {sent}: send the body "
            "as JSON with 'Content-Type: application/json'",
            details={"content_type": content_type or None},
        )
    if has_body:
        raw = await request.body()  # read once: FastAPI parses the body from the same cache
        if _NUL_ESCAPE in raw:
            where = _nul_in(raw)
            if where is not None:
                raise InvalidInputError(
                    f"{where} contains a NUL character (\\u0000); remove it: text cannot hold one",
                    details={"field": where},
                )


_NUL_ESCAPE = b"\\u0000"


def _nul_in(raw: bytes) -> str | None:
    """Where the JSON ``raw`` holds a NUL in a string or key (``body.metadata.notes``), ``None`` when it does not
    (the escape was itself escaped, ``"\\\\u0000"``) or ``raw`` is not JSON (the body's own validation says so)."""
    try:
        parsed = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return nul_at(parsed, "body")


async def json_body(request: Request) -> Any:
    """The request's JSON, accepting Python's NaN/Infinity literals (JSON itself has none)."""
    raw = await request.body()
    if not raw:
        raise InvalidInputError("the request needs a JSON body")
    try:
        # a number too large for a float would read as infinity (about 0.8 us per value: a regex over the body to
        # spare it cost more than the parse itself)
        return json.loads(raw, parse_float=_finite_float)
    except (ValueError, RecursionError) as error:
        raise InvalidInputError(unreadable_json(error)) from None


def unreadable_json(error: ValueError | RecursionError) -> str:
    """What is wrong with a body ``json.loads`` refused with ``error``, and what to send instead."""
    if isinstance(error, RecursionError):
        return "the body is nested too deeply to read; flatten it"
    if isinstance(error, json.JSONDecodeError | UnicodeDecodeError):
        return f"the body is not valid JSON: {error}"
    if "integer string conversion" in str(error):  # Python reads at most 4,300 digits of an integer
        return (
            "the body holds an integer of more than 4,300 digits, longer than any count or metric; send a number "
            "that fits a 64-bit float"
        )
    return f"the body holds a value that cannot be read: {error}"


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(
            f"the number {text[:40]}{'...' if len(text) > 40 else ''} is past the largest 64-bit float (about "
            '1.8e308); send a smaller one, or "Infinity" if the value is infinite'
        )
    return value


JsonBody = Annotated[Any, Depends(json_body)]

T = TypeVar("T")


async def call_service(service: OperationsService, call: Callable[[], T]) -> T:
    """Run a blocking service call that only reads, from an async route.

    On SQLite it runs inline: in WAL mode a read never waits for a writer, the database is a local file and a
    read takes a fraction of a millisecond, so a thread-pool hop would only add GIL contention. On PostgreSQL it
    goes to the thread pool, so network round trips never stall the event loop.
    """
    if service.store.is_local:
        return call()
    return await run_in_threadpool(call)


async def call_blocking(call: Callable[[], T]) -> T:
    """Run a blocking service call that writes (or loads a whole history), always in the thread pool.

    A write may wait for the database's write lock, which another process (``trainops train`` reporting
    in-process, a second server) can hold; waiting on the event loop would stall every request, ``/health``
    included. Inline SQLite writes were faster under load (four writers: ~700 vs ~400 epochs/s), but a server
    that stops answering while someone else writes is not a trade worth making.
    """
    return await run_in_threadpool(call)
