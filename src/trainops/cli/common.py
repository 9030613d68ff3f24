"""Options shared by the commands, defined once, and the console the CLI prints to."""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer
from pydantic import BaseModel, TypeAdapter
from rich.console import Console

from trainops.client import TrainOps, connect

console = Console()
err_console = Console(stderr=True)

UrlOption = Annotated[
    str | None,
    typer.Option(
        "--url",
        envvar="TRAINOPS_URL",
        help="trainops server to talk to; leave unset to work on the local database directly.",
        show_default=False,
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option("--token", envvar="TRAINOPS_API_TOKEN", help="Bearer token for the server.", show_default=False),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]


def open_client(url: str | None, token: str | None) -> TrainOps:
    return connect(url=url, token=token)


def print_json(value: BaseModel | dict[str, Any] | list[Any], *, line: bool = False) -> None:
    """One JSON document on stdout (no Rich markup, no wrapping): safe to pipe into jq.

    With ``line`` it is a single compact line, for streams of events (JSON Lines).
    """
    indent = None if line else 2
    if isinstance(value, BaseModel):
        text = value.model_dump_json(indent=indent)
    else:
        text = TypeAdapter(Any).dump_json(value, indent=indent).decode()
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
