"""Backups on a schedule on the embedded stores (SQLite file, embedded documents, a backup folder apart from the
data): the schedule runs, keeps the newest, exports Grafana; wipe and restore give the same counts and checksums."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import pytest

from smartcity.backends.database import open_database
from smartcity.backends.documents import open_documents
from smartcity.backends.objects import open_objects
from smartcity.settings import Settings
from smartcity.storage.backup import BackupError, Backups, grafana_export, table_counts
from smartcity.storage.backup_schedule import BackupSchedule
from smartcity.storage.checksums import table_checksums
from tests.storage_samples import fill_stores


def embedded_settings(folder, **overrides) -> Settings:
    return Settings(database_url=f"sqlite:///{folder}/smartcity.db", documents_url=f"embedded:///{folder}/documents.db",
                    backup_url=f"file://{folder}/backups", **overrides)


def fill(settings: Settings) -> None:
    db, documents = open_database(settings.database_url), open_documents(settings.documents_url)
    fill_stores(db, documents)
    db.close()
    documents.close()


def wait_for(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_the_schedule_backs_up_every_period_and_keeps_the_newest(tmp_path):
    settings = embedded_settings(tmp_path / "live", backup_keep=2)
    fill(settings)
    schedule = BackupSchedule(settings, every_s=0.05, say=lambda message: None).start()
    try:
        wait_for(lambda: len(schedule.runs) >= 3)
    finally:
        schedule.stop(timeout=60)
    made = [run.backup.id for run in schedule.runs]
    backups = Backups(open_objects(settings.backup_url))
    assert [b.id for b in backups.list()] == made[-2:]  # the retention ran after each
    assert schedule.runs[-1].snapshots == "not versioned: a local folder"
    newest = backups.list()[-1]
    assert newest.manifest["grafana"] == sorted(grafana_export())
    assert backups.objects.get(f"backups/{newest.id}/grafana/provisioning/alerting/rules.yml").decode() == \
        grafana_export()["provisioning/alerting/rules.yml"]


def test_a_failed_backup_is_reported_and_the_schedule_goes_on(tmp_path):
    settings = embedded_settings(tmp_path / "live").model_copy(
        update={"database_url": "postgresql://smartcity@127.0.0.1:1/smartcity"})  # nothing listens there
    said = []
    schedule = BackupSchedule(settings, every_s=0.05, say=said.append).start()
    try:
        wait_for(lambda: len(said) >= 2)
        assert schedule.running and schedule.runs == []
        assert "SMARTCITY_DATABASE_URL" in schedule.last_error and said[0].startswith("backup failed")
    finally:
        schedule.stop(timeout=60)
    assert not schedule.running


def test_a_scheduled_backup_then_wipe_and_restore_gives_the_same_counts_and_checksums(tmp_path):
    settings = embedded_settings(tmp_path / "live")
    fill(settings)
    run = BackupSchedule(settings, every_s=3600, say=lambda message: None).run_once()
    (tmp_path / "live" / "smartcity.db").unlink()  # the wipe: the stores' files gone
    (tmp_path / "live" / "documents.db").unlink()

    db, documents = open_database(settings.database_url), open_documents(settings.documents_url)
    assert table_counts(db) == {} and documents.collections() == []
    backups = Backups(open_objects(settings.backup_url))
    restored = backups.restore(None, db, settings.database_url, documents)
    assert restored.id == run.backup.id
    assert table_counts(db) == run.backup.manifest["tables"] and run.backup.manifest["tables"]["traffic_flow"] == 2
    assert table_checksums(db, table_counts(db)) == run.backup.manifest["checksums"]["tables"]
    assert {name: documents.count(name) for name in documents.collections()} == run.backup.manifest["collections"]

    db.execute("UPDATE traffic_flow SET average_vehicle_speed = average_vehicle_speed + 1")  # same counts, other rows
    with pytest.raises(BackupError, match="other checksums: traffic_flow"):
        Backups._check(restored, db, documents)
    db.close()
    documents.close()


def test_retention_by_age_keeps_the_newest_whatever_its_age(tmp_path):
    settings = embedded_settings(tmp_path / "live")
    fill(settings)
    db, documents = open_database(settings.database_url), open_documents(settings.documents_url)
    backups = Backups(open_objects(settings.backup_url))
    now = datetime(2026, 6, 1, tzinfo=timezone.utc)
    made = [backups.create(db, settings.database_url, documents, now=now - timedelta(days=d)).id for d in (40, 20, 10)]
    assert sorted(backups.prune(keep=5, keep_days=15, now=now)) == made[:2]
    assert backups.prune(keep=5, keep_days=1, now=now) == []  # the newest stays, even 10 days old
    assert [b.id for b in backups.list()] == made[2:]
    db.close()
    documents.close()


def test_the_command_backs_up_once_and_refuses_a_bad_period(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from smartcity.cli import app
    from smartcity.settings import get_settings

    settings = embedded_settings(tmp_path / "live")
    fill(settings)
    for name in ("database_url", "documents_url", "backup_url"):
        monkeypatch.setenv(f"SMARTCITY_{name.upper()}", getattr(settings, name))
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        refused = runner.invoke(app, ["backup", "schedule", "--every", "soon"])
        assert refused.exit_code == 2 and "'soon' is not a period" in refused.output
        made = runner.invoke(app, ["backup", "schedule", "--once"])
        assert made.exit_code == 0, made.output
        assert "not versioned: a local folder" in made.output
        assert len(Backups(open_objects(settings.backup_url)).list()) == 1
    finally:
        get_settings.cache_clear()
