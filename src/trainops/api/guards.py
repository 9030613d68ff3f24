"""Refusals made before a request is read: a missing token, and a write sent by another site's page.

Both run as one ASGI layer outside the body-size limit, so a refused request costs the server its headers only:

- **The token.** FastAPI reads and parses a route's JSON body before the route's dependencies run, so with the
  token checked only by :func:`~trainops.api.deps.require_token`, anyone could make a token-protected server read
  and parse bodies of up to ``TRAINOPS_MAX_REQUEST_BYTES`` (a malformed one answered 422, not 401). Here an API
  path that needs the token is refused 401 before its body is read. The dependency stays: it declares the token
  in the OpenAPI document.
- **Writes from other sites.** A page on any web site can make the browser send a write to a server on this
  machine. With a JSON body the browser must ask first (a CORS preflight, which the API never grants, see
  :func:`~trainops.api.deps.require_json`), but a write without a body (``POST /operations/{id}/start``, a
  heartbeat, ``DELETE ?reason=``) goes without asking, and on a server without a token it would be obeyed. The
  browser says where such a request comes from (``Sec-Fetch-Site``, ``Origin``): a write from another site's page
  (or another port's, on this machine) is refused 403. The dashboard's own pages are the same origin; programs
  (the client, curl, the callbacks) send neither header.
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from trainops.api.responses import error_answer
from trainops.core.bearer import bearer_token_matches
from trainops.errors import AuthenticationError, CrossSiteRequestError, TrainOpsError

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_OWN_SITE = frozenset({"same-origin", "none"})
"""``Sec-Fetch-Site`` values of a request the browser sent for the server's own page (or a person's typing)."""


def token_refusal(authorization: str, expected: str) -> AuthenticationError | None:
    """Why an ``Authorization`` header does not carry ``expected`` as a bearer token; ``None`` when it does.

    >>> token_refusal("Bearer s3cret-token-0123456789", "s3cret-token-0123456789") is None
    True
    >>> token_refusal("Basic abc", "s3cret-token-0123456789").code
    'unauthorized'
    """
    if bearer_token_matches(authorization, expected):
        return None
    return AuthenticationError(
        "missing or wrong bearer token: send 'Authorization: Bearer <TRAINOPS_API_TOKEN>' "
        "(the client does this when TRAINOPS_API_TOKEN is set)"
    )


def cross_site_refusal(method: str, host: str, origin: str | None, fetch_site: str | None) -> TrainOpsError | None:
    """Why a request is a write another site's page sent; ``None`` when it is not one.

    ``Sec-Fetch-Site`` (every current browser) decides when present; otherwise an ``Origin`` that is not the
    server's own origin (the host and port the request was sent to) does.

    >>> print(cross_site_refusal("POST", "127.0.0.1:8000", "http://127.0.0.1:8000", "same-origin"))
    None
    >>> cross_site_refusal("POST", "127.0.0.1:8000", "http://localhost:3000", "same-site").code
    'cross_site_request'
    >>> cross_site_refusal("DELETE", "127.0.0.1:8000", "https://evil.example", None).code
    'cross_site_request'
    >>> print(cross_site_refusal("GET", "127.0.0.1:8000", "https://evil.example", "cross-site"))
    None
    """
    if method not in WRITE_METHODS:
        return None
    if fetch_site is not None:
        foreign = fetch_site.strip().lower() not in _OWN_SITE
    elif origin is not None:
        foreign = origin.strip().lower() == "null" or urlsplit(origin.strip()).netloc.lower() != host.strip().lower()
    else:
        return None  # not a browser: a program, which no page can drive
    if not foreign:
        return None
    sender = f"the page at {origin}" if origin else f"a page the browser calls {fetch_site}"
    return CrossSiteRequestError(
        f"{method} refused: {sender} sent it, not one of this server's pages. The API takes writes from its own "
        "pages and from programs (the client, the callbacks, curl); a page of another site cannot drive it",
        details={"origin": origin, "sec_fetch_site": fetch_site},
    )


class RequestGuardMiddleware:
    """Answers 401 (a path that needs the token, without it) and 403 (a write another site's page sent) before the
    request's body is read.

    Args:
        app: The application.
        token: ``TRAINOPS_API_TOKEN``; ``None`` when the server has none (then only writes are guarded).
        prefix: The API's paths (``/api/v1``): the token guards these.
        open_paths: The API paths that need no token (health, the OpenAPI document, the docs page).
    """

    def __init__(self, app: ASGIApp, token: str | None, prefix: str, open_paths: Collection[str]) -> None:
        self.app = app
        self.token = token
        self.prefix = prefix.rstrip("/") + "/"
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {name: value.decode("latin-1") for name, value in scope.get("headers", [])}
        path: str = scope.get("path", "")
        refusal = cross_site_refusal(
            scope.get("method", ""), headers.get(b"host", ""), headers.get(b"origin"), headers.get(b"sec-fetch-site")
        )
        if refusal is None and self.token is not None and self._needs_token(path):
            refusal = token_refusal(headers.get(b"authorization", ""), self.token)
        if refusal is None:
            await self.app(scope, receive, send)
            return
        await error_answer(refusal)(scope, receive, send)

    def _needs_token(self, path: str) -> bool:
        return path.startswith(self.prefix) and path.rstrip("/") not in self.open_paths
