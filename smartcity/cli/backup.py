"""``smartcity backup``: dumps of the relational and document stores in the object store, kept N at a time.

Every command works on the settings' stores (``SMARTCITY_DATABASE_URL``, ``SMARTCITY_DOCUMENTS_URL``,
``SMARTCITY_OBJECTS_URL``); a ``--...-url`` flag wins over its setting. See :mod:`smartcity.storage.backup`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import typer
from rich.console import Console
from rich.table import Table

from smartcity.backends.database import Database, open_database
from smartcity.backends.documents import DocumentStore, open_documents
from smartcity.backends.objects import open_objects
from smartcity.settings import get_settings
from smartcity.storage.backup import BackupError, Backups

app = typer.Typer(help="Backups of PostgreSQL and MongoDB into the object store; restore into an empty stack.",
                  no_args_is_help=True)
console = Console()

DatabaseUrl = typer.Option(None, "--database-url", help="Default: SMARTCITY_DATABASE_URL.")
DocumentsUrl = typer.Option(None, "--documents-url", help="Default: SMARTCITY_DOCUMENTS_URL.")
ObjectsUrl = typer.Option(None, "--objects-url", help="Default: SMARTCITY_OBJECTS_URL.")


@dataclass
class Stores:
    backups: Backups
    db: Database
    database_url: str
    documents: DocumentStore


@contextmanager
def stores(database_url: str | None, documents_url: str | None, objects_url: str | None,
           with_data: bool = True) -> Iterator[Stores]:
    settings = get_settings()
    database_url = database_url or settings.database_url
    objects = open_objects(objects_url or settings.objects_url)
    db = open_database(database_url) if with_data else None
    documents = open_documents(documents_url or settings.documents_url) if with_data else None
    try:
        yield Stores(Backups(objects), db, database_url, documents)
    except BackupError as error:
        console.print(f"[red]backup failed:[/red] {error}")
        raise typer.Exit(1) from None
    finally:
        for store in (db, documents, objects):
            if store is not None:
                store.close()


@app.command()
def create(database_url: str | None = DatabaseUrl, documents_url: str | None = DocumentsUrl,
           objects_url: str | None = ObjectsUrl) -> None:
    """Dump the database and every document collection into backups/<timestamp>/ of the object store."""
    with stores(database_url, documents_url, objects_url) as s, console.status("backing up") as status:
        backup = s.backups.create(s.db, s.database_url, s.documents, progress=status.update)
    console.print(f"backup {backup.id}: {sum(backup.manifest['tables'].values())} rows in "
                  f"{len(backup.manifest['tables'])} tables, {sum(backup.manifest['collections'].values())} documents")


@app.command("list")
def list_backups(objects_url: str | None = ObjectsUrl) -> None:
    """The finished backups, oldest first."""
    with stores(None, None, objects_url, with_data=False) as s:
        table = Table("id", "created at", "database", "rows", "documents")
        for backup in s.backups.list():
            m = backup.manifest
            table.add_row(backup.id, backup.created_at, m["dialect"], str(sum(m["tables"].values())),
                          str(sum(m["collections"].values())))
    console.print(table)


@app.command()
def restore(backup_id: str = typer.Argument(None, help="The backup's id; default: the newest."),
            database_url: str | None = DatabaseUrl, documents_url: str | None = DocumentsUrl,
            objects_url: str | None = ObjectsUrl) -> None:
    """Restore a backup into an empty database and document store, and check every count."""
    with stores(database_url, documents_url, objects_url) as s, console.status("restoring") as status:
        backup = s.backups.restore(backup_id, s.db, s.database_url, s.documents, progress=status.update)
    console.print(f"restored backup {backup.id}; every table and collection has its backed-up count")


@app.command()
def prune(keep: int = typer.Option(None, "--keep", help="Backups to keep; default: SMARTCITY_BACKUP_KEEP."),
          objects_url: str | None = ObjectsUrl) -> None:
    """Delete all but the newest backups."""
    with stores(None, None, objects_url, with_data=False) as s:
        removed = s.backups.prune(keep or get_settings().backup_keep)
    console.print(f"removed {len(removed)} backup(s){': ' + ', '.join(removed) if removed else ''}")
