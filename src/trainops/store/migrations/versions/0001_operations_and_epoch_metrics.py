"""operations and epoch_metrics

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from trainops.store.tables import JsonDocument, UTCDateTime

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "operations",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("operation_type", sa.String(32), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("executor", sa.String(32), nullable=False, server_default="external"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("completed_at", UTCDateTime()),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("last_heartbeat", UTCDateTime()),
        sa.Column("progress", JsonDocument),
        sa.Column("metadata", JsonDocument),
        sa.Column("result", JsonDocument),
        sa.Column("error", sa.Text()),
        sa.Column("cancel_reason", sa.Text()),
        sa.Column("cancel_requested_by", sa.String(64)),
        sa.Column("cancel_requested_at", UTCDateTime()),
        sa.Column("total_epochs", sa.Integer()),
        sa.Column("epochs_completed", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_epoch", sa.Integer()),
        sa.Column("version", sa.Integer(), nullable=False, server_default="0"),
        sa.PrimaryKeyConstraint("seq", name="pk_operations"),
        sa.UniqueConstraint("id", name="uq_operations_id"),
    )
    op.create_index("ix_operations_status_created", "operations", ["status", "created_at"])
    op.create_index("ix_operations_type_created", "operations", ["operation_type", "created_at"])
    op.create_index("ix_operations_created_at", "operations", ["created_at"])
    op.create_table(
        "epoch_metrics",
        sa.Column("operation_seq", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("train_loss", sa.Float()),
        sa.Column("val_loss", sa.Float()),
        sa.Column("train_accuracy", sa.Float()),
        sa.Column("val_accuracy", sa.Float()),
        sa.Column("learning_rate", sa.Float()),
        sa.Column("duration", sa.Float()),
        sa.Column("timestamp", sa.Float(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("extra", JsonDocument),
        sa.Column("non_finite", JsonDocument),
        sa.ForeignKeyConstraint(
            ["operation_seq"],
            ["operations.seq"],
            name="fk_epoch_metrics_operation_seq_operations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("operation_seq", "epoch", name="pk_epoch_metrics"),
        sqlite_with_rowid=False,
    )


def downgrade() -> None:
    op.drop_table("epoch_metrics")
    op.drop_table("operations")
