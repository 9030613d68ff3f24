"""``trainops data``: write the sample market data and list the data files training can use."""

from __future__ import annotations

from datetime import datetime, time
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from trainops import extras
from trainops.cli.common import JsonOption, console, err_console, error_line, print_json
from trainops.schemas.data import DataFile
from trainops.settings import get_settings

app = typer.Typer(help="Market data: write the sample data set and list the data files.", no_args_is_help=True)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Directory of SYMBOL_TIMEFRAME.csv|.parquet files; defaults to TRAINOPS_DATA_DIR, else "
        "TRAINOPS_HOME/data. Use it to keep a data set apart from the default one.",
        show_default=False,
    ),
]


@app.command()
def sample(
    data_dir: DataDirOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace files of the sample's names that hold other data.")
    ] = False,
    json: JsonOption = False,
) -> None:
    """Write real market history to train on: EURUSD 1h/4h/1d (2017-2018) and GOOG 1d/1w (2004-2013).

    The data ships with the backtesting package, so this works offline. Running it again is safe: it leaves every
    other file alone, and refuses to replace a file of the same name holding other data unless given --force.

    Example: trainops data sample
    """
    extras.require("train", "the sample data")
    from trainops.pipeline.data_files import write_sample_data  # the train extra: pandas, backtesting

    directory = _directory(data_dir)
    files = write_sample_data(directory, overwrite=force)
    if json:
        print_json([_as_json(file) for file in files])
        return
    console.print(files_table(files, title=f"Wrote {len(files)} sample files to {directory}"))
    # Training reads the configured directory, so a custom one has to travel with the command.
    env = "" if data_dir is None else f"TRAINOPS_DATA_DIR={directory} "
    console.print(f"Train on it with: {env}trainops train STRATEGY.yaml", highlight=False, soft_wrap=True)


@app.command("list")
def list_files(data_dir: DataDirOption = None, json: JsonOption = False) -> None:
    """List the data files training can use: symbol, timeframe, bars and date range.

    Example: trainops data list --json
    """
    extras.require("train", "reading market data files")
    from trainops.pipeline.data_files import available_data  # the train extra: pandas

    directory = _directory(data_dir)
    files = available_data(directory)
    if json:
        print_json([_as_json(file) for file in files])
        return
    if not files:
        option = "" if data_dir is None else f" --data-dir {directory}"
        console.print(
            f"No data files in {directory}. Write the sample data with: trainops data sample{option}",
            highlight=False,
            soft_wrap=True,
        )
        return
    console.print(files_table(files, title=f"{len(files)} data file(s) in {directory}"))
    for file in files:
        if file.problem is not None:
            problem = error_line(f"{file.path.name} cannot be used: {file.problem}")
            err_console.print(problem, highlight=False, soft_wrap=True)


def files_table(files: list[DataFile], *, title: str) -> Table:
    """One row per data file, in listing order."""
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    table.add_column("symbol")
    table.add_column("timeframe")
    table.add_column("bars", justify="right")
    table.add_column("start")
    table.add_column("end")
    table.add_column("path", overflow="fold")
    for file in files:
        table.add_row(
            file.symbol,
            file.timeframe,
            str(file.bars) if file.problem is None else "unreadable",
            _moment(file.start),
            _moment(file.end),
            str(file.path),
        )
    return table


def _directory(data_dir: Path | None) -> Path:
    """The option's directory, else the configured one (settings are read only when a command runs)."""
    return (data_dir or get_settings().resolved_data_dir).expanduser().absolute()


def _as_json(file: DataFile) -> dict[str, object]:
    return file.model_dump(mode="json")


def _moment(value: datetime | None) -> str:
    """The date alone for daily and weekly bars, else date and minutes."""
    if value is None:
        return "-"
    return value.strftime("%Y-%m-%d" if value.time() == time() else "%Y-%m-%d %H:%M")
