"""Schema migrations with Alembic, run on trainops' own engine (no alembic.ini needed).

Checking that a schema is current is on the path of every command that opens the local database, so it reads
the ``alembic_version`` table with SQLAlchemy and compares it with :data:`SCHEMA_REVISION`; Alembic itself (about
0.1 s to import, more to read the migration scripts) is loaded only to migrate or to list the scripts.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from trainops.errors import ConfigurationError, InvalidInputError, ServiceUnavailableError
from trainops.store.engine import WRITE_OPTION
from trainops.store.tables import metadata

if TYPE_CHECKING:
    from alembic.config import Config

_MIGRATIONS = Path(__file__).parent / "migrations"
_VERSION_TABLE = "alembic_version"

SCHEMA_REVISION = "0004"
"""The newest migration's revision: what this trainops needs. A test keeps it equal to the scripts' head."""


def _config() -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str:
    """The head of the migration scripts (reads them with Alembic; :data:`SCHEMA_REVISION` is its cheap twin)."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "trainops ships at least one migration"
    return head


def current_revision(engine: Engine, *, serving: bool = False) -> str | None:
    """The revision the database is at; ``None`` for a database trainops never migrated.

    Args:
        serving: The database was opened before (a health check): a failure now is an outage, not a bad URL.

    Raises:
        ConfigurationError: the database cannot be opened (no server there, not a database file, ...).
        ServiceUnavailableError: with ``serving``, the database does not answer now.
    """
    try:
        with engine.connect() as connection:
            return _revision(connection)
    except (SQLAlchemyError, sqlite3.Error) as error:  # the first use of an engine: where a bad URL shows
        problem = " ".join(str(getattr(error, "orig", None) or error).split())
        if serving:
            raise ServiceUnavailableError(
                f"the database does not answer ({problem}); is its server running, and reachable from here?"
            ) from None
        raise ConfigurationError(
            f"cannot open the database {engine.url.render_as_string(hide_password=True)}: {problem}; check the "
            "database URL (TRAINOPS_DATABASE_URL, or --database-url) and, for PostgreSQL, that its server is running",
            details={"database_url": engine.url.render_as_string(hide_password=True)},
        ) from None


def _revision(connection: Connection) -> str | None:
    if not inspect(connection).has_table(_VERSION_TABLE):
        return None
    rows = connection.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}")).scalars().all()
    return rows[0] if len(rows) == 1 else None


def revisions() -> list[str]:
    """Every migration's revision, oldest first."""
    from alembic.script import ScriptDirectory

    return [script.revision for script in reversed(list(ScriptDirectory.from_config(_config()).walk_revisions()))]


_UPGRADE_LOCK = 0x747261696E6F7073  # "trainops" in ASCII: the PostgreSQL advisory lock key upgrades take
"""Held by an upgrade on PostgreSQL for its transaction: upgrades started together (every replica's start-up)
run one at a time, and the later ones find the schema current."""


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Bring the schema to ``revision``; returns the revision the database is at afterwards.

    Raises:
        InvalidInputError: ``revision`` names no migration (the message lists them), or an older one than the
            database is at.
    """
    return migrate(engine, revision)[1]


def migrate(engine: Engine, revision: str = "head") -> tuple[str | None, str]:
    """:func:`upgrade`, answering the revisions before and after, both read while holding the lock that makes
    concurrent upgrades take turns (so one that found the work done says so).

    Raises:
        InvalidInputError: ``revision`` names no migration, or an older one than the database is at.
        ConfigurationError: a newer trainops migrated the database; or it cannot be opened or migrated.
    """
    from alembic import command

    known = revisions()
    if revision != "head" and revision not in known:
        raise InvalidInputError(
            f"no migration has revision {revision!r}: use head (the newest) or one of {', '.join(known)}",
            details={"revision": revision, "revisions": known},
        )
    current_revision(engine)  # a database that cannot be opened says so as every command does: a bad URL
    config = _config()
    try:
        # The write option makes SQLite take its lock first, and PostgreSQL takes an advisory lock: processes
        # starting together migrate one at a time; the later ones find the schema current and do nothing.
        with engine.connect() as connection:
            connection.execution_options(**{WRITE_OPTION: True})
            with connection.begin():
                if engine.dialect.name == "postgresql":
                    # A migration waits its turn however long the one before takes (no lock timeout on that
                    # lock), then takes its table locks within the usual timeout: it fails and changes nothing
                    # rather than stall every request queued behind its own lock.
                    timeout = connection.execute(text("SHOW lock_timeout")).scalar_one()
                    connection.execute(text("SET LOCAL lock_timeout = 0"))
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _UPGRADE_LOCK})
                    connection.execute(text("SELECT set_config('lock_timeout', :value, true)"), {"value": timeout})
                before = _checked_revision(connection)
                if before is not None and revision != "head" and known.index(revision) < known.index(before):
                    raise InvalidInputError(
                        f"the database is at revision {before}, past {revision}: trainops does not downgrade",
                        details={"revision": revision, "current": before},
                    )
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                after = _revision(connection) or ""
    except (SQLAlchemyError, sqlite3.Error) as error:
        problem = " ".join(str(getattr(error, "orig", None) or error).split())
        raise ConfigurationError(
            f"could not migrate {engine.url.render_as_string(hide_password=True)}: {problem}; nothing was changed "
            "(a migration runs in one transaction): try again"
        ) from None
    return before, after


def _checked_revision(connection: Connection) -> str | None:
    """The database's revision (``None``: never migrated), refusing a database trainops cannot migrate: a newer
    trainops migrated it, or it is another application's.

    The tables are read before the revision, in two statements that may see two states of the database: a first
    migration that another process commits in between then shows its revision, never its tables without it (which
    would read as another application's tables).

    Another application's database is told apart by its tables: one migrated by Alembic for something else (an
    MLflow tracking database) has a revision trainops never wrote and no ``operations`` table; one whose tables
    share trainops' names but carry no revision of trainops' would have them overwritten. A database that only
    holds other tables is used: trainops' tables sit beside them, as MLflow's would.
    """
    tables = set(inspect(connection).get_table_names())
    current = _revision(connection)
    if current is None:
        clashing = sorted(tables & set(metadata.tables))
        if clashing:
            raise ConfigurationError(
                f"the database already has tables named {', '.join(clashing)} that trainops did not create (it "
                "has no trainops schema revision): it belongs to another application; give trainops a database of "
                "its own (TRAINOPS_DATABASE_URL)",
                details={"tables": clashing},
            )
        return None
    if current in revisions():
        return current
    if "operations" not in tables:
        raise ConfigurationError(
            f"the database holds another application's schema (Alembic revision {current}, no trainops tables): "
            "give trainops a database of its own (TRAINOPS_DATABASE_URL)",
            details={"revision": current},
        )
    raise ConfigurationError(
        f"the database is at schema revision {current}, which this trainops does not know (it knows up to "
        f"{SCHEMA_REVISION}): a newer trainops migrated it; upgrade trainops, or use another database "
        "(TRAINOPS_DATABASE_URL)",
        details={"revision": current, "known": SCHEMA_REVISION},
    )


def ensure_schema(engine: Engine, *, auto_migrate: bool) -> None:
    """Make sure the schema is current: migrate when allowed, else say how to."""
    current = current_revision(engine)
    if current == SCHEMA_REVISION:
        return
    if auto_migrate:
        upgrade(engine)  # refuses a database it cannot migrate, reading it under the migration lock
        return
    with engine.connect() as connection:
        current = _checked_revision(connection)
    if current == SCHEMA_REVISION:  # another process migrated it since the first look
        return
    raise ConfigurationError(
        f"the database schema is at revision {current or 'none'} but trainops needs {SCHEMA_REVISION}: "
        "run `trainops db upgrade` against it first"
    )
