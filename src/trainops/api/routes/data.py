"""``/data``: the market data files the server can train and predict on, listed and downloaded.

A download answers the stored file itself (CSV or Parquet, exactly as the data directory holds it), streamed, with
its SHA-256 as a strong ETag and its modification time as ``Last-Modified``: a worker that trains on another
machine keeps a cache of these files and revalidates it with ``If-None-Match``, which costs a 304 and no body
while the server's file is unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC
from email.utils import formatdate, parsedate_to_datetime
from functools import partial
from typing import Annotated, BinaryIO

from fastapi import APIRouter, Header, Path, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.types import Send

from trainops.api.deps import call_blocking
from trainops.api.etags import if_none_match_matches
from trainops.api.responses import Envelope, envelope
from trainops.api.train_deps import RegistryDep, TrainingDep
from trainops.pipeline.data import SYMBOL_TEXT_PATTERN, TIMEFRAME_TEXT_PATTERN
from trainops.pipeline.data_files import StoredDataFile, data_file_name, open_data_file
from trainops.schemas.data import DATA_MEDIA_TYPES, DataFile

router = APIRouter(prefix="/data", tags=["data"])

_CHUNK_BYTES = 1024 * 1024

# ``:path`` so that a symbol holding an encoded slash (``..%2Fetc``) still reaches the route and is refused by the
# symbol rule (422) instead of matching no route at all.
Symbol = Annotated[
    str,
    Path(
        max_length=256,
        description="the symbol, e.g. EURUSD (any case)",
        json_schema_extra={"pattern": SYMBOL_TEXT_PATTERN},
    ),
]
Timeframe = Annotated[
    str,
    Path(
        max_length=64,
        description="the timeframe, e.g. 1h (aliases such as H1 or hourly are accepted)",
        json_schema_extra={"pattern": TIMEFRAME_TEXT_PATTERN},
    ),
]


@router.get("", response_model=Envelope[list[DataFile]])
async def list_data(training: TrainingDep) -> Response:
    """Every ``{SYMBOL}_{TIMEFRAME}`` file in the data directory: symbol, timeframe, format, bars, first and
    last bar. Empty until someone runs ``trainops data sample`` (or copies data there)."""
    return envelope(await call_blocking(training.data))


@router.get(
    "/{symbol:path}/{timeframe}",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "the data file's bytes, as stored (its format is the media type)",
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in DATA_MEDIA_TYPES.values()
            },
            "headers": {
                "ETag": {"description": "the file's SHA-256, quoted", "schema": {"type": "string"}},
                "Last-Modified": {"description": "when the file last changed", "schema": {"type": "string"}},
            },
        },
        304: {"description": "the file is unchanged since the ETag (or date) the request sent"},
        404: {"description": "no data file for this symbol and timeframe (the message lists those there are)"},
        409: {"description": "two files hold the pair (X_1h.csv and X_1h.parquet): keep one on the server"},
        422: {"description": "the symbol or timeframe is not one (e.g. ../etc, 1M)"},
    },
)
async def download_data(
    symbol: Symbol,
    timeframe: Timeframe,
    registry: RegistryDep,
    if_none_match: Annotated[str | None, Header()] = None,
    if_modified_since: Annotated[str | None, Header()] = None,
) -> Response:
    """The data file of ``symbol`` and ``timeframe``, as the data directory holds it (``EURUSD_1h.csv``, or
    ``.parquet``), for a worker that trains away from the server's disk. ``If-None-Match`` with the ETag (the
    file's SHA-256), or ``If-Modified-Since``, answers 304 while it is unchanged.

    Example: ``curl -OJ .../api/v1/data/EURUSD/1h`` writes ``EURUSD_1h.csv``.
    """
    stored = await call_blocking(partial(registry.data_file, symbol, timeframe))
    if _not_modified(stored, f'"{stored.sha256}"', if_none_match, if_modified_since):
        return Response(status_code=304, headers=_identity_headers(stored))
    # Served from one open handle, described by its own fstat and hash: the path may hold another file by now
    served, handle = await call_blocking(partial(open_data_file, stored))
    name = data_file_name(served.symbol, served.timeframe, served.format)
    headers = _identity_headers(served) | {
        "Content-Length": str(served.size),
        "Content-Disposition": f'attachment; filename="{name}"',  # a checked symbol: nothing to quote
        "X-Content-Type-Options": "nosniff",
    }
    return _SizedStreamingResponse(
        _file_chunks(served, handle),
        size=served.size,
        media_type=DATA_MEDIA_TYPES[served.format],
        headers=headers,
        background=BackgroundTask(handle.close),
    )


def _identity_headers(stored: StoredDataFile) -> dict[str, str]:
    return {"ETag": f'"{stored.sha256}"', "Last-Modified": formatdate(stored.modified, usegmt=True)}


def _not_modified(stored: StoredDataFile, etag: str, if_none_match: str | None, if_modified_since: str | None) -> bool:
    """RFC 9110's order: ``If-None-Match`` decides when sent; ``If-Modified-Since`` only without it."""
    if if_none_match is not None:
        return if_none_match_matches(if_none_match, etag)
    if if_modified_since is None:
        return False
    try:
        since = parsedate_to_datetime(if_modified_since)
    except (TypeError, ValueError):
        return False  # an unreadable date is ignored, as the RFC asks
    if since.tzinfo is None:  # "-0000": HTTP dates are GMT
        since = since.replace(tzinfo=UTC)
    return int(stored.modified) <= since.timestamp()


def _file_chunks(served: StoredDataFile, handle: BinaryIO) -> Iterator[bytes]:
    """The first ``served.size`` bytes of ``handle``, and no more: fewer when the file was rewritten in place while
    it was read. It then comes up short, or it no longer has the size and modification time it was hashed with: the
    last chunk is held back until that is checked, so a body that reaches its Content-Length is the one its ETag
    names."""
    with handle:
        left = served.size
        while left > 0:
            chunk = handle.read(min(_CHUNK_BYTES, left))
            left -= len(chunk)
            if not chunk or (left == 0 and not served.still_describes(handle)):
                return
            yield chunk


class _SizedStreamingResponse(StreamingResponse):
    """A streamed body of ``size`` bytes (its Content-Length) that ends unfinished when its chunks fall short.

    The server then closes the connection, and the client sees a body shorter than announced, which an HTTP client
    refuses (and the trainops client's verified download with it). Ending it the usual way would make the server log
    a traceback ("Response content shorter than Content-Length") for what is no bug of the server's.
    """

    def __init__(
        self,
        content: Iterator[bytes],
        *,
        size: int,
        media_type: str,
        headers: Mapping[str, str],
        background: BackgroundTask,
    ) -> None:
        super().__init__(content, media_type=media_type, headers=headers, background=background)
        self.size = size

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        sent = 0
        async for chunk in self.body_iterator:
            sent += len(chunk)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        if sent == self.size:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
