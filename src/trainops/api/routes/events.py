"""``/operations/{id}/events``: a server-sent events stream of one operation, for dashboards and watchers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import StreamingResponse

from trainops.api.deps import ServiceDep, SettingsDep, call_blocking, call_service
from trainops.api.openapi import DATABASE_ERRORS
from trainops.api.routes.operations import DisplayPoints, OperationId
from trainops.service.events import Cursor, EventBatch, read_events
from trainops.service.operations import OperationsService
from trainops.settings import Settings

router = APIRouter(prefix="/operations", tags=["operations"], responses=DATABASE_ERRORS)


@dataclass(frozen=True)
class EventTiming:
    """How often an open stream looks for changes, and how long it may stay silent before a keep-alive comment.

    A server takes them from ``TRAINOPS_EVENTS_POLL_INTERVAL`` and ``TRAINOPS_EVENTS_KEEPALIVE``
    (:meth:`of`); an ``app.state.event_timing`` set on the app wins (tests set one, to be fast)."""

    poll_interval: float = 0.25
    keepalive: float = 15.0
    """Below the 30-60 s idle timeouts of common proxies and load balancers."""
    retry_ms: int = 1000
    """The reconnection delay sent to clients (SSE ``retry:``)."""

    @classmethod
    def of(cls, settings: Settings) -> EventTiming:
        """The timing ``settings`` ask for."""
        return cls(poll_interval=settings.events_poll_interval, keepalive=settings.events_keepalive)


@router.get(
    "/{operation_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "the event stream"},
        204: {"description": "the operation ended and the reader has every event (Last-Event-ID): nothing to send"},
        404: {"description": "no such operation"},
    },
)
async def operation_events(
    operation_id: OperationId,
    request: Request,
    service: ServiceDep,
    settings: SettingsDep,
    last_event_id: Annotated[str | None, Header(max_length=256, description="resume after this event")] = None,
    points: DisplayPoints = None,
) -> Response:
    """A server-sent events stream (``text/event-stream``) of one operation, for a dashboard (``EventSource``),
    ``trainops ops watch`` or ``TrainOps.events``.

    Events, each ``id:``, ``event:`` and one ``data:`` line of JSON (the event itself, ``id`` and ``event``
    included), in this order whenever something changed: ``epochs`` (the epochs stored since the last event,
    oldest first; a re-written epoch comes again), ``progress``, ``recommendation`` (the diagnosis, when its
    action, restore epoch or fired rules change), ``status`` (status or cancel request changed), and once the
    operation ended ``diagnosis`` (the final one), after which the stream closes. The first events of a stream
    bring a new reader up to date: the whole history in one ``epochs`` event, then the current state. A comment
    line (``: keep-alive``) comes when nothing else was sent for 15 s (``TRAINOPS_EVENTS_KEEPALIVE``), so
    proxies keep the connection.

    **Long histories.** ``points=N`` thins an ``epochs`` event of more than N epochs (the catch-up of a long
    history, or of a reader back after a long gap) for display, as ``GET .../metrics?points=N`` does, and marks
    it ``"thinned": true``; later events stay whole and the ids (cursors) are the same as without it.

    **Resuming.** An event's ``id`` is a cursor built from stored state only (the operation's version, which every
    epoch row records, and digests of the state sent), not a position in a server's memory: a reader that
    reconnects with ``Last-Event-ID`` (``EventSource`` does so by itself) gets exactly the events it missed and
    nothing twice, from any server process, across restarts. Reconnecting after the final ``diagnosis`` answers
    204, which tells ``EventSource`` to stop.

    **Cost.** An open stream holds neither a thread nor a database connection while idle: it reads the
    operation's version (one indexed row) every 0.25 s (``TRAINOPS_EVENTS_POLL_INTERVAL``) on the event loop,
    and reads new rows only when it moved.
    Polling ``GET /operations/{id}/metrics?since_epoch=N`` with ETags stays the fallback.

    404 (the error envelope) for an unknown operation, before the stream starts; 422 for a ``Last-Event-ID`` this
    stream never sent.
    """
    cursor = Cursor.decode(last_event_id)
    timing: EventTiming = getattr(request.app.state, "event_timing", None) or EventTiming.of(settings)
    read = partial(read_events, service, operation_id, points=points)
    first = await call_blocking(partial(read, cursor))  # unknown id: 404 here
    if first.ended and not first.events:
        return Response(status_code=204)
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}  # nginx: pass events on as they come
    body = _stream(request, service, operation_id, first, timing, read)
    return StreamingResponse(body, media_type="text/event-stream", headers=headers)


async def _stream(
    request: Request,
    service: OperationsService,
    operation_id: str,
    batch: EventBatch,
    timing: EventTiming,
    read: Callable[[Cursor], EventBatch],
) -> AsyncIterator[str]:
    yield f"retry: {timing.retry_ms}\n\n"
    quiet_since = time.monotonic()
    while True:
        if batch.events:
            yield "".join(_frame(event.id, event.event, event.model_dump_json()) for event in batch.events)
            quiet_since = time.monotonic()
        if batch.ended:
            return
        cursor = batch.cursor
        while True:
            await asyncio.sleep(timing.poll_interval)
            if await request.is_disconnected():
                return
            current = await call_service(service, partial(service.version, operation_id))
            if current.version != cursor.version:
                break
            if time.monotonic() - quiet_since >= timing.keepalive:
                yield ": keep-alive\n\n"
                quiet_since = time.monotonic()
        batch = await call_blocking(partial(read, cursor))


def _frame(event_id: str, event: str, data: str) -> str:
    """One event in the SSE wire format (HTML Living Standard, 9.2.6). The JSON holds no raw newline (JSON
    escapes them in strings), so it is one ``data:`` line."""
    return f"id: {event_id}\nevent: {event}\ndata: {data}\n\n"
