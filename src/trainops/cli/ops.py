"""``trainops ops``: list, show, follow, diagnose and cancel operations."""

from __future__ import annotations

import math
import queue
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Protocol

import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from trainops.cli.common import JsonOption, TokenOption, UrlOption, console, err_console, open_client, print_json
from trainops.cli.listing import SortOrder, parse_moment, runs_table
from trainops.cli.policy_options import policy_options
from trainops.cli.render import (
    diagnosis_panel,
    epoch_row,
    epochs_table,
    metric_columns,
    operation_panel,
    percentage,
    replay_panel,
    replay_table,
    signal_text,
    status_text,
    when,
)
from trainops.client import TrainOps
from trainops.core.diagnosis import Diagnosis, Signal, TrainingMetrics
from trainops.core.epoch import EpochRecord
from trainops.core.operation import Operation, OperationStatus
from trainops.core.policy import MonitorPolicy
from trainops.core.recommendation_changes import recommendation_changes
from trainops.errors import InvalidInputError
from trainops.schemas.events import (
    DiagnosisEvent,
    EpochsEvent,
    OperationEvent,
    ProgressEvent,
    RecommendationEvent,
    StatusEvent,
)
from trainops.schemas.operations import OperationDetail
from trainops.service.export import ExportFormat

app = typer.Typer(help="Inspect, follow and cancel operations.", no_args_is_help=True)


@app.command("list")
def list_operations(
    status: Annotated[
        list[OperationStatus] | None, typer.Option("--status", "-s", help="Only these statuses (repeatable).")
    ] = None,
    operation_type: Annotated[str | None, typer.Option("--type", help="Only this operation type.")] = None,
    active: Annotated[bool, typer.Option("--active", help="Only pending and running operations.")] = False,
    name: Annotated[str | None, typer.Option("--name", help="Only the runs of this name (ignoring case).")] = None,
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Only runs with this tag (repeatable: with all of them).")
    ] = None,
    search: Annotated[
        str | None,
        typer.Option(
            "--search", "-q", help="Text in the name, id, notes, strategy, task, symbol or tags (ignoring case)."
        ),
    ] = None,
    strategy: Annotated[str | None, typer.Option("--strategy", help="Only runs of this strategy.")] = None,
    symbol: Annotated[str | None, typer.Option("--symbol", help="Only runs on this symbol.")] = None,
    timeframe: Annotated[str | None, typer.Option("--timeframe", help="Only runs on this timeframe.")] = None,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Created at or after: 2026-12-01, 2026-12-01T09:30 (UTC), or an age: 7d, 24h."),
    ] = None,
    until: Annotated[str | None, typer.Option("--until", help="Created before (same forms as --since).")] = None,
    sort: Annotated[
        str,
        typer.Option(
            "--sort",
            help="created (newest first), duration (longest first) or best:METRIC (best value first, e.g. "
            "best:val_loss: lowest first; best:val_accuracy: highest first).",
        ),
    ] = "created",
    order: Annotated[
        SortOrder | None, typer.Option("--order", help="asc or desc: overrides the sort's direction.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="At most this many (1-1000).")] = 20,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many (prefer --cursor for paging).")] = 0,
    cursor: Annotated[
        str | None, typer.Option("--cursor", help="The next page: the cursor the previous page printed.")
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """List operations, newest first (or as --sort says), with each run's name, strategy or task, the best value of
    its primary metric, epochs and duration. Filters combine: a run must match all of them.

    Example: trainops ops list --tag baseline --status completed --sort best:val_loss

    Example: trainops ops list -q resnet --since 7d
    """
    created_after = parse_moment(since, "--since") if since is not None else None
    created_before = parse_moment(until, "--until") if until is not None else None
    with open_client(url, token) as ops:
        page = ops.list_operations(
            status=status,
            operation_type=operation_type,
            active_only=active,
            limit=limit,
            offset=offset,
            name=name,
            tags=tag,
            q=search,
            strategy=strategy,
            symbol=symbol,
            timeframe=timeframe,
            created_after=created_after,
            created_before=created_before,
            sort=sort,
            order=order.value if order else None,
            cursor=cursor,
            include_best=True,
        )
        # an empty page in a table: nothing tracked yet, or filters that match nothing (one more query, only then)
        any_run = bool(page.items) or json or bool(ops.list_operations(limit=1).total)
    if json:
        print_json(page)
        return
    console.print(runs_table(page, console.width))
    if not page.items and not any_run:
        console.print("Nothing yet. Track a run from Python with trainops.connect().run(), or POST /api/v1/operations.")
    elif not page.items:
        console.print("No run matches; `trainops ops list` alone lists every run.")
    if page.next_cursor:
        console.print(f"More: add --cursor {page.next_cursor}", highlight=False, soft_wrap=True)


@app.command()
def rename(
    operation_id: Annotated[str, typer.Argument(help="Operation id (see `trainops ops list`).")],
    name: Annotated[str, typer.Argument(help='The new name (1-128 characters, one line); "" clears it.')],
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Name a run, so that people find it again (`trainops ops list --name NAME`, or -q for part of it).

    Example: trainops ops rename op_training_20250610_123456_ab12cd34 "resnet18 lr=3e-4"
    """
    with open_client(url, token) as ops:
        operation = ops.update_operation(operation_id, name=name if name.strip() else None)
    if json:
        print_json(operation)
        return
    shown = f"named {operation.name!r}" if operation.name else "no longer named"
    console.print(f"{operation.operation_id} is {shown}", highlight=False)


@app.command()
def tag(
    operation_id: Annotated[str, typer.Argument(help="Operation id (see `trainops ops list`).")],
    tags: Annotated[list[str] | None, typer.Argument(help="Tags to add.", show_default=False)] = None,
    remove: Annotated[
        list[str] | None, typer.Option("--remove", "-r", help="A tag to remove (repeatable).", show_default=False)
    ] = None,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Add tags to a run, or remove some with --remove; the others stay. A tag has ASCII letters, digits and
    _ . : / = + @ - (at most 64 characters); find tagged runs with `trainops ops list --tag TAG`.

    Example: trainops ops tag op_training_20250610_123456_ab12cd34 baseline lr=3e-4 --remove draft
    """
    if not tags and not remove:
        raise InvalidInputError("name the tags to add, or --remove TAG to take one away")
    with open_client(url, token) as ops:
        operation = ops.update_operation(operation_id, add_tags=tags or (), remove_tags=remove or ())
    if json:
        print_json(operation)
        return
    console.print(
        f"{operation.operation_id} tags: {', '.join(operation.tags) if operation.tags else '(none)'}", highlight=False
    )


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
    console.print(Text.assemble((operation_id, "bold"), f": {block.total_epochs_completed}{planned} epoch(s)"))
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
    interval: Annotated[
        float, typer.Option(min=0.05, help="Seconds between polls with --poll (the stream needs none).")
    ] = 1.0,
    timeout: Annotated[float | None, typer.Option(help="Give up after this many seconds.")] = None,
    poll: Annotated[
        bool,
        typer.Option(
            "--poll",
            help="Ask for the operation and its new epochs every --interval instead of following its events stream: "
            "for a server without the stream, or a proxy that holds streamed responses back.",
        ),
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Follow an operation live: a progress bar, each new epoch as a row, signals as they appear, and the
    diagnosis when it ends. Exits 1 if the operation fails.

    It follows the operation's events stream (GET /api/v1/operations/{id}/events, or the local database), so
    each epoch shows as soon as it is stored; --poll asks every --interval seconds instead. With --json it
    writes JSON lines: an "epoch" event per epoch, a "signal" event per rule that fires, and a last
    "operation" event.

    Ctrl-C stops the watching, not the operation (exit code 130): cancel it with trainops ops cancel.

    Example: trainops ops watch op_training_20250610_123456_ab12cd34
    """
    for option, seconds in (("--interval", interval), ("--timeout", timeout)):
        if seconds is not None and not (math.isfinite(seconds) and seconds >= 0):
            raise InvalidInputError(f"{option} is a number of seconds, 0 or more; got {seconds}")
    try:
        with open_client(url, token) as ops:
            follow_with = follow_json if json else follow
            final = follow_with(ops, operation_id, interval, timeout, poll=poll)
    except KeyboardInterrupt:
        # unlike `trainops train`, whose Ctrl-C stops its training: say which this one did
        where = f" --url {url}" if url else ""
        err_console.print(
            f"Stopped watching; {operation_id} goes on. To stop it: trainops ops cancel {operation_id} "
            f'--reason "..."{where}',
            highlight=False,
            soft_wrap=True,
        )
        raise typer.Exit(code=EXIT_CTRL_C) from None
    if final is OperationStatus.FAILED:
        raise typer.Exit(code=1)


EXIT_CTRL_C = 130
"""What a shell reports for a command ended by Ctrl-C (128 + SIGINT)."""


def follow(
    ops: TrainOps, operation_id: str, interval: float, timeout: float | None, *, poll: bool = False
) -> OperationStatus:
    """Show the operation live on the console until it ends (or ``timeout`` seconds passed), and its end: the
    events stream, or with ``poll`` a poll every ``interval`` seconds. Returns its last status."""
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
        view = _LiveView(progress)
        operation, diagnosis = _follow(ops, operation_id, view, interval, timeout, poll)
    console.print(operation_panel(operation))
    if diagnosis is not None:
        console.print(diagnosis_panel(_metrics_block(diagnosis)))
    if not operation.status.is_terminal:
        console.print(f"Stopped watching after {timeout}s; {operation_id} is still {operation.status.value}.")
    return operation.status


def follow_json(
    ops: TrainOps, operation_id: str, interval: float, timeout: float | None, *, poll: bool = False
) -> OperationStatus:
    """JSON lines: one ``epoch`` event per new epoch, ``signal`` events, and a final ``operation`` event."""
    operation, _ = _follow(ops, operation_id, _JsonView(), interval, timeout, poll)
    print_json({"event": "operation", **operation.model_dump(mode="json")}, line=True)
    return operation.status


class _View(Protocol):
    """Where :func:`_follow` sends what it learns, whichever way it learnt it."""

    def epochs(self, records: Sequence[EpochRecord]) -> None: ...

    def signals(self, signals: Sequence[Signal]) -> None: ...

    def state(self, operation: Operation) -> None: ...


class _LiveView:
    """The console: a progress bar, a row per epoch (the columns of the first epochs that fit the terminal), and
    each rule that fires, once."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.task = progress.add_task("", total=100.0, status="")
        self.columns: list[str] | None = None
        self.widths: list[int] = []
        self.seen_rules: set[str] = set()

    def epochs(self, records: Sequence[EpochRecord]) -> None:
        out = self.progress.console
        if records and self.columns is None:
            self.columns, self.widths = _fitting_columns(metric_columns(records), out.width)
            headings = ["epoch", *(SHORT_HEADINGS.get(name, name) for name in self.columns), "duration"]
            out.print(_aligned(headings, self.widths), style="bold", highlight=False)
        for record in records:
            out.print(_aligned(epoch_row(record, self.columns or []), self.widths), highlight=False)

    def signals(self, signals: Sequence[Signal]) -> None:
        for signal in signals:
            if signal.rule not in self.seen_rules:
                self.seen_rules.add(signal.rule)
                self.progress.console.print(signal_text(signal))

    def state(self, operation: Operation) -> None:
        self.progress.update(
            self.task,
            completed=percentage(operation),
            description=operation.progress.message or "",
            status=status_text(operation.status).markup,
        )


class _JsonView:
    """JSON lines on stdout: an ``epoch`` event per record and a ``signal`` event per rule that fires, once."""

    def __init__(self) -> None:
        self.seen_rules: set[str] = set()

    def epochs(self, records: Sequence[EpochRecord]) -> None:
        for record in records:
            print_json({"event": "epoch", **record.model_dump(mode="json")}, line=True)

    def signals(self, signals: Sequence[Signal]) -> None:
        for signal in signals:
            if signal.rule not in self.seen_rules:
                self.seen_rules.add(signal.rule)
                print_json({"event": "signal", **signal.model_dump(mode="json")}, line=True)

    def state(self, operation: Operation) -> None:
        pass


def _follow(
    ops: TrainOps, operation_id: str, view: _View, interval: float, timeout: float | None, poll: bool
) -> tuple[Operation, Diagnosis | None]:
    """Feed ``view`` until the operation ends or ``timeout`` seconds passed; answer the operation as it is then
    and its diagnosis (``None`` before any epoch)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    if poll:
        return _poll(ops, operation_id, view, interval, deadline)
    operation = ops.get_operation(operation_id)  # an unknown id fails here, before anything is shown
    view.state(operation)
    diagnosis: Diagnosis | None = None
    ended = False
    stored: set[int] = set()  # the epochs seen, for the progress of a trainer that reports only epochs
    for event in _events_until(ops, operation_id, deadline):
        if isinstance(event, EpochsEvent):
            view.epochs(event.epochs)
            stored.update(record.epoch for record in event.epochs)
            operation = operation.model_copy(update={"epochs_completed": max(operation.epochs_completed, len(stored))})
        elif isinstance(event, ProgressEvent):
            operation = operation.model_copy(update={"progress": event.progress})
        elif isinstance(event, RecommendationEvent | DiagnosisEvent):
            ended = isinstance(event, DiagnosisEvent)
            diagnosis = event.diagnosis or diagnosis
            view.signals(diagnosis.signals if diagnosis else [])
        elif isinstance(event, StatusEvent):
            changed = event.model_dump(include={"status", "error", "started_at", "completed_at", "total_epochs"})
            completed = max(operation.epochs_completed, event.epochs_completed)
            operation = operation.model_copy(update={**changed, "epochs_completed": completed})
        view.state(operation)
    if not ended and stored:
        # given up at the deadline: the last recommendation event may be epochs old (it comes when the advice
        # changes), so the diagnosis of now, over the whole history (and no epoch already shown)
        diagnosis = ops.get_metrics(operation_id, since_epoch=max(stored)).metrics
    # the operation's whole record (result, error) once more
    return ops.get_operation(operation_id), diagnosis


def _poll(
    ops: TrainOps, operation_id: str, view: _View, interval: float, deadline: float | None
) -> tuple[Operation, Diagnosis | None]:
    """:func:`_follow` by asking every ``interval`` seconds for the operation and its epochs since the last."""
    since: int | None = None
    while True:
        operation = ops.get_operation(operation_id)
        block = ops.get_metrics(operation_id, since_epoch=since).metrics
        view.epochs(block.epochs)
        if block.epochs:
            since = block.epochs[-1].epoch
        view.signals(block.signals)
        view.state(operation)
        if operation.status.is_terminal or (deadline is not None and time.monotonic() > deadline):
            return operation, block if block.epochs_analyzed else None
        time.sleep(interval)


def _events_until(ops: TrainOps, operation_id: str, deadline: float | None) -> Iterator[OperationEvent]:
    """``ops.events(operation_id)``, given up at ``deadline``. The stream blocks until its next event (an idle
    run may send none for minutes), so with a deadline a thread reads it and hands each event over; it ends at its
    next event, or with the process (it is a daemon)."""
    if deadline is None:
        yield from ops.events(operation_id)
        return
    received: queue.Queue[OperationEvent | BaseException | None] = queue.Queue()
    stop = threading.Event()

    def read() -> None:
        try:
            for event in ops.events(operation_id):
                if stop.is_set():
                    return
                received.put(event)
        except BaseException as error:  # raised again in the caller's thread
            received.put(error)
        else:
            received.put(None)

    threading.Thread(target=read, name=f"trainops-watch-{operation_id}", daemon=True).start()
    try:
        while (left := deadline - time.monotonic()) > 0:
            try:
                item = received.get(timeout=left)
            except queue.Empty:
                return
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()


def _metrics_block(diagnosis: Diagnosis) -> TrainingMetrics:
    """``diagnosis`` as the metrics block the diagnosis panel shows (without epochs: it shows none)."""
    if isinstance(diagnosis, TrainingMetrics):
        return diagnosis
    return TrainingMetrics.model_construct(**{name: getattr(diagnosis, name) for name in Diagnosis.model_fields})


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
def export(
    operation_id: Annotated[str, typer.Argument(help="Operation id.")],
    export_format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            "-f",
            help="csv: one row per epoch (epoch, step, timestamp, duration, the standard metrics, then custom ones, "
            "sorted); json: the epochs and the diagnosis, as `ops metrics --json` prints them.",
        ),
    ] = "csv",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write to this file instead of standard output.")
    ] = None,
    since_epoch: Annotated[int | None, typer.Option(help="Only epochs after this one.")] = None,
    from_epoch: Annotated[int | None, typer.Option(help="Only epochs from this one on (inclusive).")] = None,
    to_epoch: Annotated[int | None, typer.Option(help="Only epochs up to this one (inclusive).")] = None,
    url: UrlOption = None,
    token: TokenOption = None,
) -> None:
    """Export a run's whole epoch history as a file: every stored epoch (or those of --since-epoch, --from-epoch and
    --to-epoch), never thinned. Missing values are empty cells; NaN and infinities are written nan, inf and -inf
    (pandas.read_csv reads them back).

    Example: trainops ops export op_training_20250610_123456_ab12cd34 --format csv --output run.csv
    """
    with open_client(url, token) as ops:
        text = ops.export_metrics(
            operation_id, format=export_format, since_epoch=since_epoch, from_epoch=from_epoch, to_epoch=to_epoch
        )
    if output is None:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")
        sys.stdout.flush()
        return
    try:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8", newline="")
    except OSError as error:  # a folder, a missing folder, a file that cannot be written
        raise InvalidInputError(
            f"cannot write {output}: {error.strerror or error}; give --output a file in a folder that exists"
        ) from None
    what = f"{text.count(chr(10)) - 1} epoch(s)" if export_format == "csv" else "the epochs and the diagnosis"
    console.print(f"Wrote {what} of {operation_id} to {output}", highlight=False)


@app.command()
def delete(
    operation_id: Annotated[str, typer.Argument(help="Operation id (it must have ended).")],
    yes: Annotated[
        bool, typer.Option("--yes", "-y", help="Do not ask for confirmation (needed off a terminal).")
    ] = False,
    url: UrlOption = None,
    token: TokenOption = None,
    json: JsonOption = False,
) -> None:
    """Delete an ended run for good: its history (epochs, steps), artifact files, worker log and the model version
    it wrote unless a named model uses it. Named models saved from it stay, and say their source run was deleted.

    A pending or running run is refused: cancel it first (trainops ops cancel ID --reason ...), then delete it once
    it ended. On a terminal it asks first; elsewhere pass --yes.

    Example: trainops ops delete op_training_20250610_123456_ab12cd34 --yes
    """
    with open_client(url, token) as ops:
        if not yes:
            operation = ops.get_operation(operation_id)  # an unknown id fails here, before asking
            if operation.status.is_terminal:  # an active run is refused by the delete below, without asking
                _confirm_delete(ops, operation)
        deleted = ops.delete_operation(operation_id)
    if json:
        print_json(deleted)
        return
    files = f"{deleted.artifacts} artifact(s) ({_file_size(deleted.artifact_bytes)})"
    console.print(
        f"Deleted {operation_id}: {deleted.epochs} epoch(s), {deleted.steps} step point(s), {files}, "
        f"{deleted.model_versions} unnamed model version(s).",
        highlight=False,
    )
    if deleted.models_kept:
        console.print(
            f"Kept the model(s) saved from it: {', '.join(deleted.models_kept)} (they now say source_deleted).",
            highlight=False,
        )


def _on_terminal() -> bool:
    return sys.stdin.isatty()


def _confirm_delete(ops: TrainOps, operation: Operation) -> None:
    """Ask before deleting ``operation`` (saying what goes), or refuse off a terminal."""
    operation_id = operation.operation_id
    if not _on_terminal():
        raise InvalidInputError(
            f"not deleting {operation_id} without a confirmation: standard input is not a terminal; pass --yes"
        )
    found = ops.list_artifacts(operation_id)
    console.print(
        f"{operation_id} ({operation.status.value}): {operation.epochs_completed} epoch(s), {len(found)} artifact(s) "
        f"({_file_size(sum(info.size for info in found))}). This cannot be undone.",
        highlight=False,
    )
    if not typer.confirm(f"Delete {operation_id}?"):
        console.print("Nothing deleted.")
        raise typer.Exit(code=1)


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
