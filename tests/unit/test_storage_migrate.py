"""Versioned migrations on SQLite: order, dialect variants, once only, whole or nothing, changed files refused."""

from pathlib import Path

import pytest

from smartcity.backends.database import open_database
from smartcity.storage.migrate import MIGRATIONS_DIR, MigrationError, discover, migrate, status


@pytest.fixture
def db(tmp_path):
    database = open_database(f"sqlite:///{tmp_path / 'test.db'}")
    yield database
    database.close()


def tables(db) -> set[str]:
    return {row["name"] for row in db.query("SELECT name FROM sqlite_master WHERE type = 'table'")}


def write(folder: Path, name: str, sql: str) -> Path:
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(sql)
    return path


def test_the_project_migrations_apply_once_and_a_second_run_changes_nothing(db):
    applied = migrate(db)
    assert [m.version for m in applied] == sorted(m.version for m in applied) and applied
    assert {"schema_migrations", "traffic_flow", "taxi_trips", "road_segments", "zones"} <= tables(db)
    before = db.query("SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version")
    assert migrate(db) == []
    assert db.query("SELECT version, checksum, applied_at FROM schema_migrations ORDER BY version") == before
    assert all(item.applied_at and not item.changed for item in status(db))


def test_the_dialect_variant_wins_and_a_one_dialect_version_does_not_apply_to_the_other(tmp_path, db):
    folder = tmp_path / "migrations"
    write(folder, "0001_both.sql", "CREATE TABLE both_dialects (x INTEGER);")
    write(folder, "0002_variant.sql", "CREATE TABLE plain_variant (x INTEGER);")
    write(folder, "0002_variant.sqlite.sql", "CREATE TABLE lite_variant (x INTEGER);")
    write(folder, "0003_pg_only.postgresql.sql", "CREATE TABLE pg_only (x integer);")
    assert [m.path.name for m in discover("sqlite", folder)] == ["0001_both.sql", "0002_variant.sqlite.sql"]
    assert [m.path.name for m in discover("postgresql", folder)] == [
        "0001_both.sql", "0002_variant.sql", "0003_pg_only.postgresql.sql"]
    migrate(db, folder)
    assert {"both_dialects", "lite_variant"} <= tables(db)
    assert not {"plain_variant", "pg_only"} & tables(db)


def test_a_failing_file_applies_nothing_of_itself_and_is_not_recorded(tmp_path, db):
    folder = tmp_path / "migrations"
    write(folder, "0001_good.sql", "CREATE TABLE good (x INTEGER);")
    write(folder, "0002_bad.sql", "CREATE TABLE half (x INTEGER);\nCREATE TABLE broken (x INTEGER,);")
    with pytest.raises(MigrationError, match="0002_bad.sql"):
        migrate(db, folder)
    assert "good" in tables(db) and "half" not in tables(db)
    assert [row["version"] for row in db.query("SELECT version FROM schema_migrations")] == [1]


def test_a_file_changed_after_it_was_applied_is_refused(tmp_path, db):
    folder = tmp_path / "migrations"
    path = write(folder, "0001_first.sql", "CREATE TABLE first (x INTEGER);")
    migrate(db, folder)
    path.write_text("CREATE TABLE first (x INTEGER, y INTEGER);")
    assert [item.changed for item in status(db, folder)] == [True]
    with pytest.raises(MigrationError, match="0001_first.sql: changed after it was applied"):
        migrate(db, folder)


@pytest.mark.parametrize("name", ["1_short.sql", "0001-dash.sql", "0001_Upper.sql", "0001_x.mysql.sql"])
def test_a_misnamed_file_is_an_error_naming_it(tmp_path, name):
    folder = tmp_path / "migrations"
    write(folder, name, "SELECT 1;")
    with pytest.raises(MigrationError, match="NNNN_<name>"):
        discover("sqlite", folder)


def test_two_names_for_one_version_are_an_error(tmp_path):
    folder = tmp_path / "migrations"
    write(folder, "0001_one.sql", "SELECT 1;")
    write(folder, "0001_other.sql", "SELECT 1;")
    with pytest.raises(MigrationError, match="also named"):
        discover("sqlite", folder)


def test_every_project_migration_file_is_well_named():
    assert discover("sqlite", MIGRATIONS_DIR) and discover("postgresql", MIGRATIONS_DIR)


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
