"""Running the API server (what ``trainops serve`` does), with the one safety rule about binding."""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
from collections.abc import Callable

import uvicorn

from trainops.api.app import create_app, start_service
from trainops.errors import ConfigurationError
from trainops.executors.base import open_executor
from trainops.settings import Settings
from trainops.version import trainops_version

logger = logging.getLogger("trainops.api")


GRACEFUL_SHUTDOWN_SECONDS = 5
"""How long a stopping server (SIGTERM, Ctrl-C) waits for open requests. An events stream (``trainops ops watch``,
a dashboard tab) stays open until its run ends: without a limit the server outlived its stop for as long as anyone
watched, its port closed but its executor still starting queued trainings."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(info[4][0]).is_loopback for info in socket.getaddrinfo(host, None))
        except (OSError, ValueError):
            return False


def check_bind(host: str, settings: Settings, *, insecure: bool) -> None:
    """Refuse to expose an unauthenticated API beyond this machine.

    Raises:
        ConfigurationError: ``host`` is not loopback, no ``TRAINOPS_API_TOKEN`` is set, and ``insecure`` is off.
    """
    if is_loopback(host) or settings.api_token or insecure:
        return
    raise ConfigurationError(
        f"refusing to serve on {host} without authentication: anyone who can reach it could start or cancel "
        "training. Set TRAINOPS_API_TOKEN (e.g. `export TRAINOPS_API_TOKEN=$(openssl rand -hex 32)`), bind "
        "127.0.0.1, or pass --insecure if the network is trusted."
    )


def check_port(host: str, port: int) -> None:
    """Refuse a port another process listens on, before anything starts: uvicorn would print its own error and
    exit 3 after the banner, with no hint.

    Raises:
        ConfigurationError: ``host``:``port`` is in use, or cannot be bound (an address not on this machine).
    """
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds: a closing port is free
            probe.bind(address)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ConfigurationError(
                f"port {port} on {host} is in use (another trainops serve?): stop what listens there, or choose "
                "another port with --port",
                details={"host": host, "port": port},
            ) from None
        raise ConfigurationError(
            f"cannot listen on {host}:{port}: {error.strerror or error}; bind an address of this machine "
            "(--host 127.0.0.1, or 0.0.0.0 for all)",
            details={"host": host, "port": port},
        ) from None


def insecure_warning(host: str, settings: Settings, *, insecure: bool) -> str | None:
    """What ``--insecure`` exposes, when it is what lets the server start: a non-loopback bind without a token."""
    if not insecure or is_loopback(host) or settings.api_token:
        return None
    return (
        f"WARNING: --insecure: serving on {host} without authentication. Anyone who can reach this port can read "
        "every run (metrics, parameters, artifacts, models), start trainings on this machine and cancel "
        "them. Use it only on a network you trust; set TRAINOPS_API_TOKEN to require a token instead."
    )


def serve(
    settings: Settings,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    insecure: bool = False,
    announce: Callable[[str], None] | None = None,
) -> None:
    """Serve the API until interrupted; ``announce`` receives a one-line banner once the database is open."""
    check_bind(host, settings, insecure=insecure)
    check_port(host, port)
    warning = insecure_warning(host, settings, insecure=insecure)
    if warning:
        (announce or logger.warning)(warning)
    service = start_service(settings)  # a bad database or schema fails here, with its message, not in uvicorn
    executor = open_executor(service, settings)  # so does a missing ray extra, or a Ray cluster out of reach
    if announce:
        database = service.store.engine.url.render_as_string(hide_password=True)
        where = f"Ray jobs on {settings.ray_address}" if settings.executor == "ray" else "local worker processes"
        announce(
            f"trainops {trainops_version()} on {database}, training in {where}: dashboard at http://{host}:{port}/, "
            f"API at http://{host}:{port}/api/v1 (docs: /api/v1/docs)"
        )
    app = create_app(settings, service=service, executor=executor, bound_host=host)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="info",
        access_log=False,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
