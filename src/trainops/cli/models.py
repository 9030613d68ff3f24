"""``trainops models``: save a training's model under a name, list, show, load, predict with, delete."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import Annotated

import typer
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from trainops.cli.common import (
    JsonOption,
    TokenOption,
    UrlOption,
    console,
    open_client,
    print_json,
    speaking_options,
)
from trainops.cli.render import number, when
from trainops.errors import NotFoundError
from trainops.schemas.models import ModelSummary, PredictionAnswer, PredictRequest, SavedModel, SaveModelRequest

app = typer.Typer(help="The model registry: save, list, show, load, predict, delete.", no_args_is_help=True)

NameArgument = Annotated[str, typer.Argument(help="The model's name.")]
# Passed on as typed: the request reads a date or a time as the REST API reads the same string (a bare
# YYYY-MM-DD is a whole day, anything with a time an instant, midnight included), and refuses what is neither.
WHEN_METAVAR = "YYYY-MM-DD[THH:MM]"

# What the user typed for each field of the request a command sends, so that errors name it (see speaking_options)
SAVE_OPTIONS = {"task_id": "TASK_ID", "model_name": "NAME", "description": "--description", "overwrite": "--overwrite"}
PREDICT_OPTIONS = {
    "model_name": "NAME",
    "symbol": "--symbol",
    "timeframe": "--timeframe",
    "test_date": "--date",
    "start_date": "--start",
    "end_date": "--end",
}


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


@app.command("list")
def list_command(
    symbol: Annotated[str | None, typer.Option(help="Only models of this symbol.", show_default=False)] = None,
    timeframe: Annotated[str | None, typer.Option(help="Only models of this timeframe.", show_default=False)] = None,
    strategy: Annotated[str | None, typer.Option(help="Only models of this strategy.", show_default=False)] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            min=1, max=1000, help="A page of at most this many (1-1000); all when left out.", show_default=False
        ),
    ] = None,
    cursor: Annotated[
        str | None,
        typer.Option(
            help="The next page: the cursor the previous page printed (same filters and --limit).", show_default=False
        ),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Named models, newest first, and the run each was trained by ("(deleted)" when that run was deleted since).
    With --json: the list of models, or with --limit the page as GET /models answers it (models, count,
    next_cursor).

    Example: trainops models list --symbol EURUSD --limit 20
    """
    with open_client(url, token) as ops:
        page = ops.list_models_page(symbol=symbol, timeframe=timeframe, strategy=strategy, limit=limit, cursor=cursor)
    models = page.models
    if json:
        print_json(page if limit is not None else [model.model_dump(mode="json") for model in models])
        return
    if not models:
        console.print(_nothing_listed(symbol, timeframe, strategy, cursor), highlight=False, soft_wrap=True)
        return
    table = Table("name", "strategy", "symbol", "timeframe", "architecture", "train acc", "test acc", "saved", "run")
    for model in models:
        table.add_row(
            model.model_name,
            model.strategy,
            model.symbol,
            model.timeframe,
            model.architecture or "-",
            _percent(model.training_accuracy),
            _percent(model.test_accuracy),
            when(model.saved_at, short=True),
            _source(model),
        )
    console.print(table)
    if page.next_cursor:
        console.print(f"More: add --cursor {page.next_cursor}", highlight=False, soft_wrap=True)


def _nothing_listed(symbol: str | None, timeframe: str | None, strategy: str | None, cursor: str | None) -> str:
    """Why the list is empty: no model at all, or none that the filters (or the page after the cursor) let through."""
    given = " ".join(
        f"--{option} {shlex.quote(value)}"
        for option, value in (("symbol", symbol), ("timeframe", timeframe), ("strategy", strategy))
        if value is not None
    )
    if cursor is not None:
        return f"No more models{f' matching {given}' if given else ''} after --cursor {shlex.quote(cursor)}."
    if given:
        return f"No models match {given}. List them all with: trainops models list"
    return "No models yet. Save one from a finished training: trainops models save TASK_ID NAME"


def _source(model: ModelSummary) -> str:
    """The run a model was trained by, marked when it was deleted since (the model stays, its provenance noted)."""
    if not model.source_operation:
        return "-"
    return f"{model.source_operation} (deleted)" if model.source_deleted else model.source_operation


@app.command()
def show(name: NameArgument, url: UrlOption = None, token: TokenOption = None, json: JsonOption = False) -> None:
    """One model: where it came from, its figures, its files.

    Example: trainops models show eurusd-mr
    """
    with open_client(url, token) as ops:
        model = ops.get_model(name)
    if json:
        print_json(model)
        return
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    for label, value in (
        ("strategy", model.strategy),
        ("symbol", model.symbol),
        ("timeframe", model.timeframe),
        ("architecture", model.architecture or "-"),
        ("accuracy", f"train {_percent(model.training_accuracy)}, test {_percent(model.test_accuracy)}"),
        ("test F1", number(model.f1_score)),
        ("trained by", _source(model)),
        ("created", when(model.created_at)),
        ("saved", when(model.saved_at)),
        ("files", f"{model.model_path} ({model.model_size_mb:.3f} MB)"),
        ("description", model.description or "-"),
    ):
        grid.add_row(label, value)
    console.print(Panel(grid, title=f"{model.model_name} (id {model.model_id})", title_align="left"))


@app.command()
def save(
    task_id: Annotated[str, typer.Argument(help="The finished training whose model to save.")],
    name: NameArgument,
    description: Annotated[str, typer.Option(help="What this model is for.")] = "",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace a model of the same name.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Save the model a finished training wrote, under a name.

    Example: trainops models save op_training_20250610_123456_ab12cd34 eurusd-mr
    """
    with speaking_options(SAVE_OPTIONS):
        request = SaveModelRequest(task_id=task_id, model_name=name, description=description, overwrite=overwrite)
        with open_client(url, token) as ops:
            saved = ops.save_model(request)
            hint = "" if json else _predict_hint(saved, ops.get_model)
    if json:
        print_json(saved)
        return
    console.print(
        Text.assemble(
            "Saved ",
            (saved.model_name, "bold"),
            f" (id {saved.model_id}, {saved.model_size_mb:.3f} MB) from {saved.task_id}.\nPredict with: {hint}",
        ),
        highlight=False,
        soft_wrap=True,
    )


def _predict_hint(saved: SavedModel, summary_of: Callable[[str], ModelSummary]) -> str:
    """The command that predicts with the model just saved, with its symbol and base timeframe (the first of
    ``1h+4h+1d``, the one predictions are asked on) filled in from its summary: the save's answer does not hold
    them. A model deleted in between keeps the placeholders; the save itself succeeded."""
    try:
        model = summary_of(saved.model_name)
    except NotFoundError:
        symbol, timeframe = "SYMBOL", "TIMEFRAME"
    else:
        # a model trained on several symbols (EURUSD+GOOG) predicts on any of them: the hint names the first
        symbol, timeframe = model.symbol.split("+")[0], model.timeframe.split("+")[0]
    return f"trainops models predict {saved.model_name} --symbol {symbol} --timeframe {timeframe} --date YYYY-MM-DD"


@app.command()
def load(name: NameArgument, url: UrlOption = None, token: TokenOption = None, json: JsonOption = False) -> None:
    """Load a model (checking every file) and describe it.

    Example: trainops models load eurusd-mr
    """
    with open_client(url, token) as ops:
        loaded = ops.load_model(name)
    if json:
        print_json(loaded)
        return
    info = loaded.model_info
    console.print(
        Text.assemble(
            "Loaded ",
            (loaded.model_name, "bold"),
            f": {info.architecture}, {info.input_size} features, {info.strategy} on {info.symbol} {info.timeframe}, "
            f"test accuracy {_percent(info.test_accuracy)}",
        ),
        highlight=False,
    )


@app.command()
def predict(
    name: NameArgument,
    symbol: Annotated[str, typer.Option(help="Symbol to predict for.")],
    timeframe: Annotated[str, typer.Option(help="The model's (base) timeframe.")],
    date: Annotated[
        str | None,
        typer.Option(
            metavar=WHEN_METAVAR,
            help="The bar to predict: the last one at or before this time (2018-01-15T14:00; UTC unless it names a "
            "zone), or that day's last bar for a bare date (2018-01-15).",
            show_default=False,
        ),
    ] = None,
    start: Annotated[
        str | None,
        typer.Option(
            metavar=WHEN_METAVAR,
            help="First bar of a range: the first one at or after this time, or that day's first bar for a bare date.",
            show_default=False,
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            metavar=WHEN_METAVAR,
            help="Last bar of a range: the last one at or before this time, or that day's last bar for a bare date.",
            show_default=False,
        ),
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """A signal for one bar (--date), or the signals of a range (--start and --end), from bars up to it only.

    Example: trainops models predict eurusd-mr --symbol EURUSD --timeframe 1h --date 2018-01-15T14:00
    """
    with speaking_options(PREDICT_OPTIONS):
        request = PredictRequest(
            model_name=name,
            symbol=symbol,
            timeframe=timeframe,
            test_date=date,
            start_date=start,
            end_date=end,
        )
        with open_client(url, token) as ops:
            answer = ops.predict(request)
    if json:
        print_json(answer)
        return
    if isinstance(answer, PredictionAnswer):
        p = answer.prediction
        # the signal and its classes in lower case, as the range's table and counts name them (the JSON's
        # probabilities keep the model's class names)
        probabilities = ", ".join(f"{key.lower()} {value:.1%}" for key, value in p.probabilities.items())
        console.print(
            Text.assemble(
                (p.signal, "bold"),
                f" at {answer.test_date:%Y-%m-%d %H:%M} ({answer.symbol} {answer.timeframe}): confidence "
                f"{p.confidence:.1%}, strength {p.signal_strength:+.3f} ({probabilities})",
            ),
            highlight=False,
        )
        active = {key: value for key, value in p.fuzzy_outputs.items() if value > 0.0}
        console.print("fuzzy: " + ", ".join(f"{key} {value:.2f}" for key, value in active.items()), highlight=False)
        console.print(
            "inputs: " + ", ".join(f"{key} {number(value)}" for key, value in answer.input_features.items()),
            highlight=False,
            soft_wrap=True,
        )
        return
    table = Table("bar", "signal", "confidence", "strength")
    for item in answer.predictions:
        table.add_row(
            f"{item.timestamp:%Y-%m-%d %H:%M}", item.signal, f"{item.confidence:.1%}", f"{item.signal_strength:+.3f}"
        )
    console.print(table)
    counts = ", ".join(f"{key} {value}" for key, value in answer.signal_counts.items())
    console.print(f"{answer.count} bars: {counts}", highlight=False)


@app.command()
def delete(
    name: NameArgument,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Delete a model and its files.

    Example: trainops models delete eurusd-mr --yes
    """
    if not yes and not typer.confirm(f"Delete model {name!r} and its files?"):
        raise typer.Exit(code=1)
    with open_client(url, token) as ops:
        deleted = ops.delete_model(name)
    if json:
        print_json(deleted)
        return
    console.print(f"Deleted {deleted.model_name}.", highlight=False)
