"""One epoch of training, as reported by any training loop."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, model_validator

from trainops.core.json_types import JsonTyped
from trainops.core.numbers import Metric

METRIC_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-/]{0,127}$"
"""What a custom metric may be called (the OpenAPI document's ``propertyNames`` of a record's metrics)."""

_METRIC_NAME = re.compile(METRIC_NAME_PATTERN.removeprefix("^").removesuffix("$"))

STANDARD_METRICS: tuple[str, ...] = (
    "train_loss",
    "val_loss",
    "train_accuracy",
    "val_accuracy",
    "learning_rate",
)

FIELD_METRICS = frozenset({*STANDARD_METRICS, "duration"})
"""Metrics that are fields of :class:`EpochRecord` rather than entries of its ``metrics``."""

RESERVED_NAMES = frozenset({*STANDARD_METRICS, "epoch", "step", "duration", "timestamp", "metrics"})
"""Names a custom metric may not take: they would be shadowed by the record's own fields."""

MAX_EPOCH = 10_000_000

MAX_STEP = 2**53
"""The largest global step stored: every JSON reader (JavaScript's numbers included) holds it exactly."""


MIN_TIMESTAMP_YEAR = 1900
MAX_TIMESTAMP_YEAR = 9999


def check_timestamp(value: datetime) -> datetime:
    """``value`` as a timezone-aware time (a naive one is taken as UTC) when trainops can store it and read it back:
    its UTC time falls in years 1900-9999 (a time near the ends of ``datetime``'s range, such as year 1 at
    UTC+01:00, converts to year 0 in UTC, which no ``datetime`` holds).

    >>> check_timestamp(datetime(2025, 6, 10, 12, 0)).isoformat()
    '2025-06-10T12:00:00+00:00'
    """
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    year = utc_year(aware)
    if not MIN_TIMESTAMP_YEAR <= year <= MAX_TIMESTAMP_YEAR:
        raise ValueError(
            f"timestamp {value.isoformat()} is year {year} in UTC; send a time between the years "
            f"{MIN_TIMESTAMP_YEAR} and {MAX_TIMESTAMP_YEAR} (UTC), or leave it out to use the time it is stored"
        )
    return aware


def utc_year(value: datetime) -> int:
    """The year of the timezone-aware ``value`` in UTC: 0 or 10000 where that leaves ``datetime``'s range.

    >>> utc_year(datetime.fromisoformat("0001-01-01T00:00:00+01:00")), utc_year(datetime(2025, 1, 1, tzinfo=UTC))
    (0, 2025)
    """
    try:
        return value.astimezone(UTC).year
    except (OverflowError, ValueError):  # the conversion itself leaves datetime's range
        return 0 if value.year < MIN_TIMESTAMP_YEAR else MAX_TIMESTAMP_YEAR + 1


Timestamp = Annotated[
    datetime,
    AfterValidator(check_timestamp),
    # the years that stay within 1900-9999 whatever the offset (the document cannot say "in UTC")
    Field(
        json_schema_extra={"pattern": r"^(?:190[1-9]|19[1-9][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-"}
    ),
]
"""A time a record carries: timezone-aware, naive ones taken as UTC, in years 1900-9999 once in UTC."""


def check_metric_names(metrics: dict[str, float], reserved: frozenset[str]) -> dict[str, float]:
    """``metrics`` unchanged when every name is allowed and none is one of the record's own fields."""
    for name in metrics:
        if not _METRIC_NAME.fullmatch(name):  # not match(): its $ would let a trailing newline through
            raise ValueError(
                f"metric name {name!r} is not allowed: use letters, digits, '_', '.', '-', '/' "
                "(starting with a letter or '_', at most 128 characters)"
            )
        if name in reserved:
            raise ValueError(f"{name!r} is a standard field: send it at the top level, not inside 'metrics'")
    return metrics


def collect_custom_metrics(data: Any, known: Collection[str]) -> Any:
    """``data`` with its unknown top-level fields moved into ``metrics``, as a training script would expect
    ``{"epoch": 3, "f1": 0.8}`` to work (a model validator's input: anything else is returned unchanged)."""
    if not isinstance(data, dict):
        return data
    extra = {key: value for key, value in data.items() if key not in known}
    if not extra:
        return data
    given = data.get("metrics")
    if "metrics" in data and not isinstance(given, dict):
        return data  # let validation report the malformed 'metrics' (null too) instead of dropping or emptying it
    merged = dict(given or {})
    clashes = sorted(set(extra) & set(merged))
    if clashes:
        raise ValueError(f"metric(s) {clashes} sent both at the top level and inside 'metrics'")
    merged.update(extra)
    cleaned = {key: value for key, value in data.items() if key in known}
    cleaned["metrics"] = merged
    return cleaned


def _check_custom_names(metrics: dict[str, float]) -> dict[str, float]:
    return check_metric_names(metrics, RESERVED_NAMES)


def metric_names_schema(reserved: Collection[str]) -> dict[str, Any]:
    """The JSON schema of the names a record's custom metrics may take: the pattern, none of ``reserved``."""
    return {"pattern": METRIC_NAME_PATTERN, "not": {"enum": sorted(reserved)}}


def custom_metrics_schema(reserved: Collection[str]) -> Callable[[dict[str, Any]], None]:
    """A record's ``json_schema_extra``: the unknown top-level fields it moves into ``metrics`` are metrics too,
    named as those are (the document said ``additionalProperties: false`` before, which the server never was)."""

    def document(schema: dict[str, Any]) -> None:
        schema["additionalProperties"] = TypeAdapter(Metric).json_schema()
        schema["propertyNames"] = {"pattern": METRIC_NAME_PATTERN}
        schema["properties"]["metrics"]["propertyNames"] = metric_names_schema(reserved)

    return document


class EpochRecord(JsonTyped):
    """The metrics of one epoch.

    The standard fields cover what every loop reports; anything else (``f1``, ``grad_norm``, ...) goes in
    ``metrics``. Unknown top-level numeric fields are moved into ``metrics`` too, so ``{"epoch": 3, "f1": 0.8}``
    works as a training script would expect. Values may be NaN or infinite: that is evidence, not an error.

    ``epoch`` is whatever numbering the loop uses (Keras and Lightning count from 0); records of one operation
    are keyed by it, so re-sending an epoch replaces it. ``step`` is the framework's global step (optimizer
    steps or batches so far) at the epoch's end, when the loop counts them: it places the epoch on the per-step
    series (:class:`~trainops.core.steps.StepRecord`).
    """

    model_config = ConfigDict(extra="forbid", json_schema_extra=custom_metrics_schema(RESERVED_NAMES))

    MAX_CUSTOM_METRICS: ClassVar[int] = 256

    epoch: int = Field(ge=0, le=MAX_EPOCH)
    step: int | None = Field(
        None,
        ge=0,
        le=MAX_STEP,
        description="the framework's global step (optimizer steps or batches so far) at the end of this epoch",
    )
    train_loss: Metric | None = None
    val_loss: Metric | None = None
    train_accuracy: Metric | None = None
    val_accuracy: Metric | None = None
    learning_rate: Metric | None = None
    duration: float | None = Field(None, ge=0.0, allow_inf_nan=False, description="seconds the epoch took")
    timestamp: Timestamp | None = Field(None, description="when the epoch ended; the time it was stored by default")
    metrics: Annotated[dict[str, Metric], Field(max_length=MAX_CUSTOM_METRICS), AfterValidator(_check_custom_names)] = (
        Field(default_factory=dict)
    )

    @model_validator(mode="before")
    @classmethod
    def _collect_custom_metrics(cls, data: Any) -> Any:
        return collect_custom_metrics(data, cls.model_fields.keys())

    def value(self, name: str) -> float | None:
        """The value of a standard field or custom metric, ``None`` when this epoch did not report it."""
        if name in STANDARD_METRICS:
            standard: float | None = getattr(self, name)
            return standard
        if name == "duration":
            return self.duration
        return self.metrics.get(name)

    def metric_names(self) -> list[str]:
        """Names of every metric this record carries."""
        names = [name for name in STANDARD_METRICS if getattr(self, name) is not None]
        return names + list(self.metrics)
