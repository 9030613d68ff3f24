"""``/models``: save a finished training's model under a name, list, load, predict with and delete models; and
receive the model version a worker trained on another machine (``POST /models/versions``).

The upload is the version's files as one tar archive, the raw request body (``application/x-tar``). It is
streamed to a file as it arrives, so the route is exempt from the JSON body limit (``TRAINOPS_MAX_REQUEST_BYTES``)
and enforces its own, ``TRAINOPS_MAX_ARTIFACT_BYTES``, while it reads.
"""

from __future__ import annotations

import re
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import ClientDisconnect

from trainops.api.deps import call_blocking
from trainops.api.errors import MethodNotAllowed
from trainops.api.openapi import DATABASE_ERRORS, errors
from trainops.api.responses import error_response, flat_envelope
from trainops.api.train_deps import RegistryDep
from trainops.errors import InvalidInputError, PayloadTooLargeError
from trainops.schemas.models import (
    MODEL_NAME_SCHEMA,
    LoadedModel,
    ModelList,
    ModelSummary,
    PredictionAnswer,
    PredictRequest,
    RangePredictionAnswer,
    SavedModel,
    SaveModelRequest,
    StoredModelVersion,
)

router = APIRouter(prefix="/models", tags=["models"], responses=DATABASE_ERRORS)

UPLOAD_ROUTE = ("POST", re.compile(r"/models/versions$"))
"""The version upload, for :class:`~trainops.api.limits.BodySizeLimitMiddleware`'s exemption: it limits its body
itself."""

_CHUNK_BYTES = 1024 * 1024
_ARCHIVE_BODY = {
    "requestBody": {
        "required": True,
        "description": "a tar archive (uncompressed) of the version's files at its top level: model.safetensors, "
        "config.json, features.json, metrics.json, metadata.json",
        "content": {"application/x-tar": {"schema": {"type": "string", "format": "binary"}}},
    }
}

_DAMAGED = "a file of the model's version is missing or damaged (the message names it)"


class _WholeNameConvertor(Convertor[str]):
    """``{model_name:model_name}``: the rest of the path as sent, so that every name reaches the registry's check
    and a bad one is refused with the naming rule, instead of matching no route or another name.

    Like ``:path`` it spans slashes (``..%2F..%2Fetc`` is refused by the rule, not a 404). Unlike ``:path`` (``.*``
    before the route's closing ``$``, which also matches before a final newline) it keeps newlines: there
    ``DELETE /models/x%0A`` deleted ``x`` and ``POST /models/x%0A/load`` answered "no such endpoint". The
    lookahead leaves no newline after the name, so one always ends up in the name, which the rule refuses.
    """

    regex = r"(?s:.*)(?=[^\n]*\Z)"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("model_name", _WholeNameConvertor())  # Starlette's registry is process-wide: a specific key

# The naming rule is documented as a pattern and checked by the registry, whose 422 explains it.
ModelName = Annotated[str, Path(description="the model's name", json_schema_extra=MODEL_NAME_SCHEMA)]


@router.post(
    "/save",
    response_model=SavedModel,
    responses=errors(
        404,
        409,
        s404="no such training operation",
        s409="the name is taken (send overwrite), the training has not finished, failed or left no model, or its "
        "model version is damaged (the message says which)",
    ),
)
async def save_model(body: SaveModelRequest, registry: RegistryDep) -> Response:
    """Name the model a finished training wrote. Names match ``^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$``; a taken name
    is a 409 unless ``"overwrite": true``; an unfinished or failed task is a 409 that says why."""
    return flat_envelope(await call_blocking(lambda: registry.save(body)))


@router.post(
    "/versions",
    status_code=201,
    response_model=StoredModelVersion,
    openapi_extra=_ARCHIVE_BODY,
    responses={
        200: {"model": StoredModelVersion, "description": "this training's version was already stored"},
        404: {"description": "no such training (task_id)"},
        409: {"description": "the training has not started, or it failed"},
        413: {"description": "the archive (or one of its files) is too large"},
        422: {"description": "not a tar archive of a model version of this training (paths, links, missing files)"},
    },
)
async def upload_model_version(
    task_id: Annotated[str, Query(max_length=64, description="the training operation that trained the version")],
    request: Request,
    registry: RegistryDep,
) -> Response:
    """Store the model version a worker trained away from the server (the files
    :func:`~trainops.pipeline.artifacts.write_model_version` writes, as a tar archive) as the next version of its
    series, checked as every version is read; answers where it is kept (``model_version``, which the training's
    result then names) so ``models save``, ``load`` and ``predict`` work as for a local training. A training
    stores one version: uploading again answers the stored one (200, ``created: false``).

    Example: ``tar -cf v.tar -C VERSION_DIR model.safetensors config.json features.json metrics.json metadata.json
    && curl --data-binary @v.tar -H 'Content-Type: application/x-tar' '.../models/versions?task_id=ID'``
    """
    if request.headers.get("content-type", "").lower().startswith("multipart/"):
        raise InvalidInputError(
            "send the tar archive's bytes as the request body (Content-Type: application/x-tar), not as a form: "
            "curl --data-binary @version.tar"
        )
    limit = request.app.state.settings.max_artifact_bytes
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise _too_large(limit, int(announced))
    await call_blocking(partial(registry.check_upload, task_id))
    archive = await call_blocking(registry.incoming_file)
    try:
        received = 0
        with archive.open("wb") as out:
            pending = bytearray()
            # read on the event loop, written by worker threads a megabyte at a time: a slow client holds no thread
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise _too_large(limit)
                pending += chunk
                if len(pending) >= _CHUNK_BYTES:
                    await call_blocking(partial(out.write, bytes(pending)))
                    pending.clear()
            await call_blocking(partial(out.write, bytes(pending)))
        stored = await call_blocking(partial(registry.receive_version, task_id, archive))
    except ClientDisconnect:
        return error_response(400, "client_disconnected", "the client left before the upload finished")
    finally:
        archive.unlink(missing_ok=True)
    return flat_envelope(stored, status_code=201 if stored.created else 200)


def _too_large(limit: int, size: int | None = None) -> PayloadTooLargeError:
    told = f" ({size:,} bytes)" if size is not None else ""
    return PayloadTooLargeError(
        f"the model version archive is too large{told}: the limit is {limit:,} bytes (TRAINOPS_MAX_ARTIFACT_BYTES "
        "on the server); raise the limit",
        details={"limit_bytes": limit, "size_bytes": size},
    )


@router.get("", response_model=ModelList)
async def list_models(
    registry: RegistryDep,
    symbol: Annotated[str | None, Query(max_length=256)] = None,
    timeframe: Annotated[str | None, Query(max_length=64)] = None,
    strategy: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int | None, Query(ge=1, le=1000, description="at most this many; all when left out")] = None,
    cursor: Annotated[
        str | None, Query(max_length=2048, description="the next_cursor of the previous page (same filters, limit)")
    ] = None,
) -> Response:
    """Named models, newest first: id, name, strategy, symbol, timeframe, created_at, training and test accuracy,
    description. With ``limit``, a page of that many and ``next_cursor``: pass it as ``cursor`` for the next page
    (null on the last), which never skips nor repeats a model while others are saved."""
    page = partial(
        registry.list_page, symbol=symbol, timeframe=timeframe, strategy=strategy, limit=limit, cursor=cursor
    )
    return flat_envelope(await call_blocking(page))


@router.post(
    "/predict",
    response_model=PredictionAnswer | RangePredictionAnswer,
    responses=errors(404, 409, s404="no such model", s409=_DAMAGED),
)
async def predict(body: PredictRequest, registry: RegistryDep) -> Response:
    """A signal (buy, hold, sell) with its confidence, probabilities, fuzzy memberships and the indicator values
    behind it, for the last bar at or before ``test_date``, computed from bars up to it only; or, with
    ``start_date`` and ``end_date``, the signal series of the range. A date before the indicators' warm-up or
    outside the data is a 422 naming the valid range."""
    return flat_envelope(await call_blocking(lambda: registry.predict(body)))


def _refuse_load_path(model_name: str) -> None:
    """``GET`` or ``DELETE /models/x/load`` reaches the route of ``/models/{name}`` (which spans slashes so that a name
    holding an encoded slash is refused by the name rule): it is the load route's path, which answers POST only."""
    if model_name.endswith("/load"):
        raise MethodNotAllowed(allow=("POST",))


@router.get("/{model_name:model_name}", response_model=ModelSummary)
async def get_model(model_name: ModelName, registry: RegistryDep) -> Response:
    """One named model."""
    _refuse_load_path(model_name)
    return flat_envelope(await call_blocking(lambda: registry.get(model_name)))


@router.post("/{model_name:model_name}/load", response_model=LoadedModel, responses=errors(409, s409=_DAMAGED))
async def load_model(model_name: ModelName, registry: RegistryDep) -> Response:
    """Load the model into memory (every file checked; a damaged one is a 409 naming it) and describe it."""
    return flat_envelope(await call_blocking(lambda: registry.load(model_name)))


@router.delete("/{model_name:model_name}", response_model=ModelSummary)
async def delete_model(model_name: ModelName, registry: RegistryDep) -> Response:
    """Forget the model; its files are removed unless another name points at the same version."""
    _refuse_load_path(model_name)
    return flat_envelope(await call_blocking(lambda: registry.delete(model_name)))
