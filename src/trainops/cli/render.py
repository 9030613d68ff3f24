"""Rich renderings of operations, epochs and diagnoses (no Typer here: the commands decide what to show)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from trainops.core.diagnosis import Action, Signal, TrainingMetrics, TrendDirection
from trainops.core.epoch import STANDARD_METRICS, EpochRecord
from trainops.core.forecast import Forecast
from trainops.core.operation import Operation, OperationStatus
from trainops.core.policy import MonitorPolicy
from trainops.core.replay import Replay, ReplayStep
from trainops.schemas.operations import ExecutorJob
from trainops.schemas.training import StrategyResult, StrategyTrainingMetrics, TrainingPerformance, strategy_result

STATUS_STYLE = {
    OperationStatus.PENDING: "yellow",
    OperationStatus.RUNNING: "cyan",
    OperationStatus.COMPLETED: "green",
    OperationStatus.FAILED: "red",
    OperationStatus.CANCELLED: "magenta",
}
ACTION_STYLE = {Action.CONTINUE: "green", Action.STOP: "red", Action.STOP_AND_RESTORE_BEST: "yellow"}
SEVERITY_STYLE = {"info": "blue", "warning": "yellow", "critical": "red"}


def number(value: float | None) -> str:
    if value is None:
        return "-"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return f"{value:.4g}" if abs(value) < 1e-3 or abs(value) >= 1e4 else f"{value:.4f}"


def when(moment: datetime | None, *, short: bool = False) -> str:
    if moment is None:
        return "-"
    return moment.astimezone(UTC).strftime("%m-%d %H:%M" if short else "%Y-%m-%d %H:%M:%S")


def status_text(status: OperationStatus) -> Text:
    return Text(status.value, style=STATUS_STYLE[status])


def percentage(operation: Operation) -> float:
    """Reported progress, or epochs done of planned when the trainer reports only epochs."""
    if operation.progress.percentage or not operation.total_epochs:
        return operation.progress.percentage
    return 100.0 * operation.epochs_completed / operation.total_epochs


def progress_text(operation: Operation) -> str:
    percent = percentage(operation)
    message = operation.progress.message or ""
    return f"{percent:5.1f}% {message}".rstrip()


def operation_panel(operation: Operation, job: ExecutorJob | None = None) -> Panel:
    """The operation row by row; with ``job``, what its executor sees of it (a Ray job still waiting for
    resources, or one that failed before its worker reported) right under its status."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("status", status_text(operation.status))
    if job is not None:
        grid.add_row("job", job_text(job, ended=operation.status.is_terminal))
    grid.add_row("type", operation.operation_type)
    grid.add_row("progress", progress_text(operation))
    epochs = str(operation.epochs_completed) + (f" of {operation.total_epochs}" if operation.total_epochs else "")
    grid.add_row("epochs", epochs)
    grid.add_row("created", when(operation.created_at))
    grid.add_row("started", when(operation.started_at))
    grid.add_row("ended", when(operation.completed_at))
    metadata = operation.metadata.model_dump(exclude_none=True, exclude_defaults=True)
    if metadata:
        grid.add_row("metadata", ", ".join(f"{key}={brief(value)}" for key, value in metadata.items()))
    if operation.cancel_request:
        request = operation.cancel_request
        grid.add_row("cancel", f"requested by {request.requested_by} at {when(request.requested_at)}: {request.reason}")
    if operation.error:
        grid.add_row("error", Text(operation.error, style="red"))
    if operation.result:
        for label, value in result_rows(operation.result):
            grid.add_row(label, value)
    return Panel(grid, title=operation.operation_id, title_align="left")


JOB_STYLE = {"PENDING": "yellow", "RUNNING": "cyan", "SUCCEEDED": "green", "FAILED": "red", "STOPPED": "magenta"}


def job_text(job: ExecutorJob, *, ended: bool = False) -> Text:
    """``PENDING on ray — <Ray's message>``: the job's state, its executor, its exit code once it ended, and the
    executor's own words. A job still running under an operation that has ``ended`` is its process exiting (it
    writes its end, then leaves): said so, or ``RUNNING`` reads as a contradiction of the status above it."""
    text = Text(job.status, style=JOB_STYLE.get(job.status, ""))
    text.append(f" on {job.executor}")
    if ended and job.status in ("PENDING", "RUNNING"):
        text.append(" (the operation has ended; its process is exiting)", style="dim")
    if job.exit_code is not None:
        text.append(f" (exit code {job.exit_code})")
    if job.message and job.message.strip():
        text.append(f" — {job.message.strip()}")
    if job.read_at is not None and (age := (datetime.now(UTC) - job.read_at).total_seconds()) >= STALE_JOB_SECONDS:
        text.append(f" (as of {age:.0f} s ago: the {job.executor} cluster has not answered since)", style="dim")
    return text


STALE_JOB_SECONDS = 10.0
"""How old a job's state may be before ``ops show`` says when it was read: a view is read again every few
seconds while the cluster answers."""


MAX_RESULT_LINES = 40
"""Lines of a free-form result ``ops show`` prints before pointing at ``--json`` for the rest."""


def result_rows(result: Mapping[str, Any]) -> list[tuple[str, Text]]:
    """An operation's result as panel rows: a strategy training's headline figures, any other result (a script's
    ``run.result = {...}``) as every value by its dotted path."""
    typed = strategy_result(result)
    if typed is None:
        return [("result", flat_text(result))]
    rows = strategy_result_rows(typed)
    if typed.model_extra:
        rows.append(("result", flat_text(typed.model_extra)))
    return rows


def strategy_result_rows(result: StrategyResult) -> list[tuple[str, Text]]:
    """Test accuracy and macro F1, the epochs and the best one, how the run ended, the model version, the time."""
    training, test = result.training_metrics, result.test_metrics
    baseline = (
        f" (always {test.baseline_class}: {_percent(test.baseline_accuracy)})"
        if test.baseline_accuracy is not None
        else ""
    )
    rows = [("test", Text(f"accuracy {_percent(test.test_accuracy)}{baseline}, F1 {number(test.f1_score)} (macro)"))]
    rows.append(("best epoch", _best_epoch(training)))
    rows.append(("early stopping", _ending(training)))
    model = result.model_info
    if result.model_version is not None:
        where = f" in {model.model_path}" if model.model_path else ""
        rows.append(("model version", Text(f"{result.model_version}{where}")))
    else:
        rows.append(("model version", Text("none written: nothing of this run to save as a model", style="dim")))
    if result.duration_seconds is not None:
        rows.append(("duration", Text(duration(result.duration_seconds))))
    return rows


def _best_epoch(training: StrategyTrainingMetrics) -> Text:
    """``2 of epochs 0-2 (val_loss 0.9877)``: epochs count from 0, as the history does."""
    completed = training.epochs_completed
    if completed == 0:
        return Text("none: no epoch finished", style="yellow")
    run = f"epochs 0-{completed - 1}" if completed > 1 else "epoch 0"
    if training.best_epoch is None:
        return Text(f"none: {training.monitor} was never finite in {run}", style="red")
    return Text(f"{training.best_epoch} of {run} ({training.monitor} {number(training.best_value)})")


def _ending(training: StrategyTrainingMetrics) -> Text:
    reason = training.stopped_reason
    if training.early_stopped:
        return Text(f"yes: {(reason or '').removeprefix('early stopping: ') or 'the monitored metric stalled'}")
    if training.diverged:
        return Text(f"no; diverged: {training.diverged}", style="red")
    if reason:
        return Text(f"no; {reason}", style=STATUS_STYLE[OperationStatus.CANCELLED])
    return Text("no, every planned epoch ran")


def duration(seconds: float) -> str:
    """``4.2 s``, ``3 min 07 s``, ``2 h 05 min``: a wall time as people read it.

    >>> duration(3.98), duration(187.4), duration(7500.0)
    ('4.0 s', '3 min 07 s', '2 h 05 min')
    """
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def flat_text(values: Mapping[str, Any]) -> Text:
    """Every value of a free-form mapping on a line of its own, nested keys joined by dots (``model.path = ...``).

    >>> print(flat_text({"test_accuracy": 0.9, "model": {"path": "m/v1", "layers": [32, 16]}}))
    test_accuracy = 0.9000
    model.path = m/v1
    model.layers = [32, 16]
    """
    lines = [f"{path} = {brief(value)}" for path, value in flatten(values)]
    if len(lines) > MAX_RESULT_LINES:
        hidden = len(lines) - MAX_RESULT_LINES + 1
        lines = [*lines[: MAX_RESULT_LINES - 1], f"... and {hidden} more (all of them with --json)"]
    return Text("\n".join(lines))


def flatten(values: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    """``(dotted path, value)`` for every leaf of nested mappings; an empty mapping is a leaf.

    >>> flatten({"a": {"b": 1, "c": {}}, "d": [1]})
    [('a.b', 1), ('a.c', {}), ('d', [1])]
    """
    leaves: list[tuple[str, Any]] = []
    for key, value in values.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            leaves.extend(flatten(value, path))
        else:
            leaves.append((path, value))
    return leaves


def brief(value: Any) -> str:
    """A value short enough for one cell: numbers rounded, mappings by their keys, long lists by their size.

    >>> brief({"config": {"name": "x"}, "symbols": ["EURUSD"], "device": None})
    '{config, symbols, device}'
    >>> brief({f"k{i}": i for i in range(6)})
    '{k0, k1, k2, k3, ... 6 keys}'
    """
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, float):
        return number(value)
    if isinstance(value, Mapping):
        keys = [str(key) for key in value]
        shown = ", ".join(keys[:4]) + (f", ... {len(keys)} keys" if len(keys) > 4 else "")
        return "{" + shown + "}"
    if isinstance(value, list | tuple):
        return f"[{len(value)} items]" if len(value) > 4 else "[" + ", ".join(brief(item) for item in value) + "]"
    return str(value)


def performance_panel(result: StrategyResult | TrainingPerformance, operation_id: str) -> Panel:
    """A finished strategy training at a glance: how training went, how the model scored on the test split.

    ``result`` is the training's result (see :func:`~trainops.schemas.training.strategy_result`) or its
    performance.
    """
    training, test, model, data = result.training_metrics, result.test_metrics, result.model_info, result.data
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    epochs = f"{training.epochs_completed} of {_count(training.epochs_planned)}"
    if training.early_stopped:
        epochs += " (early stopped)"
    grid.add_row("epochs", epochs)
    if training.best_epoch is not None:
        grid.add_row("best epoch", f"{training.best_epoch} ({training.monitor} {number(training.best_value)})")
    grid.add_row(
        "final",
        f"train loss {number(training.final_train_loss)}, val loss {number(training.final_val_loss)}, "
        f"val accuracy {_percent(training.final_val_accuracy)}",
    )
    grid.add_row(
        "test",
        f"accuracy {_percent(test.test_accuracy)}, precision {number(test.precision)}, "
        f"recall {number(test.recall)}, F1 {number(test.f1_score)} (macro), "
        f"loss {number(test.test_loss)}",
    )
    if test.per_class:
        grid.add_row(
            "per class",
            ", ".join(f"{name} F1 {number(item.f1)} (n={item.support})" for name, item in test.per_class.items()),
        )
    rows = data.rows
    if rows.train or rows.validation or rows.test:
        grid.add_row("rows", f"train {rows.train:,}, validation {rows.validation:,}, test {rows.test:,}")
    if data.class_balance:
        grid.add_row(
            "labels", ", ".join(f"{name} {_percent(share.fraction)}" for name, share in data.class_balance.items())
        )
    grid.add_row(
        "model",
        f"{model.architecture}, {_count(model.parameters_count)} parameters, "
        f"{number(model.model_size_mb)} MB, {_count(model.input_size)} features, on {model.device}",
    )
    if data.constant_features:
        grid.add_row(
            "never vary",
            Text(
                f"{', '.join(data.constant_features)}: one value over every training row, nothing to learn "
                "(a fuzzy set no bar reaches?)",
                style="yellow",
            ),
        )
    minutes = training.training_time_minutes
    if minutes is not None:
        grid.add_row("time", f"{minutes * 60:.1f} s training, {training.samples_per_second or 0:,.0f} samples/s")
    return Panel(grid, title=f"performance of {operation_id}", title_align="left")


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _percent(value: float | None) -> str:
    """``46.8%``; ``-`` when unknown, ``NaN``/``Infinity`` spelled as :func:`number` does."""
    if value is None or not math.isfinite(value):
        return number(value)
    return f"{value:.1%}"


def metric_columns(epochs: Sequence[EpochRecord]) -> list[str]:
    """The standard metrics any epoch reported, then custom ones, in first-seen order."""
    standard = [name for name in STANDARD_METRICS if any(record.value(name) is not None for record in epochs)]
    custom: dict[str, None] = {}
    for record in epochs:
        custom.update(dict.fromkeys(record.metrics))
    return standard + list(custom)


def epoch_row(record: EpochRecord, columns: Sequence[str]) -> list[str]:
    duration = f"{record.duration:.2f}s" if record.duration is not None else "-"
    return [str(record.epoch), *(number(record.value(name)) for name in columns), duration]


def epochs_table(epochs: Sequence[EpochRecord], best_epoch: int | None = None) -> Table:
    columns = metric_columns(epochs)
    table = Table(title_justify="left")
    table.add_column("epoch", justify="right")
    for name in columns:
        table.add_column(name, justify="right")
    table.add_column("duration", justify="right")
    for record in epochs:
        table.add_row(*epoch_row(record, columns), style="bold green" if record.epoch == best_epoch else None)
    return table


def signal_text(signal: Signal) -> Text:
    text = Text(f"[{signal.rule}] ", style=SEVERITY_STYLE.get(signal.severity, ""))
    text.append(signal.message)
    return text


def diagnosis_panel(metrics: TrainingMetrics) -> Panel:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    best = (
        "-"
        if metrics.best_epoch is None
        else f"epoch {metrics.best_epoch} ({metrics.monitor} {number(metrics.best_value)})"
    )
    grid.add_row("best", best)
    grid.add_row("since improvement", f"{metrics.epochs_since_improvement} epoch(s)")
    trend = metrics.trend
    change = "" if trend.percent_change is None else f" {trend.percent_change:+.2f}%"
    span = "" if trend.from_epoch is None else f" over epochs {trend.from_epoch}-{trend.to_epoch}"
    noise = ", within its noise" if change and trend.direction is TrendDirection.FLAT and trend.within_noise else ""
    grid.add_row("trend", f"{trend.direction.value}{change}{span}{noise}")
    flags = [
        name
        for name, on in (
            ("overfitting", metrics.is_overfitting),
            ("plateau", metrics.is_plateaued),
            ("diverging", metrics.is_diverging),
        )
        if on
    ]
    recommendation = metrics.recommendation
    grid.add_row("verdict", verdict_text(flags, recommendation.action))
    if metrics.projection is not None:
        grid.add_row("projection", projection_text(metrics.projection))
    # the latest epoch: the last one shown, else (a diagnosis sent without its epochs) the last its trend covers
    latest = metrics.epochs[-1].epoch if metrics.epochs else metrics.trend.to_epoch
    if metrics.forecast is not None:
        grid.add_row("forecast", forecast_text(metrics.forecast, latest))
    for signal in metrics.signals:
        grid.add_row("signal", signal_text(signal))
    action = recommendation.action
    grid.add_row("recommendation", Text(action.value, style=f"bold {ACTION_STYLE[action]}"))
    grid.add_row("", recommendation.reason)
    if recommendation.extend_by is not None:
        extension = recommendation.extend_forecast
        extended = f" ({forecast_text(extension, latest)})" if extension else ""
        grid.add_row("extend by", Text(f"{recommendation.extend_by} epoch(s){extended}", style="green"))
    return Panel(Group(grid), title="diagnosis", title_align="left")


def verdict_text(flags: Sequence[str], action: Action) -> Text:
    """The run's state in a word or two, never at odds with the recommendation below it: the problems seen, else
    ``healthy`` while continuing is worth it, else ``converged`` (nothing wrong, little left to gain)."""
    if flags:
        return Text(", ".join(flags), style="red")
    if action is Action.CONTINUE:
        return Text("healthy", style="green")
    return Text("converged: little left to gain", style="yellow")


def forecast_text(forecast: Forecast, latest_epoch: int | None = None) -> str:
    """``0.2086 by epoch 99 (20-80%: 0.2050 to 0.2086)``: the projected best with its band.

    A projected best at an epoch the run has already reached (``latest_epoch``) is its best so far, not a prediction
    about a past epoch: ``0.9733, the best so far (epoch 5): no new best expected``, as the dashboard words it.

    >>> from trainops.core.forecast import forecast as project
    >>> forecast_text(project([(epoch, 0.0) for epoch in range(8)], mode="max", epochs_left=22))
    '0 unmoved since epoch 0 (20-80%: 0 to 0.2225)'
    >>> past_its_best = [(0, 0.5), (1, 0.8), (2, 0.9), (3, 0.97), (4, 0.96), (5, 0.95), (6, 0.94)]
    >>> forecast_text(project(past_its_best, mode="max", epochs_left=10), latest_epoch=6)
    '0.9700, the best so far (epoch 3): no new best expected'
    """
    low, high = sorted((forecast.best_value_q20, forecast.best_value_q80))
    band = "" if low == high else f" (20-80%: {number(low)} to {number(high)})"
    if forecast.method == "best_so_far":
        where = " best so far"
    elif forecast.method == "unmoved":
        where = f" unmoved since epoch {forecast.best_epoch}"
    elif latest_epoch is not None and forecast.best_epoch <= latest_epoch:
        where = f", the best so far (epoch {forecast.best_epoch}): no new best expected"
    else:
        where = f" by epoch {forecast.best_epoch}"
    return f"{number(forecast.best_value)}{where}{band}"


def projection_text(projection: Signal) -> Text:
    """``+2.7% over 20 epoch(s) left (needs > 1%)``: what continuing is projected to gain, green when worth it; a
    stop not yet confirmed says how many evaluations in a row have said it.

    >>> from trainops.core import SignalRule
    >>> waiting = Signal(
    ...     rule=SignalRule.PROJECTED_IMPROVEMENT, severity="info", message="...",
    ...     parameters={"min_improvement_pct": 1.0, "confirm_epochs": 2},
    ...     evidence={"projected_improvement_pct": 0.2, "epochs_left": 30, "worth_continuing": False,
    ...               "stop_evaluations_in_a_row": 1, "confirmed": False},
    ... )
    >>> projection_text(waiting).plain
    '+0.2% over 30 epoch(s) left (needs > 1.0%); stop said 1 of 2 times in a row'

    A gain overruled because the validation loss backs the stall says so:

    >>> lucky = waiting.model_copy(update={"severity": "warning", "evidence": {
    ...     "projected_improvement_pct": 6.1, "epochs_left": 69, "worth_continuing": True, "stall_backed": True,
    ...     "val_loss_evaluations_since_best": 25}})
    >>> text = projection_text(lucky)
    >>> text.plain, str(text.style)
    ('+6.1% over 69 epoch(s) left (needs > 1.0%); overruled: val_loss has not improved for 25 either', 'yellow')
    """
    evidence, parameters = projection.evidence, projection.parameters
    gain = evidence.get("projected_improvement_pct")
    gain_text = f"{gain:+.1f}%" if isinstance(gain, int | float) else "?"
    worth = evidence.get("worth_continuing") is True and evidence.get("stall_backed") is not True
    waiting = ""
    if evidence.get("confirmed") is False:
        waiting = (
            f"; stop said {evidence.get('stop_evaluations_in_a_row')} of {parameters.get('confirm_epochs')} times "
            "in a row"
        )
    if evidence.get("stall_backed") is True:
        waiting = f"; overruled: val_loss has not improved for {evidence.get('val_loss_evaluations_since_best')} either"
    return Text(
        f"{gain_text} over {evidence.get('epochs_left')} epoch(s) left "
        f"(needs > {parameters.get('min_improvement_pct')}%){waiting}",
        style="green" if worth else "yellow",
    )


def policy_text(policy: MonitorPolicy) -> str:
    """The metric judged and its direction, then only the settings that differ from the defaults."""
    changed = policy.model_dump(exclude_defaults=True, exclude={"monitor", "mode"})
    settings = ", ".join(f"{name}={brief(value)}" for name, value in changed.items()) or "default settings"
    return f"{policy.monitor} ({policy.resolved_mode}), {settings}"


def replay_panel(operation_id: str, replay: Replay) -> Panel:
    """Where a replayed policy would have stopped the run, why, and what the stop would have kept and saved."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    grid.add_row("policy", policy_text(replay.policy))
    planned = f" of {replay.total_epochs_planned} planned" if replay.total_epochs_planned else ""
    grid.add_row("replayed", f"{replay.epochs_replayed} epoch(s){planned}")
    stop = next((step for step in replay.steps if step.epoch == replay.stop_epoch), None)
    if stop is None:
        last = f" through epoch {replay.steps[-1].epoch}" if replay.steps else ""
        grid.add_row("would stop", Text(f"never: it says continue{last}", style="green"))
    else:
        grid.add_row(
            "would stop", Text(f"at epoch {stop.epoch} ({stop.action.value})", style=ACTION_STYLE[stop.action])
        )
        grid.add_row("why", replay.stop_reason or "-")
        grid.add_row("restore", "-" if replay.restore_epoch is None else f"epoch {replay.restore_epoch}")
        grid.add_row("saved", f"{replay.epochs_saved} epoch(s)")
    return Panel(grid, title=f"dry run on {operation_id}", title_align="left")


def replay_table(
    steps: Sequence[ReplayStep], stop_epoch: int | None, *, title: str, one_line_within: int | None = None
) -> Table:
    """One row per step: the action, the epoch it would restore, the rules that fired and the reason.

    With ``one_line_within`` (a terminal width) every row is one line, for a row per epoch: the reason is cut to
    what the other columns leave, and left out when that is too little to read.
    """
    rows = [
        [
            str(step.epoch),
            step.action.value,
            "-" if step.restore_epoch is None else str(step.restore_epoch),
            ", ".join(step.rules) or "-",
        ]
        for step in steps
    ]
    headings = ["epoch", "action", "restore", "rules"]
    reason_width: int | None = None
    if one_line_within is not None:
        widths = [max([len(heading), *(len(row[i]) for row in rows)]) for i, heading in enumerate(headings)]
        # five columns: a space either side of each, a border after each and one before the first
        reason_width = one_line_within - sum(widths) - 3 * 5 - 1
    show_reason = reason_width is None or reason_width >= 20
    table = Table(title=title, title_justify="left")
    table.add_column("epoch", justify="right", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("restore", justify="right", no_wrap=True)
    table.add_column("rules", no_wrap=reason_width is not None)
    if show_reason:
        table.add_column("reason", no_wrap=reason_width is not None)
    for step, (epoch, action, restore, rules) in zip(steps, rows, strict=True):
        cells: list[str | Text] = [epoch, Text(action, style=ACTION_STYLE[step.action]), restore, rules]
        if show_reason:
            reason = Text(step.reason)
            if reason_width is not None:
                reason.truncate(reason_width, overflow="ellipsis")
            cells.append(reason)
        table.add_row(*cells, style="bold" if step.epoch == stop_epoch else None)
    return table
