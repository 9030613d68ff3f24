"""Wire types of ``GET /health``."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class Health(BaseModel):
    status: str
    version: str
    database: str
    schema_revision: str | None
    time: datetime
