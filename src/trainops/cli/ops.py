"""``trainops ops``: list, show, follow, diagnose and cancel operations."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trainops.cli.common import JsonOption, TokenOption, UrlOption, console, open_client, print_json
from trainops.cli.policy_options import policy_options
from trainops.cli.render import (
    diagnosis_panel,
    epoch_row,
    epochs_table,
    metric_columns,
    operation_panel,
    operations_table,
    percentage,
    replay_panel,
    replay_table,
    signal_text,
    status_text,
    when,
)
from trainops.client import TrainOps
from trainops.core.operation import OperationStatus
from trainops.core.policy import MonitorPolicy
from trainops.core.recommendation_changes import recommendation_changes
from trainops.schemas.operations import OperationDetail

app = typer.Typer(help="Inspect, follow and cancel operations.", no_args_is_help=True)


@app.command("list")
def list_operations(
    status: Annotated[
        list[OperationStatus] | None, typer.Option("--status", "-s", help="Only these statuses (repeatable).")
    ] = None,
    operation_type: Annotated[str | None, typer.Option("--type", help="Only this operation type.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only pending and running operations.")] = False,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many (1-1000).")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (for paging).")] = 0,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """List operations, newest first.

    Example: trainops ops list --active
    """
    with open_client(url, token) as ops:
        page = ops.list_operations(
            status=status, operation_type=operation_type, active_only=active, limit=limit, offset=offset
        )
    if json:
        print_json(page)
        return
    console.print(operations_table(page))
    if not page.items:
        console.print("Nothing yet. Track a run from Python with trainops.connect().run(), or POST /api/v1/operations.")


@app.command()
def show(
    operation_id: Annotated[str, typer.Argument(help="Operation id (see `trainops ops list`).")],
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Show one operation: status, its job, progress, metadata, cancel request, result.

    The job is what the server's executor sees of the operation, when it runs it: a Ray job PENDING while the
    cluster lacks the resources it asked for, or FAILED before its worker reported, with Ray's reason (--json:
    "job", null when no executor knows it).

    A strategy training's result reads as its headline: test accuracy and macro F1, the epochs run and the best
    one, whether early stopping ended it, the model version and the duration (every figure: --json). Any other
    result is listed value by value, nested keys joined by dots.

    Example: trainops ops show op_training_20250610_123456_ab12cd34
    """
    with open_client(url, token) as ops:
        operation = ops.get_operation(operation_id)
        job = ops.get_job(operation_id)
    if json:
        print_json(OperationDetail.model_validate({**operation.model_dump(), "job": job}))
        return
    console.print(operation_panel(operation, job))


@app.command()
@policy_options
def metrics(
    operation_id: Annotated[str, typer.Argument(help="Operation id.")],
    *,
    since_epoch: Annotated[int | None, typer.Option(help="Only epochs after this one.")] = None,
    policy: MonitorPolicy,  # one option per field: --monitor, --patience, --stop-rule, ... (policy_options)
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Show the per-epoch history and its diagnosis (best epoch, overfitting, plateau, divergence, trend,
    recommendation).

    Example: trainops ops metrics op_training_20250610_123456_ab12cd34 --stop-rule patience --patience 5
    """
    with open_client(url, token) as ops:
        result = ops.get_metrics(operation_id, since_epoch=since_epoch, policy=policy)
    if json:
        print_json(result)
        return
    block = result.metrics
    planned = f" of {block.total_epochs_planned}" if block.total_epochs_planned else ""
    console.print(f"[bold]{operation_id}[/bold]: {block.total_epochs_completed}{planned} epoch(s)")
    if block.epochs:
        console.print(epochs_table(block.epochs, block.best_epoch))
    console.print(diagnosis_panel(block))


@app.command()
@policy_options
def diagnose(
    operation_id: Annotated[str, typer.Argument(help="Operation id.")],
    *,
    policy: MonitorPolicy,  # one option per field: --monitor, --patience, --stop-rule, ... (policy_options)
    planned: Annotated[
        int | None, typer.Option(min=1, help="The run's planned epochs, for the epochs saved (default: its own).")
    ] = None,
    every_epoch: Annotated[
        bool, typer.Option("--all", help="Show every epoch, not only where the advice changed.")
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Dry-run a diagnosis policy over a run's recorded history: where it would have stopped the run and why,
    the epoch it would restore and the epochs it would have saved. Nothing is changed.

    Use it to choose a rule and its settings before trusting them to stop runs: the default projection rule, or
    Keras-style early stopping with --stop-rule patience.

    Example: trainops ops diagnose op_training_20250610_123456_ab12cd34 --stop-rule patience --patience 5
    """
    with open_client(url, token) as ops:
        replay = ops.diagnose(operation_id, policy, total_epochs_planned=planned)
    if json:
        print_json(replay)
        return
    console.print(replay_panel(operation_id, replay))
    if not replay.steps:
        console.print(f"No epochs recorded yet; try again once {operation_id} has reported some.")
        return
    if every_epoch:
        title = f"every epoch ({len(replay.steps)})"
        steps = replay.steps
    else:
        steps = recommendation_changes(replay.steps)
        title = f"where the advice changed ({len(steps)} of {len(replay.steps)} epochs; --all for every epoch)"
    width = console.width if every_epoch else None
    console.print(replay_table(steps, replay.stop_epoch, title=title, one_line_within=width))


@app.command()
def watch(
    operation_id: Annotated[str, typer.Argument(help="Operation id.")],
    interval: Annotated[float, typer.Option(min=0.05, help="Seconds between polls.")] = 1.0,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Follow an operation live: a progress bar, each new epoch as a row, signals as they appear, and the
    diagnosis when it ends. Exits 1 if the operation fails.

    Example: trainops ops watch op_training_20250610_123456_ab12cd34
    """
    with open_client(url, token) as ops:
        final = (
            follow_json(ops, operation_id, interval, timeout) if json else follow(ops, operation_id, interval, timeout)
        )
    if final is OperationStatus.FAILED:
        raise typer.Exit(code=1)


def follow(ops: TrainOps, operation_id: str, interval: float, timeout: float | None) -> OperationStatus:
    deadline = None if timeout is None else time.monotonic() + timeout
    since: int | None = None
    seen_rules: set[str] = set()
    columns: list[str] | None = None
    widths: list[int] = []
    progress = Progress(
        TextColumn("[bold]{task.fields[status]}"),
        BarColumn(),
        TextColumn("{task.percentage:>5.1f}%"),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    with progress:
        task = progress.add_task("", total=100.0, status="")
        while True:
            operation = ops.get_operation(operation_id)
            result = ops.get_metrics(operation_id, since_epoch=since)
            block = result.metrics
            if block.epochs:
                if columns is None:
                    columns, widths = _fitting_columns(metric_columns(block.epochs), progress.console.width)
                    headings = ["epoch", *(SHORT_HEADINGS.get(name, name) for name in columns), "duration"]
                    progress.console.print(_aligned(headings, widths), style="bold", highlight=False)
                for record in block.epochs:
                    progress.console.print(_aligned(epoch_row(record, columns), widths), highlight=False)
                since = block.epochs[-1].epoch
            for signal in block.signals:
                if signal.rule not in seen_rules:
                    seen_rules.add(signal.rule)
                    progress.console.print(signal_text(signal))
            progress.update(
                task,
                completed=percentage(operation),
                description=operation.progress.message or "",
                status=status_text(operation.status).markup,
            )
            if operation.status.is_terminal or (deadline is not None and time.monotonic() > deadline):
                break
            time.sleep(interval)
    console.print(operation_panel(operation))
    full = ops.get_metrics(operation_id).metrics
    if full.epochs:
        console.print(diagnosis_panel(full))
    if not operation.status.is_terminal:
        console.print(f"Stopped watching after {timeout}s; {operation_id} is still {operation.status.value}.")
    return operation.status


SHORT_HEADINGS = {"train_accuracy": "train_acc", "val_accuracy": "val_acc", "learning_rate": "lr"}
"""Narrower headings for the live view, so a training's usual columns fit an 80-column terminal."""


def _fitting_columns(columns: list[str], width: int) -> tuple[list[str], list[int]]:
    """The metric columns that fit ``width`` beside epoch and duration (later ones are left out), and each
    column's width (its heading's, at least 7: numbers print as ``0.1234`` or ``1.234e-05``)."""

    def widths_of(names: list[str]) -> list[int]:
        return [max(len(SHORT_HEADINGS.get(name, name)), 7) for name in ["epoch", *names, "duration"]]

    kept = list(columns)
    while kept and sum(widths_of(kept)) + 2 * (len(kept) + 1) > width:
        kept.pop()
    return kept, widths_of(kept)


def _aligned(cells: list[str], widths: list[int]) -> str:
    return "  ".join(cell.rjust(width) for cell, width in zip(cells, widths, strict=True))


def follow_json(ops: TrainOps, operation_id: str, interval: float, timeout: float | None) -> OperationStatus:
    """JSON lines: one ``epoch`` event per new epoch, ``signal`` events, and a final ``operation`` event."""
    deadline = None if timeout is None else time.monotonic() + timeout
    since: int | None = None
    seen_rules: set[str] = set()
    while True:
        operation = ops.get_operation(operation_id)
        block = ops.get_metrics(operation_id, since_epoch=since).metrics
        for record in block.epochs:
            print_json({"event": "epoch", **record.model_dump(mode="json")}, line=True)
            since = record.epoch
        for signal in block.signals:
            if signal.rule not in seen_rules:
                seen_rules.add(signal.rule)
                print_json({"event": "signal", **signal.model_dump(mode="json")}, line=True)
        if operation.status.is_terminal or (deadline is not None and time.monotonic() > deadline):
            print_json({"event": "operation", **operation.model_dump(mode="json")}, line=True)
            return operation.status
        time.sleep(interval)


@app.command()
def cancel(
    operation_id: Annotated[str, typer.Argument(help="Operation id.")],
    reason: Annotated[str, typer.Option("--reason", "-r", help="Why it should stop (kept in its history).")],
    requested_by: Annotated[str, typer.Option(help="Who asks (user, agent, ...).")] = "user",
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Ask a running operation to stop, with a reason. It stops at its trainer's next check.

    Example: trainops ops cancel op_training_20250610_123456_ab12cd34 --reason "val_loss rising since epoch 30"
    """
    with open_client(url, token) as ops:
        operation = ops.cancel_operation(operation_id, reason, requested_by=requested_by)
    if json:
        print_json(operation)
        return
    if operation.status is OperationStatus.CANCELLED:
        console.print(f"Cancelled {operation_id} (it had not started).")
    else:
        console.print(
            f"Asked {operation_id} to stop; it ends at its trainer's next check. Follow it with: "
            f"trainops ops watch {operation_id}"
        )


@app.command()
def artifacts(
    operation_id: Annotated[str, typer.Argument(help="Operation id.")],
    download: Annotated[
        str | None,
        typer.Option("--download", "-d", help="Download this artifact (its path as listed) instead of listing."),
    ] = None,
    to: Annotated[
        Path, typer.Option("--to", help="Directory to download into; the artifact keeps its path below it.")
    ] = Path(),
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """List the files logged to an operation (path, size, SHA-256, when stored), or download one.

    Files are logged from Python with ops.log_artifact(ID, PATH) or TrainingCallbacks.log_artifact(PATH), or
    posted to POST /api/v1/operations/ID/artifacts?path=NAME. A download is checked against the stored SHA-256.

    Example: trainops ops artifacts op_training_20250610_123456_ab12cd34 --download checkpoints/best.pt --to ./run
    """
    with open_client(url, token) as ops:
        if download is not None:
            local = ops.download_artifact(operation_id, download, to)
        else:
            found = ops.list_artifacts(operation_id)
    if download is not None:
        if json:
            print_json({"path": download, "file": str(local)})
        else:
            console.print(f"Downloaded {download} to {local}")
        return
    if json:
        print_json([info.model_dump(mode="json") for info in found])
        return
    if not found:
        console.print(
            f"{operation_id} has no artifacts yet. Log files from Python with ops.log_artifact({operation_id!r}, PATH)."
        )
        return
    table = Table("path", "size", "sha256", "stored (UTC)")
    for info in found:
        table.add_row(info.path, _file_size(info.size), info.sha256[:12], when(info.created_at))
    console.print(table)
    console.print(f"Download one with: trainops ops artifacts {operation_id} --download PATH --to DIR")


def _file_size(size: int) -> str:
    """``812 B``, ``1.5 KiB``, ``512.0 MiB``."""
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    units = ["KiB", "MiB", "GiB", "TiB"]
    while value >= 1024 and len(units) > 1:
        value /= 1024
        units.pop(0)
    return f"{value:.1f} {units[0]}"
