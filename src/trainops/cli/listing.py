"""What ``trainops ops list`` shows: the runs table, and the times its ``--since``/``--until`` take."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from rich import box
from rich.cells import cell_len
from rich.table import Table
from rich.text import Text

from trainops.cli.render import number, status_text, when
from trainops.core.metric_definitions import definition_of
from trainops.core.operation import Operation
from trainops.errors import InvalidInputError
from trainops.schemas.operations import BestValue, ListedOperation, ListedOperationPage

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


BEST_WIDTH = 16
"""The best column's width at most: the value whole, the metric's name cut first (``83.0% val_accur…``)."""

CUT_FLOOR = 6
"""A name or strategy is cut to no fewer columns than this (``mean_…``): a terminal with less room left for them
is too narrow for the table, which Rich then cuts column by column."""

_HEADINGS = ("id", "name", "status", "strategy/task", "best", "epochs", "took", "created")


def runs_table(page: ListedOperationPage, width: int = 120) -> Table:
    """One row per run: id, name, status, strategy or task, best value of its primary metric, epochs, duration
    (``took``) and creation time, for a terminal ``width`` columns wide. Names and strategies show whole where they
    fit; where they do not, the longer of them is cut first, with an ellipsis, and the other columns stay whole."""
    shown = f"{page.offset + 1}-{page.offset + len(page.items)}"
    table = Table(
        title=f"{page.total} operation(s), {page.active} active"
        + (f" (showing {shown})" if page.total > len(page.items) else ""),
        title_justify="left",
        box=box.SIMPLE_HEAD,  # its column divider is a space: one between columns, no padding needed
        padding=(0, 0),
        show_edge=False,
    )
    rows = [_run_row(operation) for operation in page.items]
    wanted = {heading: max([len(heading)] + [_width(row[i]) for row in rows]) for i, heading in enumerate(_HEADINGS)}
    wanted["best"] = min(wanted["best"], BEST_WIDTH)
    cut_first = ("name", "strategy/task")
    others = sum(wanted[heading] for heading in _HEADINGS if heading not in cut_first) + len(_HEADINGS) - 1  # spaces
    cut = cut_to_fit(width - others, [wanted[heading] for heading in cut_first], CUT_FLOOR)
    table.add_column("id", no_wrap=True, min_width=34)
    table.add_column("name", no_wrap=True, overflow="ellipsis", max_width=cut)
    table.add_column("status", no_wrap=True)
    table.add_column("strategy/task", no_wrap=True, overflow="ellipsis", max_width=cut)
    table.add_column("best", no_wrap=True, overflow="ellipsis", max_width=BEST_WIDTH)
    table.add_column("epochs", no_wrap=True, justify="right")
    table.add_column("took", no_wrap=True, justify="right")
    table.add_column("created", no_wrap=True)
    for row in rows:
        table.add_row(*row)
    return table


def _run_row(operation: ListedOperation) -> list[str | Text]:
    """The cells of ``operation``'s row, under :data:`_HEADINGS` (what the user wrote as Text: printed as written)."""
    epochs = str(operation.epochs_completed)
    if operation.total_epochs:
        epochs += f"/{operation.total_epochs}"
    return [
        operation.operation_id,
        Text(operation.name or "-"),
        status_text(operation.status),
        Text(what_text(operation)),
        best_text(operation.best, operation),
        epochs,
        duration_text(operation),
        when(operation.created_at, short=True),
    ]


def _width(cell: str | Text) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(cell)


def cut_to_fit(room: int, wanted: list[int], floor: int) -> int | None:
    """The width to cut columns that want ``wanted`` widths to, so that together they fit ``room``: the widest
    cut first, none below ``floor``; ``None`` when they fit whole.

    >>> cut_to_fit(60, [34, 20], floor=8)  # they fit
    >>> cut_to_fit(40, [34, 20], floor=8)  # the longer one is cut
    20
    >>> cut_to_fit(20, [34, 20], floor=8)  # both are
    10
    >>> cut_to_fit(5, [34, 20], floor=8)  # a terminal too narrow for the table
    8
    """
    if sum(wanted) <= room:
        return None
    cut = max(wanted)
    while cut > floor and sum(min(width, cut) for width in wanted) > room:
        cut -= 1
    return cut


class SortOrder(StrEnum):
    """``--order``: the direction of a list, overriding its sort's own."""

    ASC = "asc"
    DESC = "desc"
