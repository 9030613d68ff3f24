"""Request body limit: bodies above ``max_bytes`` get 413 before anything is parsed or stored."""

from __future__ import annotations

import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trainops.api.responses import error_response


class _TooLarge(BaseException):
    # A BaseException on purpose: FastAPI turns any Exception raised while it reads a model body into a generic
    # 400 "error parsing the body"; this one must pass through it to the middleware and become a 413.
    pass


_ADVICE = {"metrics": "send the epochs in smaller batches", "steps": "send the steps in smaller batches"}
"""What to do about a body too large, by the last part of the path; anything else: send less."""


class BodySizeLimitMiddleware:
    """Refuses oversized bodies, whether announced by Content-Length or streamed in chunks.

    Args:
        app: The application.
        max_bytes: The limit for every route but the exempt ones.
        exempt: ``(method, path pattern)`` of routes that stream their body to disk and enforce their own, larger
            limit as they go (an artifact upload): they see their body untouched. A pattern matches the end of
            the request's path, so it holds under any mount prefix.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, exempt: Iterable[tuple[str, re.Pattern[str]]] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt = tuple(exempt)

    def _response(self, size: int | None, path: str) -> tuple[int, str, str, dict[str, int | None]]:
        told = f" ({size:,} bytes)" if size is not None else ""
        # the advice that helps: only epochs and steps come in batches
        advice = _ADVICE.get(path.rsplit("/", 1)[-1], "send less")
        message = (
            f"request body too large{told}: the limit is {self.max_bytes:,} bytes "
            f"(TRAINOPS_MAX_REQUEST_BYTES); {advice}"
        )
        return 413, "payload_too_large", message, {"limit_bytes": self.max_bytes, "size_bytes": size}

    def _is_exempt(self, scope: Scope) -> bool:
        method, path = scope.get("method"), scope.get("path", "")
        return any(method == route_method and pattern.search(path) for route_method, pattern in self.exempt)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._is_exempt(scope):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    size = int(value)
                except ValueError:
                    size = None
                if size is not None and size > self.max_bytes:
                    status, code, message, details = self._response(size, scope.get("path", ""))
                    await error_response(status, code, message, details)(scope, receive, send)
                    return

        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if started:
                raise
            status, code, message, details = self._response(None, scope.get("path", ""))
            await error_response(status, code, message, details)(scope, receive, send)
