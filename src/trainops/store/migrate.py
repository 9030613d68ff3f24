"""Schema migrations with Alembic, run on trainops' own engine (no alembic.ini needed)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from trainops.errors import ConfigurationError
from trainops.store.engine import WRITE_OPTION

_MIGRATIONS = Path(__file__).parent / "migrations"


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None, "trainops ships at least one migration"
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> str:
    """Bring the schema to ``revision``; returns the revision the database is at afterwards."""
    config = _config()
    # The write option makes SQLite take its lock first, so processes starting together migrate one at a time;
    # the later ones find the schema current and do nothing.
    with engine.connect() as connection:
        connection.execution_options(**{WRITE_OPTION: True})
        with connection.begin():
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    return current_revision(engine) or ""


def ensure_schema(engine: Engine, *, auto_migrate: bool) -> None:
    """Make sure the schema is current: migrate when allowed, else say how to."""
    current = current_revision(engine)
    head = head_revision()
    if current == head:
        return
    if auto_migrate:
        upgrade(engine)
        return
    raise ConfigurationError(
        f"the database schema is at revision {current or 'none'} but trainops needs {head}: "
        "run `trainops db upgrade` against it first"
    )
