"""The tables. Alembic migrations under ``migrations/`` create them; this module is their one definition."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
)
from sqlalchemy.dialects.postgresql import JSONB

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite would otherwise hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use datetime.now(UTC)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JsonDocument = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
"""JSON (JSONB on PostgreSQL); Python ``None`` is SQL NULL, so empty columns cost nothing to store or decode."""

operations = Table(
    "operations",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(64), nullable=False, unique=True),
    Column("operation_type", String(32), nullable=False),
    Column("status", String(16), nullable=False),
    Column("executor", String(32), nullable=False, server_default="external"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime),
    Column("completed_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("last_heartbeat", UTCDateTime),
    Column("progress", JsonDocument),
    Column("metadata", JsonDocument),
    # What people call and label a run (core/operation.py check_name, check_tags). The tags are kept twice: here,
    # in their order, so a read needs no join; and one row each in operation_tags, which the list filters use.
    Column("name", String(128)),
    Column("tags", JsonDocument),
    Column("notes", Text),
    Column("result", JsonDocument),
    Column("error", Text),
    Column("cancel_reason", Text),
    Column("cancel_requested_by", String(64)),
    Column("cancel_requested_at", UTCDateTime),
    Column("total_epochs", Integer),
    Column("epochs_completed", Integer, nullable=False, server_default="0"),
    Column("last_epoch", Integer),
    # Bumped by every change to the operation or its epochs: the cheap half of an ETag.
    Column("version", Integer, nullable=False, server_default="0"),
    # The per-step series' bookkeeping, so a write knows when to thin without counting rows (core/steps.py):
    # points stored, the highest step, the first step ever stored (the grid's origin), the grid's spacing.
    Column("step_count", Integer, nullable=False, server_default="0"),
    Column("last_step", BigInteger),
    Column("step_origin", BigInteger),
    Column("step_stride", BigInteger, nullable=False, server_default="1"),
    Index("ix_operations_status_created", "status", "created_at"),
    Index("ix_operations_type_created", "operation_type", "created_at"),
    Index("ix_operations_created_at", "created_at"),
    Index("ix_operations_name", "name"),
)

operation_tags = Table(
    "operation_tags",
    metadata,
    Column("operation_seq", Integer, ForeignKey("operations.seq", ondelete="CASCADE"), primary_key=True),
    Column("tag", String(64), primary_key=True),
    Index("ix_operation_tags_tag", "tag", "operation_seq"),
    sqlite_with_rowid=False,
)
"""One row per tag of an operation, written with ``operations.tags`` in one transaction. "Runs tagged a and b" is
then one indexed ``EXISTS`` per tag, the same SQL on SQLite and PostgreSQL: a JSON column alone would need
``json_each`` on SQLite (a scan of every row's document) and ``@>`` with a GIN index on PostgreSQL."""

epoch_metrics = Table(
    "epoch_metrics",
    metadata,
    Column("operation_seq", Integer, ForeignKey("operations.seq", ondelete="CASCADE"), primary_key=True),
    Column("epoch", Integer, primary_key=True),
    Column("step", BigInteger),  # the framework's global step at the epoch's end, when reported
    Column("train_loss", Float),
    Column("val_loss", Float),
    Column("train_accuracy", Float),
    Column("val_accuracy", Float),
    Column("learning_rate", Float),
    Column("duration", Float),
    Column("timestamp", Float, nullable=False),  # seconds since the epoch, UTC: compact and sortable
    # The operation's version when this row was last written: readers that cached a history at version V
    # fetch only the rows with revision > V.
    Column("revision", Integer, nullable=False, server_default="0"),
    # Custom metrics, and standard ones that are NaN/infinite (SQLite stores NaN as NULL), as JSON whose
    # non-finite numbers are spelled "NaN" / "Infinity" / "-Infinity".
    Column("extra", JsonDocument),
    Column("non_finite", JsonDocument),
    sqlite_with_rowid=False,
)

step_metrics = Table(
    "step_metrics",
    metadata,
    Column("operation_seq", Integer, ForeignKey("operations.seq", ondelete="CASCADE"), primary_key=True),
    Column("step", BigInteger, primary_key=True),
    Column("epoch", Integer),
    Column("timestamp", Float, nullable=False),  # seconds since the epoch, UTC, as in epoch_metrics
    # Every metric of the step, as JSON whose non-finite numbers are spelled "NaN" / "Infinity" / "-Infinity".
    Column("metrics", JsonDocument),
    sqlite_with_rowid=False,
)
"""The per-step (batch) series, at most ``TRAINOPS_MAX_STEP_POINTS`` rows per operation (see core/steps.py)."""

STANDARD_COLUMNS: tuple[str, ...] = (
    "train_loss",
    "val_loss",
    "train_accuracy",
    "val_accuracy",
    "learning_rate",
)

models = Table(
    "models",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("version_path", Text, nullable=False),  # the version directory, relative to the models directory
    Column("strategy", String(64), nullable=False),
    Column("symbol", String(256), nullable=False),
    Column("timeframe", String(64), nullable=False),
    Column("source_operation", String(64)),
    Column("description", Text),
    Column("metrics", JsonDocument),  # the headline: training and test accuracy, F1, best epoch ...
    Column("size_bytes", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("saved_at", UTCDateTime, nullable=False),
    Index("ix_models_strategy", "strategy"),
    Index("ix_models_symbol_timeframe", "symbol", "timeframe"),
)
