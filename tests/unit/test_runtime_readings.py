"""The one recipe from a reading to the bus (smartcity.runtime.readings), as every producer uses it."""

from __future__ import annotations

import json

from smartcity.backends.bus import open_bus
from smartcity.events import STREAMS
from smartcity.runtime.bindings import record_of
from smartcity.runtime import tracing
from smartcity.runtime.readings import event_id, publish_event, reading_event
from smartcity.simulator.sinks import cloud_event
from tests.fixtures.functions.helpers import read_all
from tests.storage_samples import sample_events


def test_a_reading_becomes_a_binary_mode_record_keyed_by_its_streams_key_field():
    stream, taxi = STREAMS["taxi-vtc"], sample_events()["taxi-vtc"]
    key, value, headers = record_of(reading_event(stream, taxi, "/tests"))
    assert key == str(taxi.id).encode()
    headers = dict(headers)
    assert tracing.parse(headers.pop("ce_traceparent").decode()) is not None  # made outside any trace: starts one
    assert headers == {
        "ce_specversion": b"1.0", "ce_id": event_id(stream, taxi).encode(), "ce_source": b"/tests",
        "ce_type": stream.ce_type.encode(), "ce_subject": taxi.id.encode(), "ce_partitionkey": key,
        "ce_time": taxi.dateObserved.isoformat().replace("+00:00", "Z").encode(), "content-type": b"application/json",
    }
    assert json.loads(value) == taxi.model_dump(mode="json", by_alias=True)


def _untraced(record):
    """A record without its trace context: each sending of a reading is a span of its own."""
    key, value, headers = record
    return key, value, [(name, header) for name, header in headers if name != "ce_traceparent"]


def test_the_same_reading_is_the_same_event_whoever_publishes_it():
    stream, bus_position = STREAMS["public-transport"], sample_events()["public-transport"]
    from_simulator = _untraced(record_of(cloud_event(stream, bus_position)))
    from_recipe = _untraced(record_of(reading_event(stream, bus_position, "/smartcity/simulator/public-transport")))
    assert from_simulator == from_recipe and from_recipe[0] == bus_position.vehicleId.encode()
    given = reading_event(stream, bus_position, "/elsewhere", id="alert-1")
    assert given.get_id() == "alert-1" and given.get_source() == "/elsewhere"


def test_publish_event_writes_the_record_the_recipe_makes(tmp_path):
    stream, weather = STREAMS["weather"], sample_events()["weather"]
    bus = open_bus(f"file://{tmp_path}/bus")
    try:
        bus.create_topics(["weather"], 1)
        event = reading_event(stream, weather, "/tests")
        publish_event(bus, "weather", event)
        bus.flush()
        [record] = read_all(bus, ["weather"], expected=1)
    finally:
        bus.close()
    assert (record.key, record.value, list(record.headers)) == record_of(event)
