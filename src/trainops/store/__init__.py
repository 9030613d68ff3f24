"""Storage: SQLAlchemy tables, Alembic migrations and the operation store."""

from trainops.store.engine import create_database_engine, parse_database_url
from trainops.store.migrate import current_revision, ensure_schema, head_revision, migrate, upgrade
from trainops.store.models import ModelRecord, ModelStore
from trainops.store.operations import OperationStore, OperationVersion

__all__ = [
    "ModelRecord",
    "ModelStore",
    "OperationStore",
    "OperationVersion",
    "create_database_engine",
    "current_revision",
    "ensure_schema",
    "head_revision",
    "migrate",
    "parse_database_url",
    "upgrade",
]
