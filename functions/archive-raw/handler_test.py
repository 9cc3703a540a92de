"""archive-raw, loaded through the real loader and fed by its Kafka trigger's record path, over a local folder."""

from __future__ import annotations

import json

from smartcity.events import STREAMS
from smartcity.storage.archive import RawArchive
from tests.storage_samples import sample_events
from tests.stream_functions import (
    StoreFunction, assert_bad_data_is_dead_lettered, assert_redelivery_changes_nothing, store_fixture,
)

store = store_fixture("archive-raw")


def archived(store: StoreFunction) -> dict[str, list[str]]:
    """The archive's files, and the event ids archived of each stream."""
    archive = RawArchive(store.context.objects, store.context.cache)
    ids = {stream: sorted(archive.read(stream).column("event_id").to_pylist()) for stream in STREAMS}
    return {"files": store.context.objects.list("raw/"), **ids}


def test_each_streams_events_are_one_parquet_file_under_their_date_and_hour(store):
    assert store.deliver().handled == store.valid
    stored = archived(store)
    assert all(stored[topic] == [f"{topic}-1", f"{topic}-2"] for topic in STREAMS)
    assert len(stored["files"]) == len(STREAMS)
    by_topic = {key.split("/")[1]: key for key in stored["files"]}  # raw/<topic>/date=.../hour=.../<file>
    assert sorted(by_topic) == sorted(STREAMS)
    assert all(key.startswith(f"raw/{topic}/date=2025-03-01/hour=08/") and key.endswith(".parquet")
               for topic, key in by_topic.items())
    table = RawArchive(store.context.objects, store.context.cache).read("bike-share").to_pylist()
    first = next(row for row in table if row["event_id"] == "bike-share-1")
    assert first["type"] == STREAMS["bike-share"].ce_type and first["source"] == "/tests"
    assert json.loads(first["data"]) == sample_events()["bike-share"].model_dump(mode="json")


def test_an_event_whose_data_fits_no_model_is_dead_lettered_naming_the_field(store):
    assert_bad_data_is_dead_lettered(store)
    assert archived(store)["weather"] == ["weather-1", "weather-2"]


def test_a_redelivered_event_is_not_archived_twice(store):
    assert_redelivery_changes_nothing(store, lambda: archived(store))
