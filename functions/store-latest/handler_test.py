"""store-latest, loaded through the real loader and fed by its Kafka trigger's record path, over an in-memory cache."""

from __future__ import annotations

from datetime import timedelta

import orjson

from smartcity.storage.latest_state import latest_key
from tests.storage_samples import MOMENT, sample_events
from tests.stream_functions import (
    StoreFunction, assert_bad_data_is_dead_lettered, assert_redelivery_changes_nothing, store_fixture,
)

store = store_fixture("store-latest")


def states(store: StoreFunction) -> dict[str, dict]:
    cache = store.context.cache
    keys = sorted(cache.keys("latest:"))
    return {key: orjson.loads(value) for key, value in zip(keys, cache.get_many(keys))}


def test_each_entity_has_its_latest_state_under_its_key(store):
    assert store.deliver().handled == store.valid
    stored = states(store)
    assert len(stored) == store.valid
    taxi = sample_events(n=2)["taxi-vtc"]
    state = stored[latest_key("taxi-vtc", taxi.vehicleId)]  # a taxi's state is its vehicle's, not its trip's
    assert (state["stream"], state["event_id"], state["entity_id"]) == ("taxi-vtc", "taxi-vtc-2", taxi.vehicleId)
    assert state["data"] == taxi.model_dump(mode="json") and state["time"].startswith("2025-03-01T08:30:00")
    bus = sample_events()["public-transport"]
    assert stored[latest_key("public-transport", bus.vehicleId)]["event_id"] == "public-transport-1"
    assert stored[latest_key("traffic-sensors", "urn:ngsi-ld:TrafficFlowObserved:loop-1")]["data"]["occupancy"] == 0.2


def test_the_newer_reading_wins_whatever_the_order_of_arrival(store):
    store.deliver()
    key = latest_key("weather", sample_events()["weather"].id)
    later, earlier = (sample_events(MOMENT + timedelta(minutes=m))["weather"] for m in (5, -5))
    assert store.deliver_events("weather", {"weather-later": later}).handled == 1
    assert states(store)[key]["event_id"] == "weather-later"
    assert store.deliver_events("weather", {"weather-earlier": earlier}).handled == 1  # late: handled, not stored
    assert states(store)[key]["event_id"] == "weather-later"


def test_an_event_whose_data_fits_no_model_is_dead_lettered_naming_the_field(store):
    assert_bad_data_is_dead_lettered(store)
    assert all(state["event_id"] != "bad-humidity" for state in states(store).values())


def test_a_redelivered_event_changes_no_state(store):
    assert_redelivery_changes_nothing(store, lambda: states(store))
