"""The ``models`` table: named model versions. Rows become :class:`ModelRecord` before they leave."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import Engine, Row, and_, delete, insert, or_, select, text
from sqlalchemy.exc import IntegrityError

from trainops.errors import ConflictError, NotFoundError
from trainops.store.tables import models
from trainops.store.transactions import reading, writing


class ModelRecord(BaseModel):
    """One named model: which version directory it is, where it came from, and its headline metrics."""

    model_id: int
    name: str
    version_path: str
    strategy: str
    symbol: str
    timeframe: str
    source_operation: str | None
    description: str | None
    metrics: dict[str, Any]
    size_bytes: int
    created_at: datetime
    saved_at: datetime


_REPLACE_LOCK = 0x6D6F646C  # "modl": the class of the PostgreSQL advisory locks a replace takes, one per name


class ModelStore:
    """Named models in the database (their files live in the models directory)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def insert(self, record: ModelRecord, *, replace: bool = False) -> ModelRecord:
        """Register ``record`` under its name; with ``replace``, a model of that name is replaced.

        Raises:
            ConflictError: the name is taken and ``replace`` is false.
        """
        values = record.model_dump(exclude={"model_id"})
        values["name"] = record.name
        try:
            with writing(self.engine) as connection:
                if replace:
                    if connection.dialect.name == "postgresql":
                        # replaces of one name queue here (SQLite's writers queue already): two that deleted the
                        # same row would each insert, and the second break the name's uniqueness
                        connection.execute(
                            text("SELECT pg_advisory_xact_lock(:kind, hashtext(:name))"),
                            {"kind": _REPLACE_LOCK, "name": record.name},
                        )
                    connection.execute(delete(models).where(models.c.name == record.name))
                [seq] = connection.execute(insert(models).values(**values)).inserted_primary_key or (None,)
                # the row this call wrote, read in its transaction: another save of the name may follow at once
                return _record(connection.execute(select(models).where(models.c.seq == seq)).one())
        except IntegrityError:
            raise ConflictError(
                f'a model named {record.name!r} already exists; choose another name or send "overwrite": true',
                details={"model_name": record.name},
            ) from None

    def get(self, name: str) -> ModelRecord:
        with reading(self.engine) as connection:
            row = connection.execute(select(models).where(models.c.name == name)).first()
        if row is None:
            raise NotFoundError(
                f"no model named {name!r}; list them with GET /models or `trainops models list`",
                details={"model_name": name},
            )
        return _record(row)

    def list_models(
        self,
        *,
        symbol: str | None = None,
        timeframe: str | None = None,
        strategy: str | None = None,
        limit: int | None = None,
        after: tuple[datetime, int] | None = None,
    ) -> list[ModelRecord]:
        """Named models, the latest saved first; with ``after`` (a listed model's ``saved_at`` and ``model_id``)
        only those listed after it, so that pages stay stable while models are saved (keyset paging)."""
        query = select(models).order_by(models.c.saved_at.desc(), models.c.seq.desc())
        if after is not None:
            saved_at, seq = after
            query = query.where(
                or_(models.c.saved_at < saved_at, and_(models.c.saved_at == saved_at, models.c.seq < seq))
            )
        if limit is not None:
            query = query.limit(limit)
        if symbol:  # a model of several symbols is stored as "EURUSD+GOOG": any of them matches
            query = query.where(
                or_(
                    models.c.symbol == symbol,
                    *(
                        models.c.symbol.like(pattern.format(_like_literal(symbol)), escape="\\")
                        for pattern in ("{}+%", "%+{}", "%+{}+%")
                    ),
                )
            )
        if timeframe:
            query = query.where(models.c.timeframe == timeframe)
        if strategy:
            query = query.where(models.c.strategy == strategy)
        with reading(self.engine) as connection:
            return [_record(row) for row in connection.execute(query)]

    def delete(self, name: str) -> ModelRecord:
        """Remove the model ``name`` and return the row removed (read in the same transaction).

        Raises:
            NotFoundError: no such model.
        """
        with writing(self.engine) as connection:
            row = connection.execute(select(models).where(models.c.name == name)).first()
            if row is not None:
                connection.execute(delete(models).where(models.c.seq == row.seq))
        if row is None:
            return self.get(name)  # raises the usual NotFoundError
        return _record(row)

    def made_from(self, operation_id: str) -> list[str]:
        """The names of the models saved from ``operation_id``'s training, by name."""
        query = select(models.c.name).where(models.c.source_operation == operation_id).order_by(models.c.name)
        with reading(self.engine) as connection:
            return list(connection.execute(query).scalars())

    def references(self, version_path: str) -> int:
        """How many named models point at ``version_path``."""
        with reading(self.engine) as connection:
            rows = connection.execute(select(models.c.seq).where(models.c.version_path == version_path)).all()
        return len(rows)


def _record(row: Row[Any]) -> ModelRecord:
    return ModelRecord(
        model_id=row.seq,
        name=row.name,
        version_path=row.version_path,
        strategy=row.strategy,
        symbol=row.symbol,
        timeframe=row.timeframe,
        source_operation=row.source_operation,
        description=row.description,
        metrics=row.metrics or {},
        size_bytes=row.size_bytes,
        created_at=row.created_at,
        saved_at=row.saved_at,
    )


def _like_literal(text: str) -> str:
    """``text`` matched literally inside a LIKE pattern (its ``%``, ``_`` and ``\\`` escaped with ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
