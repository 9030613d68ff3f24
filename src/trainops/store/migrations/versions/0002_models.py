"""models: named model versions of the registry

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from trainops.store.tables import JsonDocument, UTCDateTime

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version_path", sa.Text(), nullable=False),
        sa.Column("strategy", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(256), nullable=False),
        sa.Column("timeframe", sa.String(64), nullable=False),
        sa.Column("source_operation", sa.String(64)),
        sa.Column("description", sa.Text()),
        sa.Column("metrics", JsonDocument),
        sa.Column("size_bytes", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("saved_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_models"),
        sa.UniqueConstraint("name", name="uq_models_name"),
    )
    op.create_index("ix_models_strategy", "models", ["strategy"])
    op.create_index("ix_models_symbol_timeframe", "models", ["symbol", "timeframe"])


def downgrade() -> None:
    op.drop_table("models")
