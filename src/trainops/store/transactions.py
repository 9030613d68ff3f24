"""Transactions every store shares: reads, writes that take the write lock first, and database errors that
mean "try again" turned into the domain's 503."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import OperationalError

from trainops.errors import ServiceUnavailableError
from trainops.store.engine import WRITE_OPTION


@contextmanager
def unavailable_as_domain_error() -> Iterator[None]:
    """A database that is locked past the busy timeout, or unreachable, is a 503 the client may retry."""
    try:
        yield
    except (OperationalError, sqlite3.OperationalError) as error:
        # sqlite3's own error when SQLite's BEGIN IMMEDIATE (issued on the driver, see engine.py) times out
        cause = error.orig if isinstance(error, OperationalError) else error
        if isinstance(cause, sqlite3.Error) and "locked" not in str(cause) and "busy" not in str(cause):
            raise  # a missing table or a broken file is not a reason to retry
        raise ServiceUnavailableError(
            f"the database is busy or unreachable ({str(cause).strip() or type(cause).__name__}); "
            "nothing was changed, try again (a long write by another process holds SQLite's lock: "
            "PostgreSQL serves many writers)"
        ) from None


@contextmanager
def reading(engine: Engine, *, snapshot: bool = False) -> Iterator[Connection]:
    """A read transaction; with ``snapshot`` its statements all see the database as of its first one.

    SQLite's read transactions are snapshots already (WAL). PostgreSQL's default, READ COMMITTED, lets each
    statement see what committed before it: a row and the rows it versions, read by two statements, could then
    disagree, so a snapshot read there is REPEATABLE READ (SQLAlchemy resets the level when the connection goes
    back to the pool).
    """
    with unavailable_as_domain_error(), engine.connect() as connection:
        if snapshot and engine.dialect.name == "postgresql":
            connection.execution_options(isolation_level="REPEATABLE READ")
        with connection.begin():
            yield connection


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction; on SQLite it begins with ``BEGIN IMMEDIATE`` (see ``engine.py``), so two writers
    queue for the lock instead of failing when one upgrades a read lock."""
    with unavailable_as_domain_error(), engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            yield connection
