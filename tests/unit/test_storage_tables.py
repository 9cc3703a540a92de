"""The stream tables match the event models, and the time-series writer is idempotent on the event id (SQLite)."""

from datetime import timedelta, timezone

import pytest

from smartcity.events import STREAMS
from smartcity.storage.tables import STREAM_TABLES, snake_case
from smartcity.storage.timeseries import TimeSeriesWriter
from tests.storage_samples import MOMENT, sample_events, sample_stored_events


@pytest.fixture
def db(migrated_sqlite):
    return migrated_sqlite


def test_every_stream_has_a_table_and_a_sample_event():
    assert set(STREAM_TABLES) == set(STREAMS) == set(sample_events())


@pytest.mark.parametrize("stream", sorted(STREAM_TABLES))
def test_the_migrated_table_has_the_columns_of_the_model(db, stream):
    """The table built from schema.py holds every field of the model, nullable where the field is optional."""
    table = STREAM_TABLES[stream]
    migrated = {row["name"]: not row["notnull"] for row in db.query(f"PRAGMA table_info({table.table})")}
    expected = {column.name: column.nullable for column in table.columns}
    assert {name: nullable for name, nullable in migrated.items() if name != "stored_at"} == expected


def test_snake_case():
    assert [snake_case(n) for n in ("averageVehicleSpeed", "pm25", "no2", "laneId")] == [
        "average_vehicle_speed", "pm25", "no2", "lane_id"]


def test_a_batch_lands_once_whatever_the_redeliveries(db):
    writer = TimeSeriesWriter(db)
    events = sample_stored_events()
    assert writer.write(events) == len(events)
    rows = {stream: db.query(f"SELECT * FROM {table.table}") for stream, table in STREAM_TABLES.items()}
    assert writer.write(events + events[:3]) == 0
    assert {stream: db.query(f"SELECT * FROM {table.table}") for stream, table in STREAM_TABLES.items()} == rows
    assert all(writer.count(stream) == 1 for stream in STREAM_TABLES)


def test_a_row_holds_the_event_with_utc_times_and_flattened_location(db):
    TimeSeriesWriter(db).write(sample_stored_events())
    (row,) = db.query("SELECT * FROM taxi_trips")
    taxi = sample_events()["taxi-vtc"]
    assert row["entity_id"] == taxi.id and row["observed_at"] == MOMENT.isoformat()
    assert (row["lon"], row["lat"]) == taxi.location.coordinates and row["zone_id"] == taxi.zone
    assert row["fare"] is None and row["passenger_count"] == 1


def test_the_values_of_a_row_are_its_columns_in_order_with_utc_times_and_json_text():
    paris = timezone(timedelta(hours=1))
    alert = sample_events()["incidents"].model_copy(update={
        "dateObserved": MOMENT.astimezone(paris), "validTo": None, "contributions": {"speed": 0.75, "flow": 0.25}})
    table = STREAM_TABLES["incidents"]
    values = table.values("event-1", alert)
    assert len(values) == len(table.column_names) and table.row("event-1", alert) == dict(zip(table.column_names, values))
    row = table.row("event-1", alert)
    assert row["event_id"] == "event-1" and row["entity_id"] == alert.id
    assert row["observed_at"] == MOMENT and row["observed_at"].utcoffset() == timedelta(0)
    assert (row["lon"], row["lat"]) == alert.location.coordinates and row["valid_to"] is None
    assert row["contributions"] == '{"speed":0.75,"flow":0.25}' and row["lane_id"] == alert.laneId
