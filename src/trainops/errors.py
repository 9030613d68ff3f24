"""The one exception hierarchy of trainops.

Every error carries a stable ``code``; :data:`HTTP_STATUS` maps codes to HTTP statuses in one place, so the API
answers with the right status and the HTTP client rebuilds the same exception from the error body. Local and
remote callers therefore fail alike.
"""

from __future__ import annotations

from typing import Any, ClassVar


def sentence(message: str) -> str:
    """``message`` ended with a full stop, unless it already ends as a sentence does (``.``, ``?`` or ``!``), for
    a message that more words follow: ``is TRAINOPS_URL right?`` stays as it is, never ``right?.``.

    >>> sentence("the database is unreachable")
    'the database is unreachable.'
    >>> sentence("is `trainops serve` running, and is TRAINOPS_URL right?")
    'is `trainops serve` running, and is TRAINOPS_URL right?'
    >>> sentence("Failed to connect to Ray at address: http://127.0.0.1:1.")
    'Failed to connect to Ray at address: http://127.0.0.1:1.'
    """
    message = message.rstrip()
    return message if message.endswith((".", "?", "!")) else f"{message}."


class TrainOpsError(Exception):
    """Base class of every error trainops raises on purpose.

    Args:
        message: What went wrong and how to fix it, written for the person who will read it.
        details: Machine-readable context (the bad value, the valid options, ...).
    """

    code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: dict[str, Any] = details or {}

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class InvalidInputError(TrainOpsError):
    """A value the caller sent is malformed or out of range."""

    code = "invalid_input"


class StrategyError(InvalidInputError):
    """A strategy file or training request is invalid; the message names the field path and the fix."""

    code = "invalid_strategy"


class DataError(InvalidInputError):
    """Market data is missing or unusable (no such file, unsorted or duplicate timestamps, NaNs, too few bars)."""

    code = "data_error"


class ArtifactError(TrainOpsError):
    """A stored model version is damaged or incomplete (a missing, truncated or tampered file)."""

    code = "invalid_artifact"


class NotFoundError(TrainOpsError):
    """The requested object (operation, model, ...) does not exist."""

    code = "not_found"


class ConflictError(TrainOpsError):
    """The request does not fit the object's current state (e.g. writing to a finished operation)."""

    code = "conflict"


class PayloadTooLargeError(TrainOpsError):
    """The request body exceeds the server's documented limit."""

    code = "payload_too_large"


class UnsupportedMediaTypeError(InvalidInputError):
    """The request body is not in a format the route reads (a JSON route sent ``text/plain``, say)."""

    code = "unsupported_media_type"


class HostNotAllowedError(TrainOpsError):
    """The request's ``Host`` header names no address the server was told to answer for (DNS rebinding guard)."""

    code = "host_not_allowed"


class AuthenticationError(TrainOpsError):
    """The request lacks a valid bearer token."""

    code = "unauthorized"


class CrossSiteRequestError(TrainOpsError):
    """A write sent by a page of another site (``Sec-Fetch-Site``, ``Origin``): the API takes writes from its own
    pages and from programs only."""

    code = "cross_site_request"


class ConfigurationError(TrainOpsError):
    """trainops is configured in a way that cannot work (bad URL, schema out of date, unsafe binding)."""

    code = "configuration_error"


class ServiceUnavailableError(TrainOpsError):
    """The server could not be reached or is not ready."""

    code = "service_unavailable"


class MissingExtraError(TrainOpsError):
    """A feature needs an optional part of trainops that is not installed (``pip install 'trainops[train]'``)."""

    code = "missing_extra"


class OperationCancelledError(TrainOpsError):
    """Raised inside a training loop when its operation was asked to stop."""

    code = "operation_cancelled"


class TrainingDivergedError(TrainOpsError):
    """A training diverged (its loss became NaN or infinite) before any epoch gave a model worth keeping."""

    code = "training_diverged"


HTTP_STATUS: dict[str, int] = {
    InvalidInputError.code: 422,
    StrategyError.code: 422,
    DataError.code: 422,
    NotFoundError.code: 404,
    ArtifactError.code: 409,
    ConflictError.code: 409,
    PayloadTooLargeError.code: 413,
    UnsupportedMediaTypeError.code: 415,
    HostNotAllowedError.code: 400,
    AuthenticationError.code: 401,
    CrossSiteRequestError.code: 403,
    ConfigurationError.code: 500,
    ServiceUnavailableError.code: 503,
    MissingExtraError.code: 501,
    OperationCancelledError.code: 409,
    TrainingDivergedError.code: 422,
    TrainOpsError.code: 500,
}

_BY_CODE: dict[str, type[TrainOpsError]] = {
    cls.code: cls
    for cls in (
        TrainOpsError,
        InvalidInputError,
        StrategyError,
        DataError,
        ArtifactError,
        NotFoundError,
        ConflictError,
        PayloadTooLargeError,
        UnsupportedMediaTypeError,
        HostNotAllowedError,
        AuthenticationError,
        CrossSiteRequestError,
        ConfigurationError,
        ServiceUnavailableError,
        MissingExtraError,
        OperationCancelledError,
        TrainingDivergedError,
    )
}


def http_status_for(error: TrainOpsError) -> int:
    """The HTTP status an error is served with."""
    return HTTP_STATUS.get(error.code, 500)


def error_from_dict(payload: dict[str, Any]) -> TrainOpsError:
    """Rebuild the exception a server reported in its ``{"code", "message", "details"}`` error body."""
    cls = _BY_CODE.get(str(payload.get("code")), TrainOpsError)
    details = payload.get("details")
    return cls(str(payload.get("message", "unknown error")), details=details if isinstance(details, dict) else {})
