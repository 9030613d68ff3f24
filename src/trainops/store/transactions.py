"""Transactions every store shares: reads, writes that take the write lock first, and database errors that
mean "try again" turned into the domain's 503."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError, OperationalError

from trainops.errors import ServiceUnavailableError
from trainops.store.engine import WRITE_OPTION

_UNWRITABLE = {
    "database or disk is full": "the disk holding it is full: free some space (deleting runs needs a little too)",
    "attempt to write a readonly database": "its file is read-only to this process: give it write access (and its "
    "folder, where SQLite keeps its journal)",
}
"""SQLite's words for a database that cannot take writes now, and what to do about it."""

_UNWRITABLE_SQLSTATES = {
    "53100": "the disk holding it is full: free some space (deleting runs needs a little too)",
    "25006": "the server takes no writes (a read-only replica, or a standby): point TRAINOPS_DATABASE_URL at the "
    "primary",
}
"""PostgreSQL's codes for the same: disk_full, read_only_sql_transaction."""

_LOCK_NOT_AVAILABLE = "55P03"
"""PostgreSQL's code for a lock waited on past ``lock_timeout`` (engine.py sets it to the busy timeout)."""


@contextmanager
def unavailable_as_domain_error() -> Iterator[None]:
    """A database that is locked past the busy timeout, unreachable, or that cannot take writes now (its disk is
    full, its file read-only) is a 503: the client may retry, and a reporting run keeps its records meanwhile."""
    try:
        yield
    except (DBAPIError, sqlite3.Error) as error:
        # sqlite3's own error when SQLite's BEGIN IMMEDIATE (issued on the driver, see engine.py) times out
        cause = error.orig if isinstance(error, DBAPIError) else error
        said = " ".join(str(cause).split()) or type(cause).__name__
        unwritable = _UNWRITABLE_SQLSTATES.get(str(getattr(cause, "sqlstate", ""))) or next(
            (problem for words, problem in _UNWRITABLE.items() if words in said), None
        )
        if unwritable is not None:
            raise ServiceUnavailableError(
                f"the database cannot be written: {unwritable}; nothing was changed ({said})"
            ) from None
        if not isinstance(error, OperationalError | sqlite3.OperationalError):
            raise
        if isinstance(cause, sqlite3.Error):
            if "locked" not in said and "busy" not in said:
                raise  # a missing table or a broken file is not a reason to retry
            hint = "another process held SQLite's write lock too long (PostgreSQL serves many writers)"
        elif str(getattr(cause, "sqlstate", "")) == _LOCK_NOT_AVAILABLE:
            hint = "another session held a lock on these rows past the lock timeout (pg_stat_activity shows which)"
        else:
            hint = "is the database server running, and reachable from here?"
        raise ServiceUnavailableError(
            f"the database is busy or unreachable ({said}); nothing was changed, try again: {hint}"
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
