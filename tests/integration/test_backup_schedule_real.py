"""A scheduled backup of the real PostgreSQL (a test database of its own) and FerretDB into an S3 bucket apart
from the data's (S3Proxy), then wipe and restore: the same rows, counts and checksums. S3Proxy does not support
bucket versioning: the schedule says so and backs up all the same."""

from __future__ import annotations

import time
import uuid

import pytest

from smartcity.backends.database import open_database
from smartcity.backends.documents import open_documents
from smartcity.backends.objects import open_objects
from smartcity.storage.backup import Backups, table_counts
from smartcity.storage.backup_schedule import BackupSchedule
from smartcity.storage.checksums import table_checksums
from smartcity.storage.documents import DEVICE_PAYLOADS, INCIDENTS
from tests.storage_samples import drop_real_stores, everything_stored, fill_stores, real_settings

pytestmark = pytest.mark.real


@pytest.fixture
def settings(real_stack):
    unique = uuid.uuid4().hex[:10]
    backup_url = real_stack["SMARTCITY_OBJECTS_URL"].rsplit("/", 1)[0] + f"/t-{unique}-backups"
    settings = real_settings(real_stack, unique, backup_url=backup_url, backup_keep=1)
    yield settings
    drop_real_stores(settings)
    target = open_objects(backup_url, settings=settings)
    for key in target.list():
        target.delete(key)
    target.client.remove_bucket(target.bucket)
    target.close()


def test_a_scheduled_backup_then_wipe_and_restore_gives_the_same_rows_and_checksums(settings):
    db, documents = open_database(settings.database_url, settings=settings), open_documents(settings.documents_url,
                                                                                              settings=settings)
    fill_stores(db, documents)
    before = everything_stored(db, documents)
    schedule = BackupSchedule(settings, every_s=0.5, say=lambda message: None).start()
    deadline = time.monotonic() + 120
    while len(schedule.runs) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    schedule.stop(timeout=120)
    assert len(schedule.runs) >= 2, schedule.last_error
    run = schedule.runs[-1]
    assert run.snapshots.startswith("not versioned: the server does not support it")
    assert run.backup.manifest["database"] == "database.pgdump" and run.removed  # keep 1: the first one went

    db.execute("DROP SCHEMA public CASCADE")  # the wipe: no table, no document left
    db.execute("CREATE SCHEMA public")
    for collection in (DEVICE_PAYLOADS, INCIDENTS):
        documents.drop_collection(collection)
    assert table_counts(db) == {} and documents.count(DEVICE_PAYLOADS) == 0

    target = open_objects(settings.backup_url, settings=settings)
    assert Backups(target).restore(None, db, settings.database_url, documents).id == run.backup.id
    assert everything_stored(db, documents) == before
    assert table_counts(db) == run.backup.manifest["tables"]
    assert table_checksums(db, table_counts(db)) == run.backup.manifest["checksums"]["tables"]
    target.close()
    db.close()
    documents.close()
