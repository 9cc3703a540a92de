"""``smartcity db``: schema migrations of the relational store, and its reference data.

Every command works on ``SMARTCITY_DATABASE_URL``; ``--database-url`` wins over it.
"""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

from smartcity.backends.database import Database, open_database
from smartcity.settings import get_settings
from smartcity.storage import migrate as migrations

app = typer.Typer(help="Schema migrations and reference data of the relational store.", no_args_is_help=True)
console = Console()

DatabaseUrl = typer.Option(None, "--database-url", help="Database URL; default: SMARTCITY_DATABASE_URL.")


def _open(database_url: str | None) -> Database:
    return open_database(database_url or get_settings().database_url)


@app.command()
def migrate(database_url: str | None = DatabaseUrl) -> None:
    """Apply the pending migrations in order and create the coming days' partitions. Running it again changes nothing."""
    db = _open(database_url)
    try:
        with console.status("migrating") as progress:
            def show(migration: migrations.Migration) -> None:
                progress.update(f"applying {migration.path.name}")
                console.print(f"applying {migration.path.name}")

            applied = migrations.migrate(db, on_apply=show)
    except migrations.MigrationError as error:
        console.print(f"[red]migration failed:[/red] {error}")
        raise typer.Exit(1) from None
    finally:
        db.close()
    console.print(f"{len(applied)} migration(s) applied; the schema is up to date ({db.dialect}).")


@app.command()
def status(database_url: str | None = DatabaseUrl) -> None:
    """Show every migration: applied when, pending, or changed since it was applied."""
    db = _open(database_url)
    try:
        rows = migrations.status(db)
    finally:
        db.close()
    table = Table("version", "name", "file", "applied at", title=f"migrations ({db.dialect})")
    for row in rows:
        state = "[red]changed since applied[/red]" if row.changed else row.applied_at or "[yellow]pending[/yellow]"
        table.add_row(f"{row.migration.version:04d}", row.migration.name, row.migration.path.name, state)
    console.print(table)
    if any(row.changed for row in rows):
        raise typer.Exit(1)


@app.command("load-reference")
def load_reference(database_url: str | None = DatabaseUrl) -> None:
    """Upsert the city's zones, road segments, car parks, stations, routes and stops (after migrate)."""
    from smartcity.storage.reference import load_reference as load

    db = _open(database_url)
    try:
        with console.status("loading the reference data"):
            counts = load(db)
    finally:
        db.close()
    console.print(", ".join(f"{table}: {rows}" for table, rows in counts.items()))
