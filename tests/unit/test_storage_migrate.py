"""Schema migrations on SQLite: an empty database built from schema.py, once; a pending revision applied once and
whole or not at all; a database of the old SQL migrator taken over as it is; databases that cannot be are refused."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from smartcity.backends.database import open_database
from smartcity.events import TOPICS
from smartcity.storage.migrate import (
    BASELINE, MigrationError, alembic_config, migrate, revisions, schema_differences, status,
)
from smartcity.storage.reference import load_reference
from smartcity.storage.schema import metadata_for
from smartcity.storage.tables import STREAM_TABLES
from smartcity.storage.timeseries import TimeSeriesWriter
from tests.legacy_schema import migrate_the_old_way
from streaming import samples
from tests.api_samples.sample_streaming import traffic_windows
from tests.storage_samples import sample_stored_events

MOMENT = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
HEAD = revisions(alembic_config())[-1].id  # the newest revision of alembic/versions/


@pytest.fixture
def db(tmp_path):
    database = open_database(f"sqlite:///{tmp_path / 'test.db'}")
    yield database
    database.close()


def tables(db) -> set[str]:
    return {row["name"] for row in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}


def version(db) -> list[str]:
    return [row["version_num"] for row in db.query("SELECT version_num FROM alembic_version")]


def revision_file(folder: Path, revision: str, body: str) -> Path:
    """A revision after the head, in a folder of its own (given to ``migrate(versions=...)``)."""
    folder.mkdir(exist_ok=True)
    path = folder / f"{revision}_test.py"
    path.write_text(
        f'"""A test revision."""\nimport sqlalchemy as sa\nfrom alembic import op\n\n'
        f'revision = "{revision}"\ndown_revision = "{HEAD}"\nbranch_labels = None\ndepends_on = None\n\n\n'
        f"def upgrade():\n{body}\n\n\ndef downgrade():\n    pass\n"
    )
    return folder


def test_an_empty_database_is_built_from_the_schema_once_and_a_second_run_changes_nothing(db):
    seen = []
    applied = migrate(db, on_apply=seen.append)
    assert [r.id for r in applied] == [r.id for r in revisions(alembic_config())] == [BASELINE, "0002", "0003", "0004"]
    assert seen == applied and set(metadata_for("sqlite").tables) | {"alembic_version"} == tables(db)
    assert migrate(db) == [] and version(db) == [HEAD]
    assert all(item.applied for item in status(db)) and schema_differences(db) == []


def test_a_pending_revision_runs_once_in_batch_mode_and_the_difference_it_makes_is_reported(tmp_path, db):
    migrate(db)
    folder = revision_file(tmp_path / "versions", "0900",
                           '    with op.batch_alter_table("zones") as batch:\n'
                           '        batch.add_column(sa.Column("label", sa.Text(), nullable=True))')
    assert [item.applied for item in status(db, [folder])][-2:] == [True, False]
    assert [r.id for r in migrate(db, versions=[folder])] == ["0900"] and version(db) == ["0900"]
    assert migrate(db, versions=[folder]) == []
    assert "label" in {row["name"] for row in db.query("PRAGMA table_info(zones)")}
    (difference,) = schema_differences(db)  # schema.py does not have it: the revision without its definition
    assert difference[0] == "remove_column" and difference[2] == "zones" and difference[3].name == "label"


def test_a_failing_revision_applies_nothing_of_itself(tmp_path, db):
    migrate(db)
    folder = revision_file(tmp_path / "versions", "0900",
                           '    op.create_table("half", sa.Column("x", sa.Integer()))\n'
                           '    op.execute("CREATE TABLE broken (x INTEGER,)")')
    with pytest.raises(MigrationError, match="rolled back"):
        migrate(db, versions=[folder])
    assert "half" not in tables(db) and version(db) == [HEAD]


def test_a_database_of_the_old_sql_migrations_is_taken_over_with_its_rows(db):
    assert migrate_the_old_way(db)[-1] == 310
    load_reference(db)
    events = [event for event in sample_stored_events() if event.stream in TOPICS]  # the old SQL's streams
    TimeSeriesWriter(db).write(events)
    rows = {name: db.query(f'SELECT * FROM "{name}" ORDER BY 1') for name in tables(db)}
    new_streams = [table.table for stream, table in STREAM_TABLES.items() if stream not in TOPICS]
    applied = [(r.id, r.description) for r in migrate(db)]  # stamped 0001, then upgraded; new streams' tables made
    assert [r for r, _ in applied] == ["0002", "0003", "0004", *["stream"] * len(new_streams)] and version(db) == [HEAD]
    assert [d for r, d in applied if r == "stream"] == [f"table {name}" for name in new_streams]
    rows |= {name: [] for name in [*new_streams, "traffic_sensor_1h", "traffic_segment_1h"]}
    assert {name: db.query(f'SELECT * FROM "{name}" ORDER BY 1') for name in tables(db) - {"alembic_version"}} == rows
    assert schema_differences(db) == []  # the old SQL and the revisions since made the schema.py has
    assert "traffic_segment_5min_zone" in {row["name"] for row in db.query("PRAGMA index_list(traffic_segment_5min)")}
    assert TimeSeriesWriter(db).write(events + sample_stored_events(n=2)) == len(STREAM_TABLES)


def test_the_hourly_rollup_is_filled_from_the_windows_already_there(db):
    migrate_the_old_way(db)
    sensors, segments = traffic_windows(readings_of_two_hours(), updated_at=MOMENT)
    db.upsert("traffic_sensor_5min", sensors, ("sensor_id", "window_start"))  # no rollup to keep yet
    db.upsert("traffic_segment_5min", segments, ("segment_id", "window_start"))
    migrate(db)
    hourly = db.query("SELECT sensor_id, hour_start, windows, flow FROM traffic_sensor_1h ORDER BY hour_start")
    assert [(row["hour_start"], row["windows"]) for row in hourly] == [
        (MOMENT.isoformat(), 12), ((MOMENT + timedelta(hours=1)).isoformat(), 12)]
    assert sum(row["flow"] for row in hourly) == sum(row["flow"] for row in sensors) > 0
    assert db.query("SELECT COUNT(*) AS n FROM traffic_segment_1h")[0]["n"] == 2


def readings_of_two_hours() -> list:
    return [samples.traffic("A", MOMENT + timedelta(minutes=5 * n, seconds=30), intensity=n % 7, speed=30.0,
                            occupancy=0.2) for n in range(24)]


def test_a_database_of_the_old_sql_migrations_short_of_their_last_is_refused(db):
    migrate_the_old_way(db, up_to=200)
    with pytest.raises(MigrationError, match="up to version 0200"):
        migrate(db)
    assert "alembic_version" not in tables(db) and "traffic_forecasts" not in tables(db)


def test_tables_of_the_schema_without_any_record_of_migrations_are_refused(db):
    db.execute("CREATE TABLE zones (zone_id TEXT PRIMARY KEY)")
    with pytest.raises(MigrationError, match=r"tables of the schema \(zones\) but no record"):
        migrate(db)


def test_prepare_storage_migrates_loads_the_city_and_makes_the_key_once(tmp_path):
    from smartcity.privacy import PSEUDONYM_KEY_SECRET
    from smartcity.settings import Settings
    from smartcity.storage.prepare import prepare_storage

    settings = Settings(database_url=f"sqlite:///{tmp_path / 'db.sqlite'}", secrets_dir=tmp_path / "secrets")
    assert prepare_storage(settings)
    key = (tmp_path / "secrets" / PSEUDONYM_KEY_SECRET).read_text()
    assert prepare_storage(settings) == []
    assert (tmp_path / "secrets" / PSEUDONYM_KEY_SECRET).read_text() == key
    database = open_database(settings.database_url)
    assert database.query("SELECT count(*) AS n FROM road_segments")[0]["n"] > 0
    database.close()


def test_the_db_commands_migrate_once_show_the_revisions_and_fail_with_the_reason(tmp_path):
    from typer.testing import CliRunner

    from smartcity.cli.db import app

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    first = CliRunner().invoke(app, ["migrate", "--database-url", url])
    assert first.exit_code == 0 and "applying 0001" in first.output and "4 revision(s) applied" in first.output
    assert "0 revision(s) applied" in CliRunner().invoke(app, ["migrate", "--database-url", url]).output
    shown = CliRunner().invoke(app, ["status", "--database-url", url])
    assert shown.exit_code == 0 and "0001" in shown.output and "applied" in shown.output
    old = open_database(f"sqlite:///{tmp_path / 'old.db'}")
    migrate_the_old_way(old, up_to=100)
    old.close()
    refused = CliRunner().invoke(app, ["migrate", "--database-url", f"sqlite:///{tmp_path / 'old.db'}"])
    assert refused.exit_code == 1 and "migration failed" in refused.output and "0100" in refused.output
