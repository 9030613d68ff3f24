"""``trainops mcp``: serve trainops' tools to AI agents over the Model Context Protocol."""

from __future__ import annotations

import functools
from typing import Annotated

import typer

from trainops.cli.common import UrlOption, err_console
from trainops.mcp.transport import DEFAULT_PORT, Transport

McpTokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar="TRAINOPS_API_TOKEN",
        help="Bearer token: the one the trainops server at --url wants and, with --transport http, the one MCP "
        "clients must send ('Authorization: Bearer <token>'). Prefer TRAINOPS_API_TOKEN in the environment: a token "
        "on the command line shows in ps to every user of this machine.",
        show_default=False,
    ),
]
"""``--token`` as the other commands take it, with what it also guards here."""


def mcp(
    ctx: typer.Context,
    transport: Annotated[
        Transport,
        typer.Option(
            help="stdio when an agent launches this command itself (the default); http to serve streamable HTTP "
            "at http://HOST:PORT/mcp for agents that connect to a URL."
        ),
    ] = "stdio",
    host: Annotated[
        str,
        typer.Option(
            help="Address to bind with --transport http: loopback only (plain HTTP; reach it from elsewhere through "
            "an SSH tunnel)."
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port to listen on with --transport http.")
    ] = DEFAULT_PORT,
    read_only: Annotated[
        bool,
        typer.Option(
            "--read-only",
            envvar="TRAINOPS_MCP_READ_ONLY",
            help="Leave out the tools that start, stop, save, label or delete (start_training, cancel_operation, "
            "save_model, label_operation, delete_operation): "
            "for agents that should watch and advise only.",
        ),
    ] = False,
    url: UrlOption = None,
    token: McpTokenOption = None,
) -> None:
    """Serve the MCP tools (start and watch trainings, read metrics and diagnoses, cancel, compare, save
    models, predict) on the local database, or on a trainops server with --url.

    Example, in an MCP client's configuration: {"command": "trainops", "args": ["mcp"]}

    Over HTTP, any user or process on this machine can call the tools unless a token is set.
    Set TRAINOPS_API_TOKEN (not --token: it shows in ps) and have clients send 'Authorization: Bearer <token>'.

    Example: TRAINOPS_API_TOKEN=$(openssl rand -hex 32) trainops mcp --transport http --port 8765
    """
    from trainops.api.hosts import allowed_hosts, host_allowed, host_name  # FastAPI and the MCP SDK: imported
    from trainops.api.server import check_port  # when the command runs
    from trainops.mcp.http_security import check_loopback
    from trainops.mcp.server import serve
    from trainops.settings import get_settings

    if transport == "http":
        check_loopback(host)  # a refused address first: whether its port is free is beside the point
        check_port(host, port)  # as `trainops serve` checks it, before anything starts
        source = ctx.get_parameter_source("token")  # by name: Typer bundles its own copy of Click's enum
        if token and source is not None and source.name == "COMMANDLINE":
            err_console.print(
                "WARNING: --token on the command line shows the token to every user of this machine (ps, "
                "/proc/PID/cmdline); set TRAINOPS_API_TOKEN in the environment instead",
                highlight=False,
                soft_wrap=True,
            )

    # the REST server's Host rule (a guard against DNS rebinding): the bound address's names, and
    # TRAINOPS_ALLOWED_HOSTS; an Origin passes when its host does
    allowed = allowed_hosts(host, get_settings().allowed_hosts, None)

    def host_check(sent: str) -> bool:
        return allowed is None or host_allowed(host_name(sent), allowed)

    serve(
        transport,
        host=host,
        port=port,
        url=url,
        token=token,
        read_only=read_only,
        announce=functools.partial(err_console.print, highlight=False, soft_wrap=True),
        host_allowed=host_check,
    )
