"""Who may drive the MCP server over HTTP (``trainops mcp --transport http``).

Its tools start, cancel and delete trainings, as the trainops server's token holder when it calls one, so the
endpoint is guarded in three ways:

- it binds loopback addresses only (:func:`check_loopback`): it speaks plain HTTP, where a token would cross the
  network in the clear, and without a token anyone who reaches it could call every tool;
- a web page must not drive it (:class:`HttpGuard`): neither one that rebinds its own name to ``127.0.0.1`` (DNS
  rebinding: its ``Host`` is the page's name, 421) nor one that posts to ``127.0.0.1`` from another site (its
  ``Origin`` is that site, 403). Clients outside a browser (an agent's host, the SDK's client) send no ``Origin``;
- when trainops has an API token (``TRAINOPS_API_TOKEN`` or ``--token``), every request sends it as
  ``Authorization: Bearer <token>`` (401 otherwise): without it any user or process on this machine could call the
  tools. Without one the endpoint stays open to this machine, and the start message says so.

The MCP SDK's own Host/Origin check is off in favour of these: it knows exact names only, where trainops follows the
REST server's rule (``TRAINOPS_ALLOWED_HOSTS``, domain wildcards, any port), and it has no token.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from urllib.parse import urlsplit

from mcp.types import INVALID_REQUEST, ErrorData, JSONRPCError
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from trainops.core.bearer import bearer_token_matches
from trainops.errors import ConfigurationError

HostRule = Callable[[str], bool]
"""Whether to serve a request that sent this ``Host`` header value (``localhost:8765``, ``[::1]``)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name, or an address with IPv6 unbracketed) is this machine's loopback.

    >>> is_loopback("localhost"), is_loopback("::1"), is_loopback("127.0.0.1"), is_loopback("localhost.evil.example")
    (True, True, True, False)
    """
    host = host.strip().lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_loopback(host: str) -> None:
    """Refuse to serve MCP over HTTP beyond this machine.

    Raises:
        ConfigurationError: ``host`` is not a loopback address.
    """
    if not is_loopback(host):
        raise ConfigurationError(
            f"--host {host!r}: the MCP HTTP endpoint speaks plain HTTP (a token would cross the network in the "
            "clear), so it only binds loopback addresses (127.0.0.1, ::1, localhost); reach it from elsewhere "
            "through an SSH tunnel or an authenticating proxy"
        )


def loopback_host(sent: str) -> bool:
    """The ``Host`` rule when no other is given: the loopback names only, any port.

    >>> loopback_host("localhost:8765"), loopback_host("[::1]:8765"), loopback_host("evil.example")
    (True, True, False)
    """
    try:
        name = urlsplit(f"//{sent}").hostname
    except ValueError:  # an unclosed IPv6 bracket
        return False
    return name is not None and is_loopback(name)


def origin_allowed(origin: str, host_allowed: HostRule) -> bool:
    """Whether a request that sent ``Origin: origin`` comes from a page the server may serve: an ``http(s)`` origin
    whose host ``host_allowed`` lets in, as it lets in a ``Host`` header (the loopback names, any port, and
    ``TRAINOPS_ALLOWED_HOSTS``). ``null`` (a sandboxed page, a file) and anything malformed are refused.

    >>> [origin_allowed(o, loopback_host) for o in ("http://127.0.0.1:8765", "https://[::1]", "https://evil.example")]
    [True, True, False]
    """
    try:
        parts = urlsplit(origin.strip())
        _ = parts.port  # raises for a port that is not a number
    except ValueError:
        return False
    well_formed = (
        parts.scheme in ("http", "https")
        and parts.hostname is not None
        and "@" not in parts.netloc
        and parts.path in ("", "/")
        and not parts.query
        and not parts.fragment
    )
    return well_formed and host_allowed(parts.netloc)


class HttpGuard:
    """Refuses an HTTP request before ``app`` reads any of it: a ``Host`` that ``host_allowed`` refuses (421), an
    ``Origin`` from another site (403), and, when ``token`` is set, a request that does not send it (401, with
    ``WWW-Authenticate: Bearer``). Each refusal is a JSON-RPC error whose message says what to change: MCP clients
    show it as the reason they could not connect. Lifespan events pass.

    Args:
        app: The MCP SDK's streamable HTTP app.
        host_allowed: Which ``Host`` header values to serve; the same rule admits an ``Origin``'s host.
        token: The bearer token every request must send, or ``None`` for none.
    """

    def __init__(self, app: ASGIApp, *, host_allowed: HostRule = loopback_host, token: str | None = None) -> None:
        self.app = app
        self.host_allowed = host_allowed
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refusal = self.refusal(scope) if scope["type"] == "http" else None
        if refusal is not None:
            await refusal(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def refusal(self, scope: Scope) -> Response | None:
        """The answer to a request that may not pass, or ``None`` when it may."""
        headers: dict[bytes, bytes] = dict(scope.get("headers", []))
        host = headers.get(b"host", b"").decode("latin-1")
        if not self.host_allowed(host):
            return _refused(
                421,
                f"this MCP server does not answer for the host {host!r}. Reach it by the address it serves on "
                "(127.0.0.1, localhost), or add the name a proxy or tunnel forwards to TRAINOPS_ALLOWED_HOSTS "
                "(comma-separated) and restart it",
            )
        origin = headers.get(b"origin")
        if origin is not None and not origin_allowed(origin.decode("latin-1"), self.host_allowed):
            return _refused(
                403,
                f"this MCP server does not answer requests from the web page at {origin.decode('latin-1')!r}: a "
                "page from another site must not drive its tools. Clients outside a browser send no Origin; a page "
                "served from this machine (http://127.0.0.1, http://localhost) is let in, and a name a proxy or "
                "tunnel forwards can be added to TRAINOPS_ALLOWED_HOSTS (comma-separated) before restarting it",
            )
        authorization = headers.get(b"authorization", b"").decode("latin-1")
        if self.token is not None and not bearer_token_matches(authorization, self.token):
            return _refused(
                401,
                "missing or wrong bearer token: this MCP server was started with a token (TRAINOPS_API_TOKEN, or "
                "--token); send it with every request as the header 'Authorization: Bearer <TRAINOPS_API_TOKEN>' "
                '(in an MCP client\'s settings, the server\'s "headers": {"Authorization": "Bearer <token>"})',
                headers={"WWW-Authenticate": "Bearer"},
            )
        return None


def _refused(status: int, message: str, headers: dict[str, str] | None = None) -> Response:
    # id null: the request was not read, as the SDK answers a request it refuses before parsing it
    error = JSONRPCError(jsonrpc="2.0", id=None, error=ErrorData(code=INVALID_REQUEST, message=message))
    body = error.model_dump_json(by_alias=True, exclude_unset=True)
    return Response(body, status_code=status, headers=headers, media_type="application/json")
