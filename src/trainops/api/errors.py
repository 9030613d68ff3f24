"""Turning exceptions into the error envelope, in one place."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from trainops.api.deps import unreadable_json
from trainops.api.responses import error_answer, error_response
from trainops.api.server_paths import ServerPaths
from trainops.errors import TrainOpsError, http_status_for

logger = logging.getLogger("trainops.api")


def describe_validation_errors(errors: list[Any]) -> tuple[str, list[dict[str, Any]]]:
    """A one-line message naming each bad field, and the structured list for ``details``."""
    parts = []
    cleaned = []
    for error in errors:
        location = ".".join(str(part) for part in error.get("loc", ()) if part not in ("body",)) or "body"
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{location}: {message}")
        cleaned.append({"loc": [str(part) for part in error.get("loc", ())], "msg": message, "type": error.get("type")})
    return "; ".join(parts[:10]) + (f" (and {len(parts) - 10} more)" if len(parts) > 10 else ""), cleaned


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


class MethodNotAllowed(StarletteHTTPException):
    """A 405 raised by a route that knows the path's methods better than the app's routes can tell: a ``:path``
    parameter that swallowed another route's path (``GET /models/x/load``)."""

    def __init__(self, allow: Sequence[str]) -> None:
        super().__init__(405, headers={"Allow": ", ".join(allow)})


def allowed_methods(request: Request) -> list[str]:
    """Every method some route of the app accepts on the request's path, for a 405's ``Allow``.

    Starlette's own ``Allow`` names only the first route that matched the path, but one path is often several
    routes (``GET``, ``PATCH`` and ``DELETE /operations/{id}``): each method is asked of the app's routes (nested
    routers included) as a request of its own would be.
    """
    allowed = []
    for method in _METHODS:
        # a fresh scope: the request's own carries what its routing already decided
        scope = {
            "type": "http",
            "method": method,
            "path": request.scope["path"],
            "root_path": request.scope.get("root_path", ""),
            "headers": [],
        }
        if any(route.matches(scope)[0] is Match.FULL for route in request.app.router.routes):
            allowed.append(method)
    return allowed


_FASTAPI_UNREADABLE_BODY = "There was an error parsing the body"
"""FastAPI's whole answer when ``json.loads`` fails on a body for a reason other than malformed JSON."""


async def _why_unreadable(request: Request) -> str:
    """Why FastAPI could not read the body: it says only that it could not (read again, as the JSON routes do)."""
    try:
        json.loads(await request.body())
    except (ValueError, RecursionError) as error:
        return unreadable_json(error)
    return "the body could not be read as JSON; send a JSON object in UTF-8"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(TrainOpsError)
    async def _trainops_error(request: Request, error: TrainOpsError) -> Response:
        status = http_status_for(error)
        paths = ServerPaths.of(request.app.state.settings)
        message, details = paths.redact(error.message), paths.redact_details(error.details)
        if message != error.message:  # the server's log keeps what the client is not told: where the file is
            logger.info("%s %s answered %d: %s", request.method, request.url.path, status, error.message)
        return error_answer(error, message, details)

    @app.exception_handler(RequestValidationError)
    async def _request_validation(_: Request, error: RequestValidationError) -> Response:
        message, details = describe_validation_errors(list(error.errors()))
        return error_response(422, "invalid_input", message, {"errors": details})

    @app.exception_handler(ValidationError)
    async def _validation(_: Request, error: ValidationError) -> Response:
        message, details = describe_validation_errors(list(error.errors()))
        return error_response(422, "invalid_input", message, {"errors": details})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, error: StarletteHTTPException) -> Response:
        accepted = ""
        if error.status_code == 404:
            message = f"no such endpoint: {request.method} {request.url.path}; see /api/v1/docs"
        elif error.status_code == 405:
            told = (error.headers or {}).get("Allow", "")
            accepted = told if isinstance(error, MethodNotAllowed) else ", ".join(allowed_methods(request)) or told
            message = f"{request.method} is not allowed on {request.url.path} (it accepts {accepted}); see /api/v1/docs"
        elif error.status_code == 400 and error.detail == _FASTAPI_UNREADABLE_BODY:
            message = await _why_unreadable(request)
        else:
            message = str(error.detail)
        code = {404: "not_found", 405: "method_not_allowed", 400: "bad_request"}.get(error.status_code, "http_error")
        response = error_response(error.status_code, code, message)
        response.headers.update(error.headers or {})
        if error.status_code == 405 and accepted:
            response.headers["Allow"] = accepted
        return response

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, error: Exception) -> Response:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", f"internal error: {type(error).__name__}; see the server log")
