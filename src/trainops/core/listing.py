"""Finding runs again: the filters, sort orders and page cursors of an operation list.

Pure: the store turns an :class:`OperationFilter` and an :class:`OperationSort` into SQL; this module parses them
from what people type (``--sort best:val_loss``) and makes the opaque cursors that page through a list.

A cursor is keyset-based: it holds the last listed row's sort value and its row number (``seq``, which only grows),
so the next page starts strictly after that row. Runs created meanwhile sort before it (newest first) or after
(oldest first) but never shift the page boundary, so paging never skips nor repeats a run that existed when it
began (offsets do, under inserts). A cursor also holds a fingerprint of the filters and sort it was made for: used
with others it is refused rather than answering a page of another list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from trainops.core.metric_definitions import definition_of
from trainops.core.operation import OPERATION_TYPE_PATTERN, OperationStatus
from trainops.core.payload import check_text
from trainops.core.policy import Mode, mode_for
from trainops.errors import InvalidInputError

SortKey = Literal["created", "duration", "best"]
SortOrder = Literal["asc", "desc"]
SORT_CHOICES = ("created", "duration", "best:<metric>")
MAX_SEARCH_LENGTH = 256
MAX_METRIC_NAME_LENGTH = 128

CursorValue = str | float | None
"""A row's sort value in a cursor: a creation time (ISO 8601), a number (duration, best value) or null."""


class OperationFilter(BaseModel):
    """Which operations a list holds; every condition given must hold (tags: the run has all of them).

    ``name`` matches a run's name whole, ignoring case; ``q`` finds text (ignoring case) in its name, id, notes,
    strategy, task, symbol or tags; ``strategy``, ``symbol`` and ``timeframe`` match its metadata exactly;
    ``created_after`` and ``created_before`` bound its creation time (inclusive, exclusive).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    statuses: frozenset[OperationStatus] = frozenset()
    operation_type: str | None = Field(None, pattern=OPERATION_TYPE_PATTERN)
    name: str | None = Field(None, max_length=4 * 128)
    tags: tuple[str, ...] = ()
    q: str | None = Field(None, max_length=MAX_SEARCH_LENGTH)
    strategy: str | None = Field(None, max_length=1024)
    symbol: str | None = Field(None, max_length=256)
    timeframe: str | None = Field(None, max_length=64)
    created_after: datetime | None = None
    created_before: datetime | None = None

    def fingerprint(self) -> str:
        return self.model_dump_json()


@dataclass(frozen=True, slots=True)
class OperationSort:
    """The order of a list: by creation time, duration (start to end, or to the latest write while it runs) or a
    metric's best value over the run's epochs. Runs without the value (never started, never reported the metric)
    come last in either order; equal values keep the newest run first (oldest first in ascending order)."""

    key: SortKey = "created"
    descending: bool = True
    metric: str | None = None
    mode: Mode | None = None
    """With ``best``: ``min`` when lower values of the metric are better (its definition says so), else ``max``."""

    @property
    def spelling(self) -> str:
        """How people write it: ``created``, ``duration``, ``best:val_loss``."""
        return f"best:{self.metric}" if self.key == "best" else self.key


def parse_sort(sort: str | None = None, order: str | None = None) -> OperationSort:
    """The sort that ``sort`` and ``order`` name.

    ``created`` (the default) and ``duration`` list the newest and the longest first; ``best:<metric>`` lists the
    runs by the best value each reached of the metric, best first: lowest first for a loss or an error, highest
    first for a score, as the metric's definition says (``GET /metrics/definitions``). ``order`` (``asc`` or
    ``desc``) overrides the direction.

    >>> parse_sort("best:val_loss").descending, parse_sort("best:val_accuracy").descending
    (False, True)
    >>> parse_sort("created", "asc").descending
    False

    Raises:
        InvalidInputError: an unknown sort or order; the message lists the valid ones.
    """
    spelled = (sort or "created").strip()
    if order is not None and order not in ("asc", "desc"):
        raise InvalidInputError(
            f"order {order!r} is invalid: use asc or desc (or leave it out for the sort's natural order)",
            details={"order": order, "valid": ["asc", "desc"]},
        )
    if spelled in ("created", "duration"):
        descending = order != "asc"
        return OperationSort(key="created" if spelled == "created" else "duration", descending=descending)
    if spelled.startswith("best:"):
        metric = spelled.removeprefix("best:").strip()
        try:
            check_text(metric, "the metric")
        except ValueError as problem:
            raise InvalidInputError(str(problem)) from None
        if not 1 <= len(metric) <= MAX_METRIC_NAME_LENGTH:
            raise InvalidInputError(
                f"sort {spelled[:160]!r} needs a metric name of 1 to {MAX_METRIC_NAME_LENGTH} characters, "
                "e.g. best:val_loss",
                details={"sort": spelled[:160], "valid": list(SORT_CHOICES)},
            )
        higher = definition_of(metric)[1].higher_is_better
        mode: Mode = mode_for(metric) if higher is None else ("max" if higher else "min")
        descending = (mode == "max") if order is None else order == "desc"
        return OperationSort(key="best", descending=descending, metric=metric, mode=mode)
    raise InvalidInputError(
        f"sort {spelled[:160]!r} is not one trainops knows: use created (newest first), duration (longest "
        "first) or best:<metric> (best value first, e.g. best:val_loss)",
        details={"sort": spelled[:160], "valid": list(SORT_CHOICES)},
    )


@dataclass(frozen=True, slots=True)
class CursorPosition:
    """Where a page ended: the last listed row's sort value and row number."""

    value: CursorValue
    seq: int


def list_scope(filters: OperationFilter, sort: OperationSort) -> str:
    """What a cursor of the operation list of ``filters`` and ``sort`` is valid for."""
    return f"operations|{filters.fingerprint()}|{sort.spelling}|{sort.descending}"


def _fingerprint(scope: str) -> str:
    return hashlib.blake2b(scope.encode(), digest_size=8).hexdigest()


def encode_cursor(position: CursorPosition, scope: str) -> str:
    """The opaque cursor of the page after ``position`` in the list ``scope`` names (its filters and sort, see
    :func:`list_scope`)."""
    payload = {"v": position.value, "s": position.seq, "f": _fingerprint(scope)}
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, scope: str) -> CursorPosition:
    """The position a cursor made by :func:`encode_cursor` holds.

    Raises:
        InvalidInputError: not a cursor trainops made, or one made for other filters or another sort.
    """
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        payload: Any = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        value, seq, fingerprint = payload["v"], payload["s"], payload["f"]
        valid = (
            isinstance(seq, int)
            and not isinstance(seq, bool)
            and isinstance(fingerprint, str)
            and (value is None or isinstance(value, str | int | float))
            and not isinstance(value, bool)
        )
    except (ValueError, TypeError, KeyError, UnicodeEncodeError, binascii.Error):
        valid = False
    if not valid:
        raise InvalidInputError(
            "cursor is not one this list handed out: pass the next_cursor of the previous page unchanged "
            "(or leave cursor out for the first page)",
            details={"cursor": cursor[:200]},
        )
    if fingerprint != _fingerprint(scope):
        raise InvalidInputError(
            "cursor belongs to a list with other filters or another sort: keep them as they were for the first "
            "page, or leave cursor out to start again",
            details={"cursor": cursor[:200]},
        )
    if isinstance(value, int):
        value = float(value)
    return CursorPosition(value=value, seq=seq)
