"""The ``trainops`` command. Commands are thin adapters: logic lives in the client and the services."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup

from trainops.cli import data, db, models, ops, strategies
from trainops.cli.common import err_console, error_line
from trainops.cli.mcp import mcp
from trainops.cli.sync import sync
from trainops.cli.train import train
from trainops.errors import TrainOpsError
from trainops.settings import get_settings
from trainops.version import trainops_version


class _FriendlyErrors(TyperGroup):
    """Every trainops error becomes a one-line message and exit code 1, never a traceback."""

    def invoke(self, ctx: Any) -> Any:  # typer's vendored click.Context
        try:
            return super().invoke(ctx)
        except TrainOpsError as error:
            # soft_wrap: one line, whatever the terminal's width, so it can be copied and grepped whole
            err_console.print(error_line(error.message), highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None
        except ValidationError as error:  # an option a model refused (e.g. --patience out of range)
            problems = "; ".join(_problem(item) for item in error.errors())
            err_console.print(error_line(problems), highlight=False, soft_wrap=True)
            raise typer.Exit(code=1) from None


def _problem(item: Any) -> str:
    message = str(item["msg"]).removeprefix("Value error, ")
    where = ".".join(str(part) for part in item["loc"])
    return f"{where}: {message}" if where else message


app = typer.Typer(
    cls=_FriendlyErrors,
    help="trainops: run, watch and steer model training.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
app.add_typer(ops.app, name="ops")
app.add_typer(db.app, name="db")
app.add_typer(data.app, name="data")
app.add_typer(strategies.app, name="strategies")
app.add_typer(models.app, name="models")
app.command()(train)
app.command()(mcp)
app.command()(sync)


@app.command()
def serve(
    host: Annotated[
        str,
        typer.Option(
            help="Address to bind; anything but loopback needs TRAINOPS_API_TOKEN. Requests must name this address "
            "in their Host header (0.0.0.0: any name); TRAINOPS_ALLOWED_HOSTS adds names, e.g. behind a proxy."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    insecure: Annotated[
        bool,
        typer.Option(
            "--insecure",
            help="Serve a non-loopback address without a token: anyone who can reach the port can read every run, "
            "start trainings and cancel them (trusted networks only; prints a warning).",
        ),
    ] = False,
) -> None:
    """Serve the REST API (docs at /api/v1/docs) on the configured database.

    Example: trainops serve --port 8000
    """
    from trainops.api.server import serve as run_server  # FastAPI and uvicorn, imported when the command runs

    run_server(get_settings(), host=host, port=port, insecure=insecure, announce=err_console.print)


@app.command()
def version() -> None:
    """Print the trainops version."""
    typer.echo(trainops_version())


def main() -> None:
    app()
