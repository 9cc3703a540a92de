"""Backups of the relational and document stores into the object store; restore into an empty stack.

A backup is a folder ``backups/<id>/`` of the object store, ``<id>`` its UTC creation time
(``20261129T184500123Z``, so ids sort by age), holding:

``database.pgdump`` or ``database.sqlite``
    PostgreSQL: ``pg_dump --format=custom`` (schema, partitions and rows of every table); SQLite: a consistent
    copy of the file made by SQLite's online backup.
``documents/<collection>.jsonl``
    Every document of every collection, one per line, datetimes as ``{"$date": ...}`` (MongoDB's extended
    JSON; ``mongodump`` is not available here). The same format for MongoDB and the embedded store.
``grafana/<path>``
    What the platform provisions in Grafana, as code (``grafana/``): dashboards, data sources, alert rules.
``manifest.json``
    Written last: a folder without it is an unfinished backup, never listed nor restored. It records the
    dialect, the rows and checksum of every table and the documents and checksum of every collection
    (:mod:`smartcity.storage.checksums`), which :meth:`Backups.restore` checks.

Backups go to ``SMARTCITY_BACKUP_URL``, a bucket or folder apart from the data's. :meth:`Backups.prune` keeps
the ``SMARTCITY_BACKUP_KEEP`` newest, drops those older than ``SMARTCITY_BACKUP_KEEP_DAYS`` (the newest stays), and
removes unfinished ones older than the oldest kept. :meth:`Backups.restore` refuses a target that holds any table or document: it restores into an empty
stack. Command line: ``smartcity backup create|list|restore|prune``.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from smartcity.backends._url import local_path
from smartcity.backends.database import Database
from smartcity.backends.database.postgres import conninfo_from_url
from smartcity.backends.documents import DocumentStore
from smartcity.backends.documents.embedded import decode, encode
from smartcity.backends.objects import ObjectStore
from smartcity.settings import Settings
from smartcity.storage.encryption import at_rest
from smartcity.storage.checksums import checksum_differences, documents_checksum, table_checksums

BACKUP_PREFIX = "backups/"
MANIFEST = "manifest.json"
PAGE = 5000  # documents read or written per round trip
Progress = Callable[[str], None]


class BackupError(Exception):
    """A backup cannot be made or restored: names the backup, the store and the reason."""


@dataclass(frozen=True)
class Backup:
    id: str
    manifest: dict[str, Any]

    @property
    def created_at(self) -> str:
        return self.manifest["created_at"]


def grafana_export() -> dict[str, str]:
    """The files the platform provisions in Grafana (dashboards, data sources, alert rules), by path under grafana/."""
    from grafana.build import render  # the dashboards as code; imported only when a backup is made

    return render()


def new_backup_id(now: datetime | None = None) -> str:
    now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return f"{now:%Y%m%dT%H%M%S}{now.microsecond // 1000:03d}Z"


# --- the relational store -----------------------------------------------------------------------------------


def table_counts(db: Database) -> dict[str, int]:
    """Rows of every table (partitioned tables counted once, through their parent)."""
    if db.dialect == "postgresql":
        names = [r["name"] for r in db.query(
            "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition")]
    else:
        names = [r["name"] for r in db.query(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return {name: int(db.query(f'SELECT count(*) AS n FROM "{name}"')[0]["n"]) for name in sorted(names)}


def dump_database(db: Database, url: str, folder: Path) -> Path:
    """A dump of the whole database into ``folder``; its file name says its format."""
    if db.dialect == "postgresql":
        path = folder / "database.pgdump"
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--file={path}",
              f"--dbname={conninfo_from_url(url, 'SMARTCITY_DATABASE_URL')}"], "pg_dump")
    else:
        path = folder / "database.sqlite"
        _sqlite_copy(local_path(url, "SMARTCITY_DATABASE_URL"), path)
    return path


def restore_database(db: Database, url: str, dump: Path) -> None:
    if db.dialect == "postgresql":
        _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
              f"--dbname={conninfo_from_url(url, 'SMARTCITY_DATABASE_URL')}", str(dump)], "pg_restore")
    else:
        _sqlite_copy(dump, local_path(url, "SMARTCITY_DATABASE_URL"))


def _sqlite_copy(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy even while others write."""
    origin, copy = sqlite3.connect(source), sqlite3.connect(target)
    try:
        origin.backup(copy)
    finally:
        origin.close()
        copy.close()


def _run(command: list[str], tool: str) -> None:
    try:
        finished = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    except FileNotFoundError:
        raise BackupError(f"{tool} is not installed (Debian package postgresql-client)") from None
    if finished.returncode != 0:
        raise BackupError(f"{tool} failed ({finished.returncode}): {finished.stderr.strip()[-2000:]}")


# --- the document store -------------------------------------------------------------------------------------


def documents_of(store: DocumentStore, collection: str) -> Iterator[dict[str, Any]]:
    """Every document of a collection, by ``_id``, a page at a time."""
    last: str | None = None
    while True:
        page = store.find(collection, {"_id": {"$gt": last}} if last is not None else None, [("_id", 1)], PAGE)
        yield from page
        if len(page) < PAGE:
            return
        last = page[-1]["_id"]


# --- backups ------------------------------------------------------------------------------------------------


class Backups:
    """The backups kept in one object store, under ``prefix``; every file encrypted as ``settings`` say
    (:func:`smartcity.storage.encryption.at_rest`)."""

    def __init__(self, objects: ObjectStore, prefix: str = BACKUP_PREFIX, settings: Settings | None = None) -> None:
        self.objects = at_rest(objects, settings)
        self.prefix = prefix

    def _key(self, backup_id: str, name: str) -> str:
        return f"{self.prefix}{backup_id}/{name}"

    def ids(self) -> list[str]:
        """Every backup folder, finished or not, oldest first."""
        return sorted({key[len(self.prefix):].split("/", 1)[0] for key in self.objects.list(self.prefix)})

    def list(self) -> list[Backup]:
        """The finished backups (those with a manifest), oldest first."""
        return [Backup(backup_id, json.loads(self.objects.get(self._key(backup_id, MANIFEST))))
                for backup_id in self.ids() if self.objects.exists(self._key(backup_id, MANIFEST))]

    def create(self, db: Database, database_url: str, documents: DocumentStore,
               progress: Progress = lambda message: None, now: datetime | None = None) -> Backup:
        backup_id = new_backup_id(now)
        if self.objects.list(f"{self.prefix}{backup_id}/"):
            raise BackupError(f"backup {backup_id} exists already")
        tables = table_counts(db)
        manifest: dict[str, Any] = {"id": backup_id, "created_at": datetime.now(timezone.utc).isoformat(),
                                    "dialect": db.dialect, "tables": tables, "collections": {},
                                    "checksums": {"tables": table_checksums(db, tables), "collections": {}}}
        with tempfile.TemporaryDirectory(prefix="smartcity-backup-") as folder:
            progress(f"dumping the {db.dialect} database")
            dump = dump_database(db, database_url, Path(folder))
            self.objects.put(self._key(backup_id, dump.name), dump.read_bytes())
            manifest["database"] = dump.name
        for collection in documents.collections():
            progress(f"exporting the collection {collection}")
            lines = [encode(document) for document in documents_of(documents, collection)]
            self.objects.put(self._key(backup_id, f"documents/{collection}.jsonl"),
                             ("\n".join(lines) + "\n" if lines else "").encode(), "application/x-ndjson")
            manifest["collections"][collection] = len(lines)
            manifest["checksums"]["collections"][collection] = documents_checksum(lines)
        progress("exporting the Grafana dashboards and alert rules")
        exported = grafana_export()
        for path, text in exported.items():
            self.objects.put(self._key(backup_id, f"grafana/{path}"), text.encode())
        manifest["grafana"] = sorted(exported)
        self.objects.put(self._key(backup_id, MANIFEST), json.dumps(manifest, indent=2).encode(), "application/json")
        return Backup(backup_id, manifest)

    def get(self, backup_id: str | None = None) -> Backup:
        """The backup named, or the newest one."""
        finished = {backup.id: backup for backup in self.list()}
        if not finished:
            raise BackupError(f"no finished backup under {self.prefix}")
        chosen = backup_id or max(finished)
        if chosen not in finished:
            raise BackupError(f"no finished backup {chosen!r}; there are: {', '.join(sorted(finished))}")
        return finished[chosen]

    def restore(self, backup_id: str | None, db: Database, database_url: str, documents: DocumentStore,
                progress: Progress = lambda message: None) -> Backup:
        """Restore a backup (the newest by default) into an empty database and document store, then check counts."""
        backup = self.get(backup_id)
        if backup.manifest["dialect"] != db.dialect:
            raise BackupError(f"backup {backup.id} is of a {backup.manifest['dialect']} database, not {db.dialect}")
        if existing := list(table_counts(db)):
            raise BackupError(f"the database is not empty (tables {', '.join(existing[:5])}"
                              f"{'...' if len(existing) > 5 else ''}): restore into an empty one")
        if existing := documents.collections():
            raise BackupError(f"the document store is not empty (collections {', '.join(existing)})")
        with tempfile.TemporaryDirectory(prefix="smartcity-restore-") as folder:
            progress(f"restoring the {db.dialect} database")
            dump = Path(folder) / backup.manifest["database"]
            dump.write_bytes(self.objects.get(self._key(backup.id, backup.manifest["database"])))
            restore_database(db, database_url, dump)
        for collection in backup.manifest["collections"]:
            progress(f"importing the collection {collection}")
            text = self.objects.get(self._key(backup.id, f"documents/{collection}.jsonl")).decode()
            items = [decode(line) for line in text.splitlines() if line]
            for start in range(0, len(items), PAGE):
                documents.insert_many(collection, items[start:start + PAGE])
        self._check(backup, db, documents)
        return backup

    @staticmethod
    def _check(backup: Backup, db: Database, documents: DocumentStore) -> None:
        tables = table_counts(db)
        wrong = {name: (rows, tables.get(name)) for name, rows in backup.manifest["tables"].items()
                 if tables.get(name) != rows}
        wrong |= {f"documents.{name}": (count, documents.count(name))
                  for name, count in backup.manifest["collections"].items() if documents.count(name) != count}
        if wrong:
            raise BackupError(f"backup {backup.id} restored with other counts (expected, found): {wrong}")
        expected = backup.manifest.get("checksums")  # backups made before checksums were recorded have none
        if expected:
            wrong = checksum_differences(expected["tables"], table_checksums(db, expected["tables"]))
            wrong |= checksum_differences(expected["collections"], {
                name: documents_checksum(map(encode, documents_of(documents, name))) for name in expected["collections"]})
            if wrong:
                raise BackupError(f"backup {backup.id} restored with other checksums: {', '.join(sorted(wrong))}")

    def prune(self, keep: int, keep_days: float = 0, now: datetime | None = None) -> list[str]:
        """Delete all but the ``keep`` newest finished backups, and those older than ``keep_days`` (0: no age
        limit; the newest is kept whatever its age), and unfinished ones older than those kept."""
        if keep < 1:
            raise BackupError("keep at least one backup")
        finished = [backup.id for backup in self.list()]
        kept = set(finished[-keep:])
        if keep_days > 0:
            oldest = new_backup_id((now or datetime.now(timezone.utc)) - timedelta(days=keep_days))
            kept = {i for i in kept if i >= oldest} | set(finished[-1:])
        oldest_kept = min(kept) if kept else None
        doomed = [i for i in self.ids() if i not in kept and (i in finished or (oldest_kept and i < oldest_kept))]
        for backup_id in doomed:
            for key in self.objects.list(f"{self.prefix}{backup_id}/"):
                self.objects.delete(key)
        return doomed
