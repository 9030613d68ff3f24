"""Dependencies shared by the routes: the service, authentication, and parsed JSON bodies."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from trainops.errors import AuthenticationError, InvalidInputError
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


async def require_token(request: Request) -> None:
    """Bearer-token check, active when the server was given a token."""
    expected: str | None = request.app.state.api_token
    if expected is None:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    # compare_digest: the time taken must not reveal how much of a guessed token was right
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), expected.encode()):
        raise AuthenticationError(
            "missing or wrong bearer token: send 'Authorization: Bearer <TRAINOPS_API_TOKEN>' "
            "(the client does this when TRAINOPS_API_TOKEN is set)"
        )


async def json_body(request: Request) -> Any:
    """The request's JSON, accepting Python's NaN/Infinity literals (JSON itself has none)."""
    raw = await request.body()
    if not raw:
        raise InvalidInputError("the request needs a JSON body")
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise InvalidInputError(f"the body is not valid JSON: {error}") from None
    except ValueError as error:  # e.g. an integer of more than 4,300 digits
        raise InvalidInputError(f"the body holds a value that cannot be read: {error}") from None
    except RecursionError:
        raise InvalidInputError("the body is nested too deeply to read; flatten it") from None


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
