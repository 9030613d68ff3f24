"""``trainops mcp``: serve trainops' tools to AI agents over the Model Context Protocol."""

from __future__ import annotations

from typing import Annotated

import typer

from trainops.cli.common import TokenOption, UrlOption, err_console
from trainops.mcp.transport import DEFAULT_PORT, Transport


def mcp(
    transport: Annotated[
        Transport,
        typer.Option(
            help="stdio when an agent launches this command itself (the default); http to serve streamable HTTP "
            "at http://HOST:PORT/mcp for agents that connect to a URL."
        ),
    ] = "stdio",
    host: Annotated[
        str, typer.Option(help="Address to bind with --transport http: loopback only (the endpoint has no auth).")
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
    token: TokenOption = None,
) -> None:
    """Serve the MCP tools (start and watch trainings, read metrics and diagnoses, cancel, compare, save
    models, predict) on the local database, or on a trainops server with --url.

    Example, in an MCP client's configuration: {"command": "trainops", "args": ["mcp"]}

    Example: trainops mcp --transport http --port 8765
    """
    from trainops.api.hosts import allowed_hosts, host_allowed, host_name  # FastAPI and the MCP SDK: imported
    from trainops.api.server import check_port  # when the command runs
    from trainops.mcp.server import check_loopback, serve
    from trainops.settings import get_settings

    if transport == "http":
        check_loopback(host)  # a refused address first: whether its port is free is beside the point
        check_port(host, port)  # as `trainops serve` checks it, before anything starts

    # the REST server's Host rule (a guard against DNS rebinding): the bound address's names, and
    # TRAINOPS_ALLOWED_HOSTS
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
        announce=err_console.print,
        host_allowed=host_check,
    )
