"""Schema migrations with Alembic, run on trainops' own engine (no alembic.ini needed).

Checking that a schema is current is on the path of every command that opens the local database, so it reads
the ``alembic_version`` table with SQLAlchemy and compares it with :data:`SCHEMA_REVISION`; Alembic itself (about
0.1 s to import, more to read the migration scripts) is loaded only to migrate or to list the scripts.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import SQLAlchemyError

from trainops.errors import ConfigurationError, InvalidInputError
from trainops.store.engine import WRITE_OPTION

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


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; ``None`` for a database trainops never migrated.

    Raises:
        ConfigurationError: the database cannot be opened (no server there, not a database file, ...).
    """
    try:
        with engine.connect() as connection:
            if not inspect(connection).has_table(_VERSION_TABLE):
                return None
            rows = connection.execute(text(f"SELECT version_num FROM {_VERSION_TABLE}")).scalars().all()
    except (SQLAlchemyError, sqlite3.Error) as error:  # the first use of an engine: where a bad URL shows
        problem = str(getattr(error, "orig", None) or error).strip().splitlines()[0]
        raise ConfigurationError(
            f"cannot open the database {engine.url.render_as_string(hide_password=True)}: {problem}; check the "
            "database URL (TRAINOPS_DATABASE_URL, or --database-url) and, for PostgreSQL, that its server is running",
            details={"database_url": engine.url.render_as_string(hide_password=True)},
        ) from None
    return rows[0] if len(rows) == 1 else None


def revisions() -> list[str]:
    """Every migration's revision, oldest first."""
    from alembic.script import ScriptDirectory

    return [script.revision for script in reversed(list(ScriptDirectory.from_config(_config()).walk_revisions()))]


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Bring the schema to ``revision``; returns the revision the database is at afterwards.

    Raises:
        InvalidInputError: ``revision`` names no migration; the message lists them.
    """
    from alembic import command

    known = revisions()
    if revision != "head" and revision not in known:
        raise InvalidInputError(
            f"no migration has revision {revision!r}: use head (the newest) or one of {', '.join(known)}",
            details={"revision": revision, "revisions": known},
        )
    _refuse_newer(current_revision(engine))
    config = _config()
    # The write option makes SQLite take its lock first, so processes starting together migrate one at a time;
    # the later ones find the schema current and do nothing.
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    return current_revision(engine) or ""


def _refuse_newer(current: str | None) -> None:
    """Refuse a database a newer trainops migrated: this one knows no way from its revision."""
    if current is not None and current not in revisions():
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
    _refuse_newer(current)
    if auto_migrate:
        upgrade(engine)
        return
    raise ConfigurationError(
        f"the database schema is at revision {current or 'none'} but trainops needs {SCHEMA_REVISION}: "
        "run `trainops db upgrade` against it first"
    )
