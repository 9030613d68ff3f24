"""operations.name, tags and notes, and operation_tags: runs people can name, label and find again

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-05

A run that recorded a ``name`` in its metadata before names had a column (the dashboard titled runs by it) gets it
as its name when it is one (a string of 1-128 characters on one line, surrounding spaces dropped); its metadata is
left as it was.
"""

import unicodedata
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from trainops.store.tables import JsonDocument

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_MAX_NAME = 128  # trainops.core.operation.MAX_NAME_LENGTH when this migration was written

_operations = sa.table(
    "operations",
    sa.column("seq", sa.Integer()),
    sa.column("metadata", JsonDocument),
    sa.column("name", sa.String(_MAX_NAME)),
)


def _as_name(value: Any) -> str | None:
    """A stored ``metadata.name`` as a run's name, or ``None`` when it cannot be one."""
    if not isinstance(value, str):
        return None
    name = value.strip()
    if not 1 <= len(name) <= _MAX_NAME or "\x00" in name:
        return None
    if any(unicodedata.category(ch) in {"Cc", "Cf", "Zl", "Zp", "Cs"} for ch in name):
        return None
    return name


def _copy_metadata_names() -> None:
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        has_name = sa.text("(metadata -> 'name') IS NOT NULL")
    else:
        has_name = sa.text("json_type(metadata, '$.name') IS NOT NULL")
    rows = connection.execute(
        sa.select(_operations.c.seq, _operations.c.metadata).where(_operations.c.metadata.is_not(None), has_name)
    ).all()
    for row in rows:
        name = _as_name((row.metadata or {}).get("name"))
        if name is not None:
            connection.execute(sa.update(_operations).where(_operations.c.seq == row.seq).values(name=name))


def upgrade() -> None:
    op.add_column("operations", sa.Column("name", sa.String(_MAX_NAME)))
    op.add_column("operations", sa.Column("tags", JsonDocument))
    op.add_column("operations", sa.Column("notes", sa.Text()))
    op.create_index("ix_operations_name", "operations", ["name"])
    op.create_table(
        "operation_tags",
        sa.Column("operation_seq", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(64), nullable=False),
        sa.ForeignKeyConstraint(
            ["operation_seq"],
            ["operations.seq"],
            name="fk_operation_tags_operation_seq_operations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("operation_seq", "tag", name="pk_operation_tags"),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_operation_tags_tag", "operation_tags", ["tag", "operation_seq"])
    _copy_metadata_names()


def downgrade() -> None:
    op.drop_index("ix_operation_tags_tag", table_name="operation_tags")
    op.drop_table("operation_tags")
    op.drop_index("ix_operations_name", table_name="operations")
    for name in ("notes", "tags", "name"):
        op.drop_column("operations", name)
