"""Wire types of ``GET /health``, and the database schema answers of ``trainops db current`` and ``db upgrade``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, computed_field


class Health(BaseModel):
    status: str
    version: str
    database: str
    schema_revision: str | None
    time: datetime


class DatabaseStatus(BaseModel):
    """The schema revision a database is at and the one this trainops needs."""

    revision: str | None
    """``None`` for a database trainops never migrated (empty, or another application's)."""
    required: str
    """The newest migration this trainops ships: the revision it needs to open the database."""

    @computed_field  # type: ignore[prop-decorator]
    @property
    def current(self) -> bool:
        """Whether the database is at the required revision (if not: ``trainops db upgrade``)."""
        return self.revision == self.required


class DatabaseUpgrade(BaseModel):
    """What a schema upgrade did: the revision before and after (equal when there was nothing to do)."""

    database: str
    """The database's URL with any password hidden."""
    from_revision: str | None
    """``None`` for a database trainops had never migrated."""
    to_revision: str
