"""The ``trainops`` command. Commands are thin adapters: logic lives in the client and the services."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from pydantic import ValidationError
from typer.core import TyperGroup, TyperOption

from trainops.cli import data, db, models, ops, strategies
from trainops.cli.common import JsonOption, err_console, error_line, print_json
from trainops.cli.mcp import mcp
from trainops.cli.sync import sync
from trainops.cli.train import train
from trainops.errors import TrainOpsError
from trainops.settings import get_settings
from trainops.version import trainops_version


class _TrainopsGroup(TyperGroup):
    """The ``trainops`` group: every trainops error becomes a one-line message and exit code 1, never a traceback;
    every flag reads as a flag in the help of every command."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # typer's vendored click.Context
        _flags_without_value(self, ctx)  # before parsing: it is parsing --help that prints the help
        return super().parse_args(ctx, args)

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


def _flags_without_value(command: Any, ctx: Any) -> None:
    """Show the flags of ``command`` and of its subcommands, ``--help`` included, without a value in their help.

    Typer's rich help prints every option's type beside it, a flag's too (``--json <bool>``), which reads as if the
    flag took a value (``--json true`` is refused); a flag's metavar is printed there only, so an empty one leaves
    the flag bare. ``ctx`` gives the help option's names (``--help``), which subcommands inherit.
    """
    for option in [*command.params, command.get_help_option(ctx)]:
        if isinstance(option, TyperOption) and option.is_flag and option.metavar is None:
            option.metavar = ""
    for subcommand in getattr(command, "commands", {}).values():
        _flags_without_value(subcommand, ctx)


def _problem(item: Any) -> str:
    message = str(item["msg"]).removeprefix("Value error, ")
    where = ".".join(str(part) for part in item["loc"])
    return f"{where}: {message}" if where else message


app = typer.Typer(
    cls=_TrainopsGroup,
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
    """Serve the web dashboard (at /) and the REST API (at /api/v1, docs at /api/v1/docs) on the configured
    database.

    Example: trainops serve --port 8000
    """
    from trainops.api.server import serve as run_server  # FastAPI and uvicorn, imported when the command runs

    run_server(get_settings(), host=host, port=port, insecure=insecure, announce=err_console.print)


@app.command()
def version(json: JsonOption = False) -> None:
    """Print the trainops version.

    Example: trainops version --json
    """
    if json:
        print_json({"version": trainops_version()})
        return
    typer.echo(trainops_version())


def main() -> None:
    app()
