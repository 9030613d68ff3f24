"""The response envelope: ``{"success": true, "data": ...}`` and ``{"success": false, "error": {...}}``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from fastapi import Response
from pydantic import BaseModel, TypeAdapter

from trainops.core.operation import WriteAck
from trainops.errors import AuthenticationError, TrainOpsError, http_status_for

T = TypeVar("T")


class Envelope(BaseModel, Generic[T]):
    """Every successful answer. Writes a trainer makes also carry ``cancel_requested``/``cancel_reason``."""

    success: bool = True
    data: T


class ErrorBody(BaseModel):
    code: str
    message: str
    details: dict[str, Any] = {}


class ErrorEnvelope(BaseModel):
    success: bool = False
    error: ErrorBody


class WriteEnvelope(Envelope[T], Generic[T]):
    cancel_requested: bool = False
    cancel_reason: str | None = None


_ANY = TypeAdapter(Any)


def _dump(data: Any) -> bytes:
    if isinstance(data, BaseModel):
        return data.model_dump_json().encode()
    return _ANY.dump_json(data)


def envelope(
    data: Any,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
    cancel: WriteAck | None = None,
) -> Response:
    """Serialise ``data`` once, straight to bytes (the hot read paths skip FastAPI's re-validation)."""
    body = b'{"success":true,"data":' + _dump(data)
    if cancel is not None:
        body += b',"cancel_requested":' + (b"true" if cancel.cancel_requested else b"false")
        body += b',"cancel_reason":' + _ANY.dump_json(cancel.cancel_reason)
    return Response(body + b"}", status_code=status_code, headers=headers, media_type="application/json")


def error_response(status_code: int, code: str, message: str, details: dict[str, Any] | None = None) -> Response:
    body = ErrorEnvelope(error=ErrorBody(code=code, message=message, details=details or {}))
    return Response(body.model_dump_json(), status_code=status_code, media_type="application/json")


def error_answer(error: TrainOpsError, message: str | None = None, details: dict[str, Any] | None = None) -> Response:
    """The answer to ``error``: its status, the envelope (with ``message``/``details`` instead of its own when
    given) and, for a missing token, ``WWW-Authenticate: Bearer``."""
    response = error_response(
        http_status_for(error),
        error.code,
        error.message if message is None else message,
        error.details if details is None else details,
    )
    if error.code == AuthenticationError.code:
        response.headers["WWW-Authenticate"] = "Bearer"
    return response


def flat_envelope(data: BaseModel, *, status_code: int = 200) -> Response:
    """``{"success": true, <the fields of data>, "data": {...}}``.

    The training and model endpoints promise their fields at the top level (``task_id``, ``status``, ...);
    ``data`` carries the same object, so clients that read every answer from ``data`` work unchanged.
    """
    fields = data.model_dump(mode="json")
    fields.pop("success", None)
    payload = {"success": True, **fields, "data": fields}
    return Response(_ANY.dump_json(payload), status_code=status_code, media_type="application/json")
