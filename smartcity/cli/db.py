"""``smartcity db``: schema migrations of the relational store (Alembic revisions), and its reference data.

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
    """Bring the schema to the head revision and create the coming days' partitions. Running it again changes nothing."""
    db = _open(database_url)
    try:
        with console.status("migrating") as progress:
            def show(revision: migrations.Revision) -> None:
                progress.update(f"applying {revision.name}")
                console.print(f"applying {revision.name}")

            applied = migrations.migrate(db, on_apply=show)
    except migrations.MigrationError as error:
        console.print(f"[red]migration failed:[/red] {error}")
        raise typer.Exit(1) from None
    finally:
        db.close()
    console.print(f"{len(applied)} revision(s) applied; the schema is up to date ({db.dialect}).")


@app.command()
def status(database_url: str | None = DatabaseUrl) -> None:
    """Show every revision (applied or pending) and any difference between the database and the schema's definition."""
    db = _open(database_url)
    try:
        rows = migrations.status(db)
        differences = migrations.schema_differences(db) if all(row.applied for row in rows) else []
    finally:
        db.close()
    table = Table("revision", "description", "state", title=f"schema revisions ({db.dialect})")
    for row in rows:
        state = "applied" if row.applied else "[yellow]pending[/yellow]"
        table.add_row(row.revision.id, row.revision.description, state)
    console.print(table)
    for difference in differences:
        console.print(f"[red]differs from smartcity/storage/schema.py:[/red] {difference}")
    if differences:
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
