"""``trainops db``: schema migrations."""

from __future__ import annotations

from typing import Annotated

import typer

from trainops.cli.common import JsonOption, console, print_json
from trainops.settings import get_settings
from trainops.store import create_database_engine, current_revision, head_revision, upgrade

app = typer.Typer(help="Manage the trainops database schema.", no_args_is_help=True)

DatabaseOption = Annotated[
    str | None,
    typer.Option("--database-url", envvar="TRAINOPS_DATABASE_URL", help="Database to migrate.", show_default=False),
]


@app.command("upgrade")
def upgrade_command(
    revision: Annotated[str, typer.Option(help="Target revision.")] = "head",
    database_url: DatabaseOption = None,
    json: JsonOption = False,
) -> None:
    """Migrate the database schema (SQLite is migrated automatically; PostgreSQL needs this).

    Example: TRAINOPS_DATABASE_URL=postgresql+psycopg://trainops@db/trainops trainops db upgrade
    """
    engine = create_database_engine(database_url or get_settings().resolved_database_url)
    try:
        before = current_revision(engine)
        after = upgrade(engine, revision)
    finally:
        engine.dispose()
    shown = engine.url.render_as_string(hide_password=True)
    if json:
        print_json({"database": shown, "from_revision": before, "to_revision": after})
    elif before == after:
        console.print(f"{shown} is already at revision {after}.")
    else:
        console.print(f"Upgraded {shown} from {before or 'empty'} to {after}.")


@app.command()
def current(database_url: DatabaseOption = None, json: JsonOption = False) -> None:
    """Show the database's schema revision and the one this trainops needs."""
    engine = create_database_engine(database_url or get_settings().resolved_database_url)
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    if json:
        print_json({"revision": revision, "required": head_revision(), "current": revision == head_revision()})
    else:
        console.print(f"database: {revision or 'empty'}; trainops needs: {head_revision()}")
