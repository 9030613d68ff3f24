"""What ``trainops ops list`` shows: the runs table, and the times its ``--since``/``--until`` take."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from rich import box
from rich.table import Table
from rich.text import Text

from trainops.cli.render import number, status_text, when
from trainops.core.metric_definitions import definition_of
from trainops.core.operation import Operation
from trainops.errors import InvalidInputError
from trainops.schemas.operations import BestValue, ListedOperationPage

_AGO = re.compile(r"^(\d{1,6})\s*(m|h|d|w)$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_moment(text: str, option: str, now: datetime | None = None) -> datetime:
    """A time typed on the command line: ISO 8601 (``2026-12-01``, ``2026-12-01T09:30``, UTC unless a zone is
    given) or an age (``30m``, ``24h``, ``7d``, ``2w`` ago).

    >>> parse_moment("7d", "--since", datetime(2026, 12, 8, tzinfo=UTC)).isoformat()
    '2026-12-01T00:00:00+00:00'
    >>> parse_moment("2026-12-01", "--since").isoformat()
    '2026-12-01T00:00:00+00:00'
    """
    spelled = text.strip()
    age = _AGO.match(spelled)
    if age:
        count, unit = int(age.group(1)), age.group(2)
        return (now or datetime.now(UTC)) - timedelta(**{_UNITS[unit]: count})
    try:
        moment = datetime.fromisoformat(spelled)
    except ValueError:
        raise InvalidInputError(
            f"{option} {text!r} is not a time: use a date or time such as 2026-12-01 or 2026-12-01T09:30 (UTC "
            "unless it names a zone), or an age such as 30m, 24h, 7d, 2w"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def duration_text(operation: Operation, now: datetime | None = None) -> str:
    """How long the run took (``3m12s``, ``1h02m``, ``2d03h``), or has been running; ``-`` before it started."""
    if operation.started_at is None:
        return "-"
    end = operation.completed_at or (now or datetime.now(UTC))
    seconds = max(0, int((end - operation.started_at).total_seconds()))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    if seconds < 86400:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    return f"{seconds // 86400}d{seconds % 86400 // 3600:02d}h"


def best_text(best: BestValue | None, operation: Operation) -> str:
    """The best value of the run's primary metric as its definition shows it, then the metric
    (``83.0% val_accuracy``: a narrow column cuts the name, never the value)."""
    if best is None:
        return "-"
    shown = definition_of(best.metric, operation.metadata.task)[1].format
    if shown == "percent":
        value = f"{best.value:.1%}"
    elif shown == "int":
        value = f"{best.value:.0f}"
    else:
        value = number(best.value)
    return f"{value} {best.metric}"


def what_text(operation: Operation) -> str:
    """What the run trains: its strategy, else its task, else its type."""
    metadata = operation.metadata
    return metadata.strategy or (metadata.task.value if metadata.task else operation.operation_type)


def runs_table(page: ListedOperationPage) -> Table:
    """One row per run: id, name, status, strategy or task, best value of its primary metric, epochs, duration
    (``took``) and creation time, in 120 columns (long names and strategies cut with an ellipsis)."""
    shown = f"{page.offset + 1}-{page.offset + len(page.items)}"
    table = Table(
        title=f"{page.total} operation(s), {page.active} active"
        + (f" (showing {shown})" if page.total > len(page.items) else ""),
        title_justify="left",
        box=box.SIMPLE_HEAD,  # its column divider is a space: one between columns, no padding needed
        padding=(0, 0),
        show_edge=False,
    )
    table.add_column("id", no_wrap=True, min_width=34)
    table.add_column("name", no_wrap=True, overflow="ellipsis", max_width=18)
    table.add_column("status", no_wrap=True)
    table.add_column("strategy/task", no_wrap=True, overflow="ellipsis", max_width=13)
    table.add_column("best", no_wrap=True, overflow="ellipsis", max_width=16)
    table.add_column("epochs", no_wrap=True, justify="right")
    table.add_column("took", no_wrap=True, justify="right")
    table.add_column("created", no_wrap=True)
    for operation in page.items:
        epochs = str(operation.epochs_completed)
        if operation.total_epochs:
            epochs += f"/{operation.total_epochs}"
        table.add_row(
            operation.operation_id,
            Text(operation.name or "-"),
            status_text(operation.status),
            Text(what_text(operation)),
            best_text(operation.best, operation),
            epochs,
            duration_text(operation),
            when(operation.created_at, short=True),
        )
    return table


class SortOrder(StrEnum):
    """``--order``: the direction of a list, overriding its sort's own."""

    ASC = "asc"
    DESC = "desc"
