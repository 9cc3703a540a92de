"""Backup, wipe and restore on the embedded stores (SQLite file, embedded documents, local object folder)."""

from datetime import datetime, timedelta, timezone

import pytest

from smartcity.backends.database import open_database
from smartcity.backends.documents import open_documents
from smartcity.backends.objects import open_objects
from smartcity.storage.backup import BackupError, Backups, new_backup_id, table_counts
from smartcity.storage.documents import DocumentWriter
from smartcity.storage.migrate import migrate
from smartcity.storage.reference import load_reference
from smartcity.storage.timeseries import TimeSeriesWriter
from tests.storage_samples import sample_stored_events


def stores(folder):
    return (open_database(f"sqlite:///{folder}/smartcity.db"), f"sqlite:///{folder}/smartcity.db",
            open_documents(f"embedded:///{folder}/documents.db"))


def everything(db, documents):
    rows = {name: db.query(f'SELECT * FROM "{name}" ORDER BY 1') for name in table_counts(db)}
    return rows, {name: documents.find(name, sort=[("_id", 1)]) for name in ("device_payloads", "incidents")}


def test_backup_then_restore_into_empty_stores_gives_back_the_same_rows_and_documents(tmp_path):
    db, url, documents = stores(tmp_path / "live")
    migrate(db)
    load_reference(db)
    events = sample_stored_events() + sample_stored_events(n=2)
    TimeSeriesWriter(db).write(events)
    DocumentWriter(documents).write(events)
    backups = Backups(open_objects(f"file://{tmp_path / 'objects'}"))
    backup = backups.create(db, url, documents)
    assert backup.manifest["tables"]["traffic_flow"] == 2 and backup.manifest["collections"]["device_payloads"] == len(events)
    assert [b.id for b in backups.list()] == [backup.id]

    empty_db, empty_url, empty_documents = stores(tmp_path / "fresh")
    backups.restore(None, empty_db, empty_url, empty_documents)
    assert everything(empty_db, empty_documents) == everything(db, documents)
    with pytest.raises(BackupError, match="not empty"):
        backups.restore(backup.id, empty_db, empty_url, empty_documents)


def test_prune_keeps_the_newest_and_drops_unfinished_older_ones(tmp_path):
    db, url, documents = stores(tmp_path / "live")
    migrate(db)
    objects = open_objects(f"file://{tmp_path / 'objects'}")
    backups = Backups(objects)
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    made = [backups.create(db, url, documents, now=start + timedelta(hours=h)).id for h in range(4)]
    unfinished = new_backup_id(start - timedelta(hours=1))
    objects.put(f"backups/{unfinished}/database.sqlite", b"half")
    assert sorted(backups.prune(keep=2)) == sorted([unfinished, *made[:2]])
    assert [b.id for b in backups.list()] == made[2:] and backups.ids() == made[2:]
    with pytest.raises(BackupError, match="no finished backup 'nope'"):
        backups.get("nope")
