"""``trainops db``: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from trainops.cli.common import JsonOption, console, print_json
from trainops.settings import Settings, get_settings

app = typer.Typer(help="Manage the trainops database schema.", no_args_is_help=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", envvar="TRAINOPS_DATABASE_URL", help="Database to migrate.", show_default=False),
]


def _settings(database_url: str | None) -> Settings:
    settings = get_settings()
    return settings.model_copy(update={"database_url": database_url}) if database_url else settings


@app.command("upgrade")
def upgrade_command(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Migrate the database schema (SQLite is migrated automatically; PostgreSQL needs this).

    Example: TRAINOPS_DATABASE_URL=postgresql+psycopg://trainops@db/trainops trainops db upgrade
    """
    from trainops.service.bootstrap import upgrade_database  # the store, loaded when the command runs

    done = upgrade_database(_settings(database_url), revision)
    if json:
        print_json(done)
    elif done.from_revision == done.to_revision:
        console.print(f"{done.database} is already at revision {done.to_revision}.")
    else:
        console.print(f"Upgraded {done.database} from {done.from_revision or 'empty'} to {done.to_revision}.")


@app.command()
def current(database_url: DatabaseOption = None, json: JsonOption = False) -> None:
    """Show the database's schema revision and the one this trainops needs."""
    from trainops.service.bootstrap import database_status  # the store, loaded when the command runs

    status = database_status(_settings(database_url))
    if json:
        print_json(status)
    else:
        console.print(f"database: {status.revision or 'empty'}; trainops needs: {status.required}")
