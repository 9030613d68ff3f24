"""step_metrics: the per-step series; epoch_metrics.step: the global step at each epoch's end

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

``step`` becomes a field of an epoch record, so it can no longer be a custom metric. An epoch that logged a
custom ``step`` metric keeps it: as the new column when it is a whole number in range (what a training loop
logging its global step meant), else renamed ``step_metric`` (``step_metric_`` and so on if that name is
taken), so no value is lost and every stored epoch stays readable.
"""

import math
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from trainops.store.tables import JsonDocument

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MAX_STEP = 2**53  # trainops.core.epoch.MAX_STEP when this migration was written

_epochs = sa.table(
    "epoch_metrics",
    sa.column("operation_seq", sa.Integer()),
    sa.column("epoch", sa.Integer()),
    sa.column("step", sa.BigInteger()),
    sa.column("extra", JsonDocument),
)


def _as_step(value: Any) -> int | None:
    """A stored custom ``step`` value as a global step, or ``None`` when it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None  # "NaN" and the other spellings of non-finite numbers
    if not math.isfinite(value) or value != int(value) or not 0 <= value <= _MAX_STEP:
        return None
    return int(value)


def _free_name(extra: dict[str, Any]) -> str:
    name = "step_metric"
    while name in extra:
        name += "_"
    return name


def _move_custom_steps() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        holds_step = sa.text("(extra -> 'step') IS NOT NULL")
    else:
        holds_step = sa.text("json_type(extra, '$.step') IS NOT NULL")
    rows = connection.execute(
        sa.select(_epochs.c.operation_seq, _epochs.c.epoch, _epochs.c.extra).where(
            _epochs.c.extra.is_not(None), holds_step
        )
    ).all()
    for row in rows:
        extra = dict(row.extra)
        value = extra.pop("step")
        step = _as_step(value)
        if step is None:
            extra[_free_name(extra)] = value
        connection.execute(
            sa.update(_epochs)
            .where(_epochs.c.operation_seq == row.operation_seq, _epochs.c.epoch == row.epoch)
            .values(step=step, extra=extra or None)
        )


def upgrade() -> None:
    op.add_column("epoch_metrics", sa.Column("step", sa.BigInteger()))
    _move_custom_steps()
    op.add_column("operations", sa.Column("step_count", sa.Integer(), nullable=False, server_default="0"))
    op.add_column("operations", sa.Column("last_step", sa.BigInteger()))
    op.add_column("operations", sa.Column("step_origin", sa.BigInteger()))
    op.add_column("operations", sa.Column("step_stride", sa.BigInteger(), nullable=False, server_default="1"))
    op.create_table(
        "step_metrics",
        sa.Column("operation_seq", sa.Integer(), nullable=False),
        sa.Column("step", sa.BigInteger(), nullable=False),
        sa.Column("epoch", sa.Integer()),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("metrics", JsonDocument),
        sa.ForeignKeyConstraint(
            ["operation_seq"],
            ["operations.seq"],
            name="fk_step_metrics_operation_seq_operations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("operation_seq", "step", name="pk_step_metrics"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("step_metrics")
    for name in ("step_stride", "step_origin", "last_step", "step_count"):
        op.drop_column("operations", name)
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(_epochs.c.operation_seq, _epochs.c.epoch, _epochs.c.extra, _epochs.c.step).where(
            _epochs.c.step.is_not(None)
        )
    ).all()
    for row in rows:  # the global step goes back to being a custom metric
        connection.execute(
            sa.update(_epochs)
            .where(_epochs.c.operation_seq == row.operation_seq, _epochs.c.epoch == row.epoch)
            .values(extra={**(row.extra or {}), "step": row.step})
        )
    op.drop_column("epoch_metrics", "step")
