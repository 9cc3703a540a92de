"""Storage on the real local services: migrations on PostgreSQL, the store functions on Kafka, PostgreSQL,
FerretDB, Redis and S3, and backup -> wipe -> restore. Each test has its own database, document database,
bucket, topics and entity ids, and removes them afterwards.
"""

import uuid
from datetime import date, datetime, timedelta, timezone

import pytest

from smartcity.backends.bus import open_bus
from smartcity.backends.cache import open_cache
from smartcity.backends.database import open_database
from smartcity.backends.documents import open_documents
from smartcity.backends.objects import open_objects
from smartcity.events import STREAMS, TOPICS
from smartcity.runtime.bindings import record_of
from smartcity.runtime.events import new_event
from smartcity.runtime.loader import load_stack
from smartcity.runtime.trigger import FunctionTrigger
from smartcity.settings import DEAD_LETTER_TOPIC
from smartcity.storage.backup import Backups, table_counts
from smartcity.storage.documents import DEVICE_PAYLOADS, INCIDENTS, DocumentWriter
from smartcity.storage.envelope import StoredEvent
from smartcity.storage.latest_state import LatestState, index_key
from smartcity.storage.migrate import alembic_config, migrate, revisions, schema_differences, status
from smartcity.storage.partitions import partition_name
from smartcity.storage.prepare import prepare_storage
from smartcity.storage.schema import metadata_for
from smartcity.storage.reference import load_reference
from smartcity.storage.archive import RawArchive
from smartcity.storage.tables import STREAM_TABLES
from smartcity.storage.timeseries import TimeSeriesWriter
from tests.storage_samples import (
    drain, drop_real_stores, everything_stored, fill_stores, prefixed_stack, real_settings, sample_events,
    sample_stored_events,
)

pytestmark = pytest.mark.real
HEAD = revisions(alembic_config())[-1].id
STORE_FUNCTIONS = ["store-timeseries", "store-latest", "store-documents", "archive-raw"]


@pytest.fixture
def unique():
    return uuid.uuid4().hex[:10]


@pytest.fixture
def settings(real_stack, unique):
    settings = real_settings(real_stack, unique)
    yield settings
    drop_real_stores(settings)


@pytest.fixture
def db(settings):
    database = open_database(settings.database_url, settings=settings)
    yield database
    database.close()


def test_migrations_on_postgresql_apply_once_with_partitions_ahead_and_the_models_columns(db):
    applied = migrate(db)
    assert applied and migrate(db) == []
    assert all(item.applied for item in status(db)) and schema_differences(db) == []
    partitions = {row["name"] for row in db.query("SELECT relname AS name FROM pg_class WHERE relispartition")}
    today = datetime.now(timezone.utc).date()
    for table in STREAM_TABLES.values():
        assert {partition_name(table.table, today + timedelta(days=d)) for d in range(-1, 8)} <= partitions
        columns = db.query("SELECT column_name AS name, is_nullable FROM information_schema.columns "
                           "WHERE table_name = :table AND column_name <> 'stored_at'", {"table": table.table})
        assert {c["name"]: c["is_nullable"] == "YES" for c in columns} == {c.name: c.nullable for c in table.columns}


def shape(db) -> dict[str, dict]:
    """Each table's columns (name: nullable), primary key and indexes (name: columns), partitions left out."""
    from sqlalchemy import inspect

    from smartcity.storage.engine import connection_to
    from smartcity.storage.migrate import include_name

    with connection_to(db, transaction=False) as connection:
        found = inspect(connection)
        return {
            table: {
                "columns": {c["name"]: c["nullable"] for c in found.get_columns(table)},
                "key": found.get_pk_constraint(table)["constrained_columns"],
                "indexes": {i["name"]: i["column_names"] for i in found.get_indexes(table)},
            }
            for table in found.get_table_names() if include_name(table, "table", {})
        }


def test_postgresql_and_sqlite_get_the_same_tables_and_columns_from_the_one_definition(db, tmp_path):
    migrate(db)
    lite = open_database(f"sqlite:///{tmp_path / 'lite.db'}")
    try:
        migrate(lite)
        postgresql, sqlite = shape(db), shape(lite)
    finally:
        lite.close()
    assert set(postgresql) == set(sqlite) == set(metadata_for("sqlite").tables) | {"alembic_version"}
    assert {t: s["columns"] for t, s in postgresql.items()} == {t: s["columns"] for t, s in sqlite.items()}
    for name, table in postgresql.items():  # where the dialects differ: partitioned stream tables on PostgreSQL
        partitioned = name in {t.table for t in STREAM_TABLES.values()}
        assert table["key"] == sqlite[name]["key"] + (["observed_at"] if partitioned else [])
        extra = {f"{name}_time": ["observed_at"]} if partitioned else {}
        assert {**table["indexes"], **extra} == sqlite[name]["indexes"]


_OURS = "{name} !~ '_p[0-9]{{8}}$' AND {name} NOT IN ('schema_migrations', 'alembic_version')"
CATALOG = {  # PostgreSQL's own words for each column, constraint, index and partition key of the schema
    "columns": "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable || ' ' || "
               "coalesce(column_default, '') AS d FROM information_schema.columns "
               f"WHERE table_schema = current_schema() AND {_OURS.format(name='table_name')}",
    "constraints": "SELECT conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid) AS d "
                   "FROM pg_constraint WHERE connamespace = current_schema()::regnamespace "
                   f"AND {_OURS.format(name='conrelid::regclass::text')}",
    "indexes": "SELECT indexdef AS d FROM pg_indexes "
               f"WHERE schemaname = current_schema() AND {_OURS.format(name='tablename')}",
    "partitioning": "SELECT c.relname || ' ' || pg_get_partkeydef(c.oid) AS d "
                    "FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid",
}


def catalog(db) -> dict[str, set[str]]:
    return {what: {row["d"] for row in db.query(sql)} for what, sql in CATALOG.items()}


def test_a_database_of_the_old_sql_migrations_is_taken_over_with_its_rows_and_partitions(db, real_stack, unique):
    from tests.legacy_schema import migrate_the_old_way

    fresh_settings = real_settings(real_stack, unique + "f")
    fresh = open_database(fresh_settings.database_url, settings=fresh_settings)
    try:
        migrate(fresh)
        built_from_schema_py = catalog(fresh)
    finally:
        fresh.close()
        drop_real_stores(fresh_settings)
    assert migrate_the_old_way(db)[-1] == 310
    load_reference(db)
    # the old migrations knew the eight built-in streams; a stream registered since gets its table from migrate
    built_in = [event for event in sample_stored_events(datetime(2026, 3, 2, 8, tzinfo=timezone.utc))
                if event.stream in TOPICS]
    TimeSeriesWriter(db).write(built_in)
    before = {name: db.query(f'SELECT * FROM "{name}" ORDER BY 1') for name in table_counts(db)}
    newer_streams = len(STREAM_TABLES) - len(TOPICS)
    # stamped at the baseline, then the revisions since run, then the tables of the streams added since
    assert [r.id for r in migrate(db)] == ["0002", "0003", "0004"] + ["stream"] * newer_streams
    assert [row["version_num"] for row in db.query("SELECT version_num FROM alembic_version")] == [HEAD]
    assert {name: db.query(f'SELECT * FROM "{name}" ORDER BY 1') for name in before} == before
    assert db.query("SELECT indexdef AS d FROM pg_indexes WHERE indexname = 'traffic_segment_5min_zone'") == [
        {"d": "CREATE INDEX traffic_segment_5min_zone ON public.traffic_segment_5min USING btree (zone_id, window_start)"}]
    assert catalog(db) == built_from_schema_py  # the same schema, in PostgreSQL's own words
    assert schema_differences(db) == []
    assert TimeSeriesWriter(db).write(sample_stored_events(n=2)) == len(STREAM_TABLES)


def test_two_migrators_at_once_build_the_schema_once(settings, db):
    from concurrent.futures import ThreadPoolExecutor

    migrators = [open_database(settings.database_url, settings=settings) for _ in range(2)]
    try:
        with ThreadPoolExecutor(2) as pool:  # the second waits on the advisory lock, then finds the head stamped
            applied = list(pool.map(migrate, migrators))
    finally:
        for migrator in migrators:
            migrator.close()
    assert sorted(len(done) for done in applied) == [0, len(revisions(alembic_config()))]
    assert [row["version_num"] for row in db.query("SELECT version_num FROM alembic_version")] == [HEAD]


def test_prepare_storage_creates_the_partitions_its_settings_ask_for(settings, db):
    # the settings given, not the process's: a partition further ahead than the default 7 days
    prepare_storage(settings.model_copy(update={"partitions_days_ahead": 9}))
    partitions = {row["name"] for row in db.query("SELECT relname AS name FROM pg_class WHERE relispartition")}
    day = datetime.now(timezone.utc).date() + timedelta(days=9)
    assert {partition_name(table.table, day) for table in STREAM_TABLES.values()} <= partitions


def test_a_late_event_gets_its_partition_and_a_redelivery_changes_no_row(db):
    migrate(db)
    writer = TimeSeriesWriter(db)
    old = sample_stored_events(datetime(2019, 6, 1, 12, tzinfo=timezone.utc))
    assert writer.write(old) == len(old)
    assert TimeSeriesWriter(db).write(old) == 0
    assert [r["name"] for r in db.query("SELECT relname AS name FROM pg_class WHERE relname = :n",
                                        {"n": partition_name("traffic_flow", date(2019, 6, 1))})]
    assert {t.table: writer.count(s) for s, t in STREAM_TABLES.items()} == {t.table: 1 for t in STREAM_TABLES.values()}


def test_the_store_functions_write_kafka_records_into_every_real_backend_once(settings, db, unique, tmp_path):
    migrate(db)
    prefix = f"t-{unique}-"
    bus = open_bus(settings.bus_url, settings=settings)
    bus.create_topics([prefix + t for t in STREAMS] + [prefix + DEAD_LETTER_TOPIC], 2)
    n = int(unique[:6], 16)  # entity ids of this test only: the cache is shared
    sent = []
    for stream, event in [*sample_events(n=n).items(), *sample_events(n=n + 1).items()]:
        cloudevent = new_event(STREAMS[stream].ce_type, "/tests", event, id=f"{unique}-{stream}-{event.id}",
                               partitionkey=STREAMS[stream].key_of(event))
        key, value, headers = record_of(cloudevent)
        bus.publish(prefix + stream, value, key=key, headers=headers)
        sent.append((stream, event, cloudevent))
    bus.flush()
    records = drain(bus, [prefix + stream for stream in STREAMS], expected=len(sent))
    assert len(records) == len(sent)
    functions = load_stack(prefixed_stack(tmp_path, prefix, STORE_FUNCTIONS), settings)
    cache = open_cache(settings.cache_url, settings=settings)
    try:
        for function in functions:
            assert FunctionTrigger(function).process(records).handled == len(sent)
        documents, objects = open_documents(settings.documents_url, settings=settings), open_objects(settings.objects_url, settings=settings)
        for stream, table in STREAM_TABLES.items():
            assert TimeSeriesWriter(db).count(stream) == 2, table.table
        assert documents.count(DEVICE_PAYLOADS) == len(sent) and documents.count(INCIDENTS) == 2
        latest = LatestState(cache, settings.latest_state_ttl_s)
        for stream, event, cloudevent in sent:
            state = latest.read(stream, StoredEvent(stream, cloudevent.get_id(), "/tests", event).entity_id)
            assert state is not None and state["event_id"] == cloudevent.get_id()
        archive = RawArchive(objects, cache)
        assert {s: archive.read(s).num_rows for s in STREAMS} == {s: 2 for s in STREAMS}
        rows_before = {t.table: db.query(f"SELECT * FROM {t.table} ORDER BY event_id") for t in STREAM_TABLES.values()}
        files_before = objects.list("raw/")

        cache.delete(*[key for key in cache.keys("dedup:store-") + cache.keys("dedup:archive-raw:")])
        for function in functions:  # redelivered, the runtime's dedup marks gone: the stores alone keep it once
            assert FunctionTrigger(function).process(records).handled == len(sent)
        assert {t.table: db.query(f"SELECT * FROM {t.table} ORDER BY event_id") for t in STREAM_TABLES.values()} == rows_before
        assert documents.count(DEVICE_PAYLOADS) == len(sent) and objects.list("raw/") == files_before
        documents.close()
    finally:
        for stream, event, cloudevent in sent:
            cache.delete(f"archived:{stream}:{cloudevent.get_id()}")
        cache.delete(*[k for s, e, c in sent for k in cache.keys(f"latest:{s}:") if str(n) in k or str(n + 1) in k])
        for stream, event, cloudevent in sent:  # and their entities from the streams' indexes
            cache.index_remove(index_key(stream), StoredEvent(stream, cloudevent.get_id(), "/tests", event).entity_id)
        bus.delete_topics([prefix + t for t in STREAMS] + [prefix + DEAD_LETTER_TOPIC])
        bus.close()


def test_backup_wipe_restore_gives_back_the_same_rows_and_documents(settings, db):
    documents = open_documents(settings.documents_url, settings=settings)
    fill_stores(db, documents)
    before = everything_stored(db, documents)
    backups = Backups(open_objects(settings.objects_url, settings=settings))
    backup = backups.create(db, settings.database_url, documents)
    assert backup.manifest["database"] == "database.pgdump"

    db.execute("DROP SCHEMA public CASCADE")  # the wipe: no table, no document left
    db.execute("CREATE SCHEMA public")
    for collection in (DEVICE_PAYLOADS, INCIDENTS):
        documents.drop_collection(collection)
    assert table_counts(db) == {} and documents.count(DEVICE_PAYLOADS) == 0

    backups.restore(backup.id, db, settings.database_url, documents)
    assert everything_stored(db, documents) == before
    assert migrate(db) == []  # the restored ledger knows every migration
    documents.close()
