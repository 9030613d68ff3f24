"""The ``Host`` check: a server answers only for the names it is reached by (a guard against DNS rebinding).

A page on any web site can make a browser resolve its own name to ``127.0.0.1`` (DNS rebinding) and then read
and write a trainops server on that machine as if it were the site's own: the browser sees one origin. A server
bound to loopback without a token would be open to it. Such requests still carry the attacker's name in
``Host``, so refusing every name but the bound address's closes the hole.

``trainops serve`` installs it: a loopback bind answers for ``localhost``, ``127.0.0.1`` and ``[::1]``; an
address bind for that address; a wildcard bind (``0.0.0.0``, ``::``) for any name, unless
``TRAINOPS_ALLOWED_HOSTS`` narrows it. ``TRAINOPS_ALLOWED_HOSTS`` (comma-separated names; ``*.example.com`` for a
domain's names; ``*`` for any) adds the names a proxy forwards, and the host of ``TRAINOPS_PUBLIC_URL`` (what
remote workers dial) is always allowed. Ports are not compared: a rebinding attack changes the name, not the port.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from trainops.api.responses import error_response
from trainops.errors import HostNotAllowedError

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")
"""The names of this machine a loopback server answers for."""

_WILDCARD_BINDS = ("0.0.0.0", "::", "")


def host_name(value: str) -> str:
    """The name of a ``Host`` header (or of a setting's entry), lowercase and without its port.

    >>> host_name("LocalHost:8000"), host_name("[::1]:8000"), host_name("::1"), host_name("10.0.0.5")
    ('localhost', '[::1]', '[::1]', '10.0.0.5')
    """
    value = value.strip().lower()
    if value.startswith("["):
        return value.split("]", 1)[0] + "]"
    if value.count(":") > 1:  # a bare IPv6 address, as a bind address or a setting may be written
        return f"[{value}]"
    return value.split(":", 1)[0]


def allowed_hosts(bound_host: str | None, configured: Iterable[str], public_url: str | None) -> frozenset[str] | None:
    """The host names a server answers for, or ``None`` for any.

    Args:
        bound_host: The address the server listens on (``trainops serve --host``), or ``None`` when unknown (an
            app built in-process, for tests or embedding), which allows any name unless ``configured`` says more.
        configured: ``TRAINOPS_ALLOWED_HOSTS``'s entries; ``*`` allows any.
        public_url: ``TRAINOPS_PUBLIC_URL``, the address remote workers dial: its host is always allowed.

    >>> sorted(allowed_hosts("127.0.0.1", [], None))
    ['127.0.0.1', '[::1]', 'localhost']
    >>> allowed_hosts("0.0.0.0", [], None) is None, sorted(allowed_hosts("10.0.0.5", ["ops.example.com"], None))
    (True, ['10.0.0.5', 'ops.example.com'])
    """
    names = {host_name(entry) for entry in configured if entry.strip()}
    if "*" in names:
        return None
    if bound_host is None or bound_host.strip() in _WILDCARD_BINDS:
        if not names:
            return None
        names.update(LOOPBACK_NAMES)  # a wildcard bind also listens on loopback; in-process: the caller's choice
    elif _is_loopback_name(bound_host):
        names.update(LOOPBACK_NAMES)
    else:
        names.add(host_name(bound_host))
    if public_url:
        names.add(host_name(urlsplit(public_url).netloc.rsplit("@", 1)[-1]))
    return frozenset(names)


def _is_loopback_name(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def host_allowed(name: str, allowed: frozenset[str]) -> bool:
    """Whether the host ``name`` (see :func:`host_name`) is one of ``allowed``, where ``*.example.com`` stands for
    every name under ``example.com``."""
    if name in allowed:
        return True
    return any(entry.startswith("*.") and name.endswith(entry[1:]) for entry in allowed)


class HostCheckMiddleware:
    """Answers 400 (the error envelope, naming ``TRAINOPS_ALLOWED_HOSTS``) to a request whose ``Host`` is not one
    of ``allowed``."""

    def __init__(self, app: ASGIApp, allowed: frozenset[str]) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # the API has no websockets; lifespan passes
            await self.app(scope, receive, send)
            return
        header = next((value for name, value in scope.get("headers", []) if name == b"host"), b"")
        sent = header.decode("latin-1")
        if host_allowed(host_name(sent), self.allowed):
            await self.app(scope, receive, send)
            return
        # the names allowed are not listed: they tell a page that probes the server nothing it should learn
        error = HostNotAllowedError(
            f"this server does not answer for the host {sent!r}. Reach it by the address it serves on, or, behind a "
            "proxy or under another name, add the name to TRAINOPS_ALLOWED_HOSTS (comma-separated, e.g. "
            "TRAINOPS_ALLOWED_HOSTS=trainops.example.com; * allows any) and restart the server",
            details={"host": sent},
        )
        response = error_response(400, error.code, error.message, error.details)
        await response(scope, receive, send)
