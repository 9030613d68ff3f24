"""``trainops strategies``: list the strategies, check one without training it."""

from __future__ import annotations

from pathlib import Path, PurePath
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from trainops.cli.common import JsonOption, TokenOption, UrlOption, console, open_client, print_json
from trainops.errors import StrategyError

app = typer.Typer(help="Strategy files: list them, validate one.", no_args_is_help=True)


@app.command("list")
def list_command(url: UrlOption = None, token: TokenOption = None, json: JsonOption = False) -> None:
    """The strategies in the strategies directory (TRAINOPS_STRATEGIES_DIR, or ./strategies).

    Example: trainops strategies list
    """
    with open_client(url, token) as ops:
        strategies = ops.list_strategies()
    if json:
        print_json([item.model_dump(mode="json") for item in strategies])
        return
    if not strategies:
        console.print("No strategies found; set TRAINOPS_STRATEGIES_DIR or run from a directory with strategies/.")
        return
    # `trainops train` finds a strategy by its file's name: shown beside the name inside it when they differ
    table = Table("name", "symbols", "timeframes", "indicators", "model", "epochs", "status")
    for item in strategies:
        status = Text("valid", style="green") if item.valid else Text.assemble(("invalid", "red"), f": {item.error}")
        model = "mlp_" + "_".join(str(size) for size in item.architecture) if item.architecture else "-"
        stem = PurePath(item.path).stem
        table.add_row(
            item.name if stem == item.name else f"{stem} (named {item.name})",
            ", ".join(item.symbols),
            ", ".join(item.timeframes),
            ", ".join(item.indicators),
            model,
            str(item.epochs or "-"),
            status,
        )
    console.print(table)


@app.command()
def validate(
    path: Annotated[Path, typer.Argument(help="The strategy YAML file.")],
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Check a strategy file without training it; every problem with its path and fix. Exits 1 if invalid.

    Example: trainops strategies validate strategies/mean_reversion.yaml
    """
    if not path.is_file():
        raise StrategyError(f"strategy file {str(path)!r} does not exist")
    with open_client(url, token) as ops:
        result = ops.validate_strategy(path.read_text(encoding="utf-8", errors="replace"))
    if json:
        print_json(result)
    elif result.valid:
        console.print(Text.assemble(("valid", "green"), f": {result.message}"))
    else:
        console.print(Text.assemble(("invalid", "red"), f": {path}"), highlight=False)
        for problem in result.problems:
            console.print(f"  - {problem}", highlight=False, soft_wrap=True)
    if not result.valid:
        raise typer.Exit(code=1)
