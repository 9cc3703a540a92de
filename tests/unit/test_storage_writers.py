"""The latest-state, document and archive writers on the embedded backends: idempotent, newest wins, keys."""

import uuid
from datetime import timedelta

import pytest

from smartcity.backends.cache import open_cache
from smartcity.backends.documents import open_documents
from smartcity.backends.objects import open_objects
from smartcity.storage.archive import RawArchive, archive_key, batch_id
from smartcity.storage.documents import DEVICE_PAYLOADS, INCIDENTS, DocumentWriter
from smartcity.storage.latest_state import LatestState, latest_key
from tests.storage_samples import MOMENT, sample_events, sample_stored_events, stored


@pytest.fixture
def cache():
    return open_cache(f"memory://{uuid.uuid4().hex}")


def test_the_latest_state_keeps_the_newest_event_per_entity(cache):
    latest = LatestState(cache, ttl_s=60)
    older, newer = sample_stored_events(MOMENT), sample_stored_events(MOMENT + timedelta(seconds=5))
    assert latest.write(newer) == len(newer)
    assert latest.write(older) == 0  # late events do not overwrite
    assert latest.write(newer) == 0  # redelivery changes nothing
    state = latest.read("traffic-sensors", sample_events()["traffic-sensors"].id)
    assert state["time"] == (MOMENT + timedelta(seconds=5)).isoformat(timespec="microseconds")
    assert state["data"]["intensity"] == 3 and state["event_id"] == newer[0].event_id
    assert len(latest.read_all("weather")) == 1


def test_a_taxi_state_is_keyed_by_its_vehicle_and_one_batch_keeps_its_newest(cache):
    latest = LatestState(cache, ttl_s=60)
    taxi = sample_events()["taxi-vtc"]
    later = stored("taxi-vtc", taxi.model_copy(update={"dateObserved": MOMENT + timedelta(seconds=1)}))
    assert latest.write([later, stored("taxi-vtc", taxi)]) == 1
    assert cache.keys("latest:taxi-vtc:") == [latest_key("taxi-vtc", taxi.vehicleId)]
    assert latest.read("taxi-vtc", taxi.vehicleId)["event_id"] == later.event_id


def test_payloads_are_stored_once_and_an_incident_folds_its_reports_into_a_timeline(tmp_path):
    store = open_documents(f"embedded:///{tmp_path / 'documents.db'}")
    writer = DocumentWriter(store)
    events = sample_stored_events()
    assert writer.write(events) == (len(events), 1)
    assert writer.write(events) == (0, 0)
    alert = sample_events()["incidents"]
    cleared = alert.model_copy(update={"dateObserved": MOMENT + timedelta(minutes=30), "status": "cleared",
                                       "validTo": MOMENT + timedelta(minutes=30)})
    late = alert.model_copy(update={"dateObserved": MOMENT + timedelta(minutes=10), "severity": "medium"})
    assert writer.write([stored("incidents", cleared)]) == (1, 1)
    assert writer.write([stored("incidents", late), stored("incidents", late)]) == (1, 1)
    incident = store.get(INCIDENTS, alert.id)
    assert [entry["status"] for entry in incident["timeline"]] == ["active", "active", "cleared"]
    assert [entry["severity"] for entry in incident["timeline"]] == ["high", "medium", "high"]
    assert incident["status"] == "cleared" and incident["clearedAt"] == MOMENT + timedelta(minutes=30)
    assert incident["firstReportedAt"] == MOMENT
    assert store.count(DEVICE_PAYLOADS) == len(events) + 2


def test_archive_keys_are_partitioned_by_stream_date_and_hour():
    assert archive_key("weather", MOMENT, "abc") == "raw/weather/date=2025-03-01/hour=08/abc.parquet"
    assert batch_id(["b", "a"]) == batch_id(["a", "b"]) != batch_id(["a"])


def test_the_archive_holds_each_event_once_in_hourly_parquet_files(tmp_path, cache):
    archive = RawArchive(open_objects(f"file://{tmp_path / 'objects'}"), cache)
    first, next_hour = sample_stored_events(MOMENT), sample_stored_events(MOMENT + timedelta(hours=1))
    keys = archive.write(first + next_hour)
    assert len(keys) == 2 * len(first) and all(key.startswith("raw/") for key in keys)  # a file per stream and hour
    assert archive.write(first) == [] and archive.write(first + next_hour) == []
    table = archive.read("taxi-vtc")
    assert table.num_rows == 2 and sorted(table.column("event_id").to_pylist()) == sorted(
        e.event_id for e in (first + next_hour) if e.stream == "taxi-vtc")
    assert archive.read("taxi-vtc", "date=2025-03-01/hour=09/").num_rows == 1
    row = table.to_pylist()[0]
    assert row["type"] == "city.taxi.trip.updated.v1" and '"vehicleId"' in row["data"]


def test_the_same_batch_written_again_after_a_lost_mark_replaces_its_own_file(tmp_path):
    objects = open_objects(f"file://{tmp_path / 'objects'}")
    events = sample_stored_events()
    keys = RawArchive(objects, open_cache(f"memory://{uuid.uuid4().hex}")).write(events)
    # a new cache: as if the process died after writing the files, before marking the events archived
    assert RawArchive(objects, open_cache(f"memory://{uuid.uuid4().hex}")).write(events) == keys
    assert sorted(objects.list("raw/")) == sorted(keys)
