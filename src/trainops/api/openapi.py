"""The OpenAPI document tells every status a route can answer, each with the error envelope's schema.

Two halves, so that no status is written out twice:

- :func:`errors` builds a route's ``responses=`` for the statuses that are its own (409 when a run already ended,
  404 for a model name...): ``@router.post(..., responses=errors(404, 409))``. Two sets of them are shared by
  whole routers: :data:`DATABASE_ERRORS` (503) on every router whose routes read or write the database, and
  :data:`TRAIN_EXTRA_ERRORS` (501) on the routes of the ``train`` extra, which a server installed without it
  answers with 501 (``api/routes/unavailable.py``).
- :func:`install_openapi` adds, when the document is built, the statuses that follow from what a route *is*
  rather than what it does: 400 (the Host check, every route), 401 (a route that checks the token), 403 (a write:
  refused when another site's page sent it, ``api/guards.py``), 404 (a path
  with a parameter: no such operation, no such endpoint), 413 and 415 (a route with a body), 422 (a route with
  parameters or a body; FastAPI's own 422 names its ``HTTPValidationError``, which the API never sends: the
  handler in ``api/errors.py`` answers the envelope).

:func:`forbid_nul` then says of every request body what ``api/deps.py::require_json`` enforces: no string or key
holds a NUL character (PostgreSQL stores none). Text fields get the pattern ``^[^\\u0000]*$``; free-form values
(metadata, a progress context, a result) are ``JsonValue``, JSON whose text has none.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from trainops.api.responses import ErrorEnvelope

ERROR_SCHEMA_REF = f"#/components/schemas/{ErrorEnvelope.__name__}"

DESCRIPTIONS = {
    400: "the Host header names none of the server's addresses (TRAINOPS_ALLOWED_HOSTS adds names), or a "
    "malformed request",
    401: "missing or wrong bearer token (the server was given TRAINOPS_API_TOKEN)",
    403: "a write sent by a page of another site: the API takes writes from its own pages and from programs",
    404: "no such resource",
    409: "the resource's state does not allow it (e.g. the operation already ended)",
    413: "the request body is larger than the server accepts",
    415: "the body is not sent as application/json",
    422: "invalid input: the message names each bad field and how to fix it",
    500: "the server failed; its log says why",
    501: "needs an optional extra the server does not have installed (the message names it)",
    503: "a service the route needs cannot be reached",
}

_WRITE_METHODS = frozenset({"post", "put", "patch", "delete"})


def errors(*statuses: int, **descriptions: str) -> dict[int | str, dict[str, Any]]:
    """``responses=`` entries for error ``statuses``, each with the error envelope and a description.

    Args:
        statuses: HTTP statuses the route answers with the error envelope.
        descriptions: a description for one status instead of the generic one, keyed ``s<status>``
            (``errors(409, s409="already ended")``).

    >>> sorted(errors(404, 409, s409="it already ended"))
    [404, 409]
    """
    return {
        status: {"description": descriptions.get(f"s{status}", DESCRIPTIONS[status]), "model": ErrorEnvelope}
        for status in statuses
    }


DATABASE_ERRORS = errors(
    503,
    s503="the database is busy (another writer held its lock too long), unreachable, or cannot be written now; "
    "nothing was changed: try again",
)
"""``responses=`` of a router whose every route reads or writes the database (``store/transactions.py`` turns a
database that does not answer into a 503 the client may retry)."""

TRAIN_EXTRA_ERRORS = errors(
    501,
    s501="the server is installed without the trainops[train] extra (the message says how to install it)",
)
"""``responses=`` of the routes of the ``train`` extra: a server installed without it answers them with 501."""


def _error_response(status: int) -> dict[str, Any]:
    return {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}},
    }


def _add(responses: dict[str, Any], status: int) -> None:
    responses.setdefault(str(status), _error_response(status))


def complete_errors(document: dict[str, Any], prefix: str) -> dict[str, Any]:
    """Add to every operation under ``prefix`` the error statuses that follow from its shape (see the module's
    docstring), and point every 422 at the error envelope. Returns ``document``, changed in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault(
        ErrorEnvelope.__name__, ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}")
    )
    for name, schema in (
        ErrorEnvelope.model_json_schema(ref_template="#/components/schemas/{model}").get("$defs", {}).items()
    ):
        schemas.setdefault(name, schema)
    schemas[ErrorEnvelope.__name__].pop("$defs", None)
    for path, item in document.get("paths", {}).items():
        if not path.startswith(prefix):
            continue
        for method, operation in item.items():
            if method not in {"get", "head", "post", "put", "patch", "delete", "options"}:
                continue
            responses = operation.setdefault("responses", {})
            parameters = operation.get("parameters", [])
            has_body = "requestBody" in operation
            for status, response in responses.items():
                # FastAPI's 422 names its HTTPValidationError, and a status declared with a description only has no
                # schema: every error the API sends is the envelope
                if status[0] in "45":
                    response["content"] = {"application/json": {"schema": {"$ref": ERROR_SCHEMA_REF}}}
            _add(responses, 400)
            if operation.get("security"):
                _add(responses, 401)
            if method in _WRITE_METHODS:
                _add(responses, 403)
            if any(parameter.get("in") == "path" for parameter in parameters):
                _add(responses, 404)
            if has_body:
                _add(responses, 413)
                content = operation["requestBody"].get("content", {})
                if "application/json" in content and method in _WRITE_METHODS:
                    _add(responses, 415)
            if parameters or has_body:
                _add(responses, 422)
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    return document


NO_NUL_PATTERN = "^[^\\u0000]*$"
JSON_VALUE = "JsonValue"
_JSON_VALUE_REF = f"#/components/schemas/{JSON_VALUE}"
_NESTED = ("properties", "patternProperties", "$defs")
_NESTED_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_NESTED_ONE = ("items", "additionalProperties", "propertyNames")
_KEYWORDS_OF_A_VALUE = {"title", "description", "default", "examples", "example", "deprecated"}


def forbid_nul(document: dict[str, Any]) -> dict[str, Any]:
    """State in every request body's schema that its text holds no NUL (see the module's docstring): a pattern on
    each free text field, ``JsonValue`` for each free-form value. Returns ``document``, changed in place."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    text = {"type": "string", "pattern": NO_NUL_PATTERN}
    schemas[JSON_VALUE] = {
        "description": "any JSON value whose text (strings and keys) holds no NUL character",
        "anyOf": [
            text,
            {"type": "number"},
            {"type": "boolean"},
            {"type": "null"},
            {"type": "array", "items": {"$ref": _JSON_VALUE_REF}},
            {"type": "object", "propertyNames": text, "additionalProperties": {"$ref": _JSON_VALUE_REF}},
        ],
    }
    seen: set[str] = {JSON_VALUE}
    pending: list[Any] = [
        operation["requestBody"]
        for item in document.get("paths", {}).values()
        for operation in item.values()
        if isinstance(operation, dict) and "requestBody" in operation
    ]
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        reference = node.get("$ref")
        if isinstance(reference, str) and reference.startswith("#/components/schemas/"):
            name = reference.rsplit("/", 1)[1]
            if name not in seen:
                seen.add(name)
                pending.append(schemas[name])
            continue
        if "content" in node:  # the request body itself
            pending.extend(media.get("schema") for media in node["content"].values())
            continue
        _forbid_nul_here(node)
        for key in _NESTED:
            pending.extend(node.get(key, {}).values())
        for key in (*_NESTED_LISTS, *_NESTED_ONE):
            pending.append(node.get(key))
    return document


def _forbid_nul_here(node: dict[str, Any]) -> None:
    """One schema node: plain text gets the pattern; a free-form value, or a free-form object's values, become
    ``JsonValue``."""
    if node.get("type") == "string" and not {"pattern", "enum", "const", "format"} & node.keys():
        node["pattern"] = NO_NUL_PATTERN
    extra = node.get("additionalProperties", None if "properties" in node else True)
    if node.get("type") == "object" and extra is not None and extra is not False:
        node.setdefault("propertyNames", {"pattern": NO_NUL_PATTERN})
        if extra is True:
            node["additionalProperties"] = {}
    for key in ("items", "additionalProperties"):
        if _is_any(node.get(key)):
            node[key] = {**node[key], "$ref": _JSON_VALUE_REF}
    for key in ("properties", "patternProperties"):
        for name, value in node.get(key, {}).items():
            if _is_any(value):
                node[key][name] = {**value, "$ref": _JSON_VALUE_REF}
    for key in _NESTED_LISTS:
        if key in node:
            node[key] = [{**item, "$ref": _JSON_VALUE_REF} if _is_any(item) else item for item in node[key]]


def _is_any(schema: Any) -> bool:
    """Whether ``schema`` allows any value: no type, no ``$ref``, nothing but annotations."""
    return isinstance(schema, dict) and not schema.keys() - _KEYWORDS_OF_A_VALUE


def install_openapi(app: FastAPI, prefix: str) -> None:
    """Build ``app``'s OpenAPI document (once, on first request) with :func:`complete_errors` applied."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = forbid_nul(complete_errors(document, prefix))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
