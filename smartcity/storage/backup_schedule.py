"""Backups on a schedule: a backup of the database, the documents and the Grafana export every period, then
the retention (``SMARTCITY_BACKUP_KEEP`` newest, none older than ``SMARTCITY_BACKUP_KEEP_DAYS``).

The backups go to ``SMARTCITY_BACKUP_URL``, apart from the data; an S3 bucket there gets versioning turned on
first (the snapshots of the archive), where the server supports it (S3Proxy does not: :func:`enable_snapshots`
says so). ``run()`` blocks (``smartcity backup schedule --every 1d``), ``run_once()`` is one backup (the CronJob
of the Helm chart: ``smartcity backup schedule --once``); ``start()``/``stop()`` run it in a thread. A failed
backup is logged and the schedule goes on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass

from smartcity.backends.database import open_database
from smartcity.backends.documents import open_documents
from smartcity.backends.objects import ObjectStore, open_objects
from smartcity.settings import Settings
from smartcity.storage.backup import Backup, Backups

log = logging.getLogger(__name__)


def enable_snapshots(objects: ObjectStore) -> str:
    """Versioning of the backup bucket, where the store has any; what came of it."""
    enable = getattr(objects, "enable_versioning", None)
    return enable() if enable is not None else "not versioned: a local folder"


@dataclass(frozen=True)
class ScheduledRun:
    backup: Backup
    removed: list[str]
    snapshots: str


class BackupSchedule:
    """A backup every ``every_s`` seconds, each followed by the retention."""

    def __init__(self, settings: Settings, every_s: float, say: Callable[[str], None] = log.info) -> None:
        self.settings, self.every_s, self.say = settings, every_s, say
        self.runs: list[ScheduledRun] = []
        self.last_error: str | None = None
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> ScheduledRun:
        """Back up now and apply the retention; :class:`BackupError` (or a store's error) when it fails."""
        s = self.settings
        with ExitStack() as opened:
            db = open_database(s.database_url, settings=s)
            opened.callback(db.close)
            documents = open_documents(s.documents_url, settings=s)
            opened.callback(documents.close)
            target = open_objects(s.backup_url, "SMARTCITY_BACKUP_URL", settings=s)
            opened.callback(target.close)
            snapshots = enable_snapshots(target)
            backups = Backups(target, settings=s)
            backup = backups.create(db, s.database_url, documents)
            removed = backups.prune(s.backup_keep, s.backup_keep_days)
        run = ScheduledRun(backup, removed, snapshots)
        self.runs.append(run)
        self.say(f"backup {backup.id} made in {s.backup_url} ({snapshots}); removed {len(removed)} old backup(s)")
        return run

    def run(self) -> None:
        """A backup now, then every period, until :meth:`stop`."""
        while not self._stopping.is_set():
            try:
                self.run_once()
                self.last_error = None
            except Exception as error:  # a store down or a dump failing: one failed backup must not end the schedule
                self.last_error = f"{type(error).__name__}: {error}"
                log.exception("scheduled backup failed")
                self.say(f"backup failed, next in {self.every_s:g} s: {self.last_error}")
            self._stopping.wait(self.every_s)

    def start(self) -> BackupSchedule:
        if self._thread is None or not self._thread.is_alive():
            self._stopping.clear()
            self._thread = threading.Thread(target=self.run, name="backup-schedule", daemon=True)
            self._thread.start()
        return self

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the backup in progress (waiting for it at most ``timeout`` seconds)."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)
