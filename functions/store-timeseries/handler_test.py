"""store-timeseries, loaded through the real loader and fed by its Kafka trigger's record path, over SQLite."""

from __future__ import annotations

from smartcity.events import STREAMS
from smartcity.storage.tables import STREAM_TABLES
from tests.stream_functions import (
    StoreFunction, assert_bad_data_is_dead_lettered, assert_redelivery_changes_nothing, store_fixture,
)

store = store_fixture("store-timeseries")


def rows(store: StoreFunction) -> dict[str, list[dict]]:
    """Every stream table's rows and the sensors table's, in event-id order."""
    db = store.context.database
    tables = {t.table: db.query(f"SELECT * FROM {t.table} ORDER BY event_id") for t in STREAM_TABLES.values()}
    return {**tables, "sensors": db.query("SELECT * FROM sensors ORDER BY sensor_id")}


def test_each_event_is_a_row_of_its_streams_table_and_a_new_sensor_joins_the_reference(store):
    assert store.deliver().handled == store.valid
    stored = rows(store)
    for topic in STREAMS:
        table = STREAM_TABLES[topic].table
        assert [row["event_id"] for row in stored[table]] == [f"{topic}-1", f"{topic}-2"], table
    loop = stored["traffic_flow"][0]
    assert (loop["entity_id"], loop["average_vehicle_speed"], loop["occupancy"], loop["lane_id"]) == (
        "urn:ngsi-ld:TrafficFlowObserved:loop-1", 40.0, 0.2, 0)
    assert loop["observed_at"].startswith("2025-03-01T08:30:00")
    # beside the city's own loops (its reference data), the two sensors it did not describe joined on first report
    joined = [(s["sensor_id"], s["segment_id"]) for s in stored["sensors"] if ":loop-" in s["sensor_id"]]
    assert joined == [(f"urn:ngsi-ld:TrafficFlowObserved:loop-{n}", "urn:ngsi-ld:RoadSegment:edge-1") for n in (1, 2)]


def test_an_event_whose_data_fits_no_model_is_dead_lettered_naming_the_field(store):
    assert_bad_data_is_dead_lettered(store)
    assert [row["event_id"] for row in rows(store)["weather_observations"]] == ["weather-1", "weather-2"]


def test_a_redelivered_event_adds_no_row(store):
    assert_redelivery_changes_nothing(store, lambda: rows(store))
