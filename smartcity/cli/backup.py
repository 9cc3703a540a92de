"""``smartcity backup``: dumps of the relational and document stores (and the Grafana export) in the backup
target, kept N at a time; ``schedule`` makes them every period (:mod:`smartcity.storage.backup_schedule`).

Every command works on the settings' stores (``SMARTCITY_DATABASE_URL``, ``SMARTCITY_DOCUMENTS_URL``,
``SMARTCITY_BACKUP_URL``); a ``--...-url`` flag wins over its setting. See :mod:`smartcity.storage.backup`.
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

app = typer.Typer(help="Backups of PostgreSQL, MongoDB and the Grafana export into the backup target "
                       "(SMARTCITY_BACKUP_URL); restore into an empty stack.",
                  no_args_is_help=True)
console = Console()

DatabaseUrl = typer.Option(None, "--database-url", help="Default: SMARTCITY_DATABASE_URL.")
DocumentsUrl = typer.Option(None, "--documents-url", help="Default: SMARTCITY_DOCUMENTS_URL.")
BackupUrl = typer.Option(None, "--backup-url", help="Where the backups are; default: SMARTCITY_BACKUP_URL.")


@dataclass
class Stores:
    backups: Backups
    db: Database
    database_url: str
    documents: DocumentStore


@contextmanager
def stores(database_url: str | None, documents_url: str | None, backup_url: str | None,
           with_data: bool = True) -> Iterator[Stores]:
    settings = get_settings()
    database_url = database_url or settings.database_url
    objects = open_objects(backup_url or settings.backup_url, "SMARTCITY_BACKUP_URL", settings=settings)
    db = open_database(database_url) if with_data else None
    documents = open_documents(documents_url or settings.documents_url) if with_data else None
    try:
        yield Stores(Backups(objects, settings=settings), db, database_url, documents)
    except BackupError as error:
        console.print(f"[red]backup failed:[/red] {error}")
        raise typer.Exit(1) from None
    finally:
        for store in (db, documents, objects):
            if store is not None:
                store.close()


@app.command()
def create(database_url: str | None = DatabaseUrl, documents_url: str | None = DocumentsUrl,
           backup_url: str | None = BackupUrl) -> None:
    """Dump the database, every document collection and the Grafana export into backups/<timestamp>/."""
    with stores(database_url, documents_url, backup_url) as s, console.status("backing up") as status:
        backup = s.backups.create(s.db, s.database_url, s.documents, progress=status.update)
    console.print(f"backup {backup.id}: {sum(backup.manifest['tables'].values())} rows in "
                  f"{len(backup.manifest['tables'])} tables, {sum(backup.manifest['collections'].values())} documents")


@app.command("list")
def list_backups(backup_url: str | None = BackupUrl) -> None:
    """The finished backups, oldest first."""
    with stores(None, None, backup_url, with_data=False) as s:
        table = Table("id", "created at", "database", "rows", "documents")
        for backup in s.backups.list():
            m = backup.manifest
            table.add_row(backup.id, backup.created_at, m["dialect"], str(sum(m["tables"].values())),
                          str(sum(m["collections"].values())))
    console.print(table)


@app.command()
def restore(backup_id: str = typer.Argument(None, help="The backup's id; default: the newest."),
            database_url: str | None = DatabaseUrl, documents_url: str | None = DocumentsUrl,
            backup_url: str | None = BackupUrl) -> None:
    """Restore a backup into an empty database and document store, and check every count."""
    with stores(database_url, documents_url, backup_url) as s, console.status("restoring") as status:
        backup = s.backups.restore(backup_id, s.db, s.database_url, s.documents, progress=status.update)
    console.print(f"restored backup {backup.id}; every table and collection has its backed-up count")


@app.command()
def prune(keep: int = typer.Option(None, "--keep", min=1, help="Backups to keep; default: SMARTCITY_BACKUP_KEEP."),
          keep_days: float = typer.Option(None, "--keep-days", min=0, help="Delete those older (0: no age limit); "
                                                                           "default: SMARTCITY_BACKUP_KEEP_DAYS."),
          backup_url: str | None = BackupUrl) -> None:
    """Delete all but the newest backups, and those older than the retention's days (the newest stays)."""
    settings = get_settings()
    with stores(None, None, backup_url, with_data=False) as s:
        removed = s.backups.prune(keep or settings.backup_keep,
                                  settings.backup_keep_days if keep_days is None else keep_days)
    console.print(f"removed {len(removed)} backup(s){': ' + ', '.join(removed) if removed else ''}")


@app.command()
def schedule(every: str = typer.Option(None, "--every", help="Period, e.g. 6h, 1d; default: SMARTCITY_BACKUP_EVERY."),
             once: bool = typer.Option(False, "--once", help="One backup and the retention, then exit (a CronJob).")
             ) -> None:
    """A backup every period (the first now), each followed by the retention; versioning of the target bucket
    turned on where the server supports it."""
    from smartcity.cli.simulate import parse_duration
    from smartcity.storage.backup_schedule import BackupSchedule

    settings = get_settings()
    period = every or settings.backup_every
    try:
        every_s = parse_duration(period)
    except typer.BadParameter:
        console.print(f"[red]--every:[/red] {period!r} is not a period (a number with an optional unit s, m, h or d)")
        raise typer.Exit(2) from None
    if every_s <= 0:
        console.print("[red]--every:[/red] the period must be positive")
        raise typer.Exit(2)
    backups = BackupSchedule(settings, every_s, say=console.print)
    if once:
        try:
            backups.run_once()
        except BackupError as error:
            console.print(f"[red]backup failed:[/red] {error}")
            raise typer.Exit(1) from None
        return
    console.print(f"backing up into {settings.backup_url} every {period}; Ctrl-C stops")
    try:
        backups.run()
    except KeyboardInterrupt:
        backups.stop()
