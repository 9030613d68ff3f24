"""``/operations/{id}/artifacts``: upload, list and download the files logged to an operation.

An upload is the file itself as the raw request body (``application/octet-stream``), named by ``?path=``. It is
streamed to disk as it arrives, so this route is exempt from the JSON body limit (``TRAINOPS_MAX_REQUEST_BYTES``)
and enforces its own, ``TRAINOPS_MAX_ARTIFACT_BYTES``, while it reads: an announced size over the limit is
refused before a byte is read, a streamed one as soon as it passes the limit.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterator
from functools import partial
from typing import Annotated, BinaryIO

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.requests import ClientDisconnect

from trainops.api.deps import call_blocking
from trainops.api.etags import if_none_match_matches
from trainops.api.openapi import DATABASE_ERRORS, errors
from trainops.api.responses import Envelope, envelope, error_response
from trainops.errors import InvalidInputError
from trainops.schemas.artifacts import ARTIFACT_PATH_SCHEMA, ArtifactInfo
from trainops.service.artifacts import ArtifactService
from trainops.store.artifacts import CHUNK_BYTES, too_large

router = APIRouter(prefix="/operations", tags=["artifacts"], responses=DATABASE_ERRORS)

UPLOAD_ROUTE = ("POST", re.compile(r"/operations/[^/]+/artifacts$"))
"""The upload, for :class:`~trainops.api.limits.BodySizeLimitMiddleware`'s exemption: it limits its body itself."""

OperationId = Annotated[str, Path(description="operation id, e.g. op_training_20250610_123456_ab12cd34", max_length=64)]
ArtifactPathQuery = Annotated[
    str,
    Query(
        alias="path",
        description="where to store the file among the operation's artifacts, e.g. checkpoints/best.pt "
        "(plain names of letters, digits, '.', '_', '-' joined by '/')",
        json_schema_extra=ARTIFACT_PATH_SCHEMA,
    ),
]

# Python's own table only: the system's (/etc/mime.types) differs between machines and calls a PyTorch checkpoint
# (.pt) a SNES page table
_MEDIA_TYPES = mimetypes.MimeTypes()

_UPLOAD_BODY = {
    "requestBody": {
        # an empty body is an empty file, as a zero-length upload is anywhere else
        "required": False,
        "description": "the file's bytes (none: an empty file)",
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    }
}


async def get_artifacts(request: Request) -> ArtifactService:
    artifacts: ArtifactService = request.app.state.artifacts
    return artifacts


ArtifactsDep = Annotated[ArtifactService, Depends(get_artifacts)]


def _announced_size(request: Request) -> int | None:
    value = request.headers.get("content-length")
    if value is None:
        return None
    try:
        size = int(value)
    except ValueError:
        raise InvalidInputError(f"Content-Length {value!r} is not a number of bytes") from None
    return size


@router.post(
    "/{operation_id}/artifacts",
    status_code=201,
    response_model=Envelope[ArtifactInfo],
    openapi_extra=_UPLOAD_BODY,
    responses=errors(409, s409="a directory of artifacts has that path (or a file is where the path has a directory)"),
)
async def upload_artifact(
    operation_id: OperationId, artifact_path: ArtifactPathQuery, request: Request, artifacts: ArtifactsDep
) -> Response:
    """Store the request body as the operation's artifact ``path``, replacing any file stored there; answers its
    size and SHA-256. An operation that has ended still accepts artifacts. 413 past TRAINOPS_MAX_ARTIFACT_BYTES,
    404 for an unknown operation, 422 for a path that is not a plain relative name.

    Example: ``curl -X POST --data-binary @best.pt '.../operations/ID/artifacts?path=checkpoints/best.pt'``
    """
    if request.headers.get("content-type", "").lower().startswith("multipart/"):
        raise InvalidInputError(
            "send the file's bytes as the request body (Content-Type: application/octet-stream), not as a form: "
            "curl --data-binary @FILE, or httpx content=open(FILE, 'rb')"
        )
    size = _announced_size(request)
    upload = await call_blocking(partial(artifacts.begin, operation_id, artifact_path, size=size))
    # The body is read here, on the event loop, and written by worker threads a megabyte at a time: a slow client
    # holds no thread while the server waits for its next bytes.
    received = 0
    pending = bytearray()
    try:
        async for chunk in request.stream():
            received += len(chunk)
            if received > artifacts.max_bytes:
                raise too_large(artifact_path, artifacts.max_bytes)
            pending += chunk
            if len(pending) >= CHUNK_BYTES:
                await call_blocking(partial(upload.write, bytes(pending)))
                pending.clear()
        if pending:
            await call_blocking(partial(upload.write, bytes(pending)))
        info = await call_blocking(upload.commit)
    except ClientDisconnect:
        upload.abort()
        # nothing was stored; the answer reaches nobody, but the log stays free of a traceback
        return error_response(400, "client_disconnected", "the client left before the upload finished")
    except BaseException:
        upload.abort()
        raise
    return envelope(info, status_code=201)


@router.get("/{operation_id}/artifacts", response_model=Envelope[list[ArtifactInfo]])
async def list_artifacts(operation_id: OperationId, artifacts: ArtifactsDep) -> Response:
    """The operation's artifacts, by path: each with its size, SHA-256 and when it was stored."""
    return envelope(await call_blocking(partial(artifacts.list, operation_id)))


@router.get(
    "/{operation_id}/artifacts/{artifact_path:path}",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "the file's bytes"},
        304: {"description": "the file is unchanged since the ETag (its SHA-256) sent in If-None-Match"},
    },
)
async def download_artifact(
    operation_id: OperationId,
    artifact_path: Annotated[
        str, Path(description="the artifact's path, e.g. checkpoints/best.pt", json_schema_extra=ARTIFACT_PATH_SCHEMA)
    ],
    artifacts: ArtifactsDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Response:
    """The artifact's bytes, streamed, with its SHA-256 as the ETag (``If-None-Match`` with it answers 304)."""
    info, handle = await call_blocking(partial(artifacts.open, operation_id, artifact_path))
    etag = f'"{info.sha256}"'
    if if_none_match_matches(if_none_match, etag):
        handle.close()
        return Response(status_code=304, headers={"ETag": etag})
    name = artifact_path.rsplit("/", 1)[-1]  # plain characters only (checked): no quoting needed
    headers = {
        "Content-Length": str(info.size),
        # a download, never a page rendered in the API's origin (an uploaded .html must not run there)
        "Content-Disposition": f'attachment; filename="{name}"',
        "X-Content-Type-Options": "nosniff",
        "ETag": etag,
    }
    media_type = _MEDIA_TYPES.guess_type(name)[0] or "application/octet-stream"
    # closed by the generator when the body is sent, and by the task when the client left before the end
    return StreamingResponse(
        _file_chunks(handle), media_type=media_type, headers=headers, background=BackgroundTask(handle.close)
    )


def _file_chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(CHUNK_BYTES):
            yield chunk
