"""Database engines: SQLite (WAL, several processes) by default, PostgreSQL in production."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from trainops.errors import ConfigurationError

WRITE_OPTION = "trainops_write"
"""Execution option marking a connection whose transaction writes (SQLite takes the write lock up front)."""


def parse_database_url(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigurationError(
            f"TRAINOPS_DATABASE_URL {url!r} is not a database URL; use e.g. "
            "sqlite:////path/trainops.db or postgresql+psycopg://user@host:5432/trainops"
        ) from None
    except ValueError as error:  # a port that is not a number
        raise ConfigurationError(
            f"TRAINOPS_DATABASE_URL has a port that is not a number ({error}); use e.g. "
            "postgresql+psycopg://user@host:5432/trainops"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    backend = parsed.get_backend_name()
    if backend not in ("sqlite", "postgresql", "postgres"):
        raise ConfigurationError(f"unsupported database {backend!r} in {shown}: trainops runs on sqlite or postgresql")
    if parsed.drivername in ("postgres", "postgresql", "postgresql+psycopg2"):
        # psycopg 3 is the supported driver; a bare postgresql:// URL (or postgres://, as hosts hand them out) too
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername not in ("sqlite", "sqlite+pysqlite", "postgresql+psycopg"):
        usual = "sqlite:////path/trainops.db" if backend == "sqlite" else "postgresql+psycopg://user@host/trainops"
        raise ConfigurationError(
            f"trainops does not use the driver {parsed.drivername!r} ({shown}); write {usual} (the driver it installs)"
        )
    if backend == "sqlite" and parsed.host:
        raise ConfigurationError(
            f"{shown} names a host ({parsed.host!r}), which a SQLite URL has none of: an absolute path takes four "
            f"slashes, sqlite:////{parsed.host}/{parsed.database or ''}"
        )
    return parsed


BUSY_TIMEOUT = 20.0
"""Seconds a SQLite writer (or any PostgreSQL statement, as its ``lock_timeout``) waits for another's lock before a
503: well inside the HTTP client's 30 s read timeout, so a client waiting on a locked database hears that (and
retries), not "the server did not answer"."""


def create_database_engine(url: str, *, busy_timeout: float = BUSY_TIMEOUT) -> Engine:
    """An engine for ``url``, tuned for trainops' workload of many small writes and frequent polls.

    SQLite runs in WAL mode so a trainer, a server and an MCP server in three processes can share one file:
    readers never block the writer. Each write transaction starts with ``BEGIN IMMEDIATE`` so two writers queue
    on the busy timeout (``busy_timeout`` seconds) instead of failing when one upgrades a read lock.
    """
    parsed = parse_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(parsed, busy_timeout)
    return _postgres_engine(parsed, busy_timeout)


def _postgres_engine(url: URL, lock_timeout: float) -> Engine:
    engine = create_engine(url, pool_pre_ping=True, pool_size=20, max_overflow=20)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # PostgreSQL waits for a lock for ever by default: a session that holds one (a stuck transaction, a
        # migration, someone's psql) would hang every request behind it. Waiting as long as SQLite's busy timeout
        # makes it the same retryable 503. Set per connection rather than as a startup option, which PgBouncer
        # refuses.
        with dbapi_connection.cursor() as cursor:
            cursor.execute(f"SET lock_timeout = {int(lock_timeout * 1000)}")
        dbapi_connection.commit()

    return engine


def _sqlite_engine(url: URL, busy_timeout: float) -> Engine:
    database = url.database
    if not database or database == ":memory:":
        raise ConfigurationError(
            "an in-memory SQLite database cannot be shared between threads and processes; give a file path, "
            "e.g. sqlite:////tmp/trainops.db"
        )
    folder = Path(database).expanduser().parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:  # a file where the folder should be (TRAINOPS_HOME=/etc/passwd), or no permission
        raise ConfigurationError(
            f"cannot create the database's folder {folder}: {error.strerror or error}; set TRAINOPS_HOME (or "
            "TRAINOPS_DATABASE_URL) to a folder trainops can write",
            details={"folder": str(folder)},
        ) from None
    # The pool matches the API's thread pool (40 workers) so busy servers reuse connections instead of opening
    # (and configuring) overflow ones per request.
    engine = create_engine(
        url, connect_args={"check_same_thread": False, "timeout": busy_timeout}, pool_size=40, max_overflow=10
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves, below
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Any) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        # Straight on the driver's connection: this runs for every transaction, and SQLAlchemy's statement
        # machinery would cost more than the statement.
        connection.connection.dbapi_connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")

    return engine
