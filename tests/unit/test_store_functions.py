"""The store functions, loaded from stack.yml, fed by their Kafka trigger's record path on embedded backends."""

import base64
import json

import pytest

from smartcity.backends.bus import open_bus
from smartcity.backends.cache import open_cache
from smartcity.backends.database import open_database
from smartcity.backends.documents import open_documents
from smartcity.backends.objects import open_objects
from smartcity.events import STREAMS
from smartcity.runtime.bindings import record_of
from smartcity.runtime.events import new_event
from smartcity.runtime.loader import load_stack
from smartcity.runtime.trigger import FunctionTrigger
from smartcity.settings import DEAD_LETTER_TOPIC, PROJECT_ROOT
from smartcity.storage.archive import RawArchive
from smartcity.storage.documents import DEVICE_PAYLOADS, INCIDENTS
from smartcity.storage.migrate import migrate
from smartcity.storage.tables import STREAM_TABLES
from tests.storage_samples import drain, embedded_settings, sample_events

STORE_FUNCTIONS = ["store-timeseries", "store-latest", "store-documents", "archive-raw"]


@pytest.fixture
def settings(tmp_path):
    settings = embedded_settings(tmp_path)
    db = open_database(settings.database_url)
    migrate(db)
    db.close()
    return settings


def publish_samples(bus, entities: int) -> int:
    bus.create_topics([*STREAMS, DEAD_LETTER_TOPIC], 2)
    sent = 0
    for n in range(1, entities + 1):
        for topic, event in sample_events(n=n).items():
            cloudevent = new_event(STREAMS[topic].ce_type, "/tests", event, id=f"{topic}-{n}",
                                   partitionkey=STREAMS[topic].key_of(event))
            key, value, headers = record_of(cloudevent)
            bus.publish(topic, value, key=key, headers=headers)
            sent += 1
    weather = json.loads(record_of(new_event(STREAMS["weather"].ce_type, "/tests", sample_events()["weather"]))[1])
    bad = new_event(STREAMS["weather"].ce_type, "/tests", {**weather, "relativeHumidity": 45}, id="bad-humidity")
    key, value, headers = record_of(bad)
    bus.publish("weather", value, key=key, headers=headers)
    bus.flush()
    return sent


def snapshot(settings) -> dict:
    db, documents = open_database(settings.database_url), open_documents(settings.documents_url)
    cache, objects = open_cache(settings.cache_url), open_objects(settings.objects_url)
    try:
        return {
            "rows": {t.table: db.query(f"SELECT * FROM {t.table} ORDER BY event_id") for t in STREAM_TABLES.values()},
            "sensors": db.query("SELECT * FROM sensors ORDER BY sensor_id"),
            "latest": sorted(cache.keys("latest:")),
            "payloads": documents.find(DEVICE_PAYLOADS, sort=[("_id", 1)]),
            "incidents": documents.find(INCIDENTS, sort=[("_id", 1)]),
            "archive": {stream: sorted(RawArchive(objects, cache).read(stream).column("event_id").to_pylist())
                        for stream in STREAMS},
            "files": objects.list("raw/"),
        }
    finally:
        db.close()
        documents.close()


def test_the_store_functions_write_every_stream_once_and_dead_letter_bad_data(settings):
    bus = open_bus(settings.bus_url)
    sent = publish_samples(bus, entities=2)
    records = [record for topic in STREAMS for record in drain(bus, topic)]
    triggers = [FunctionTrigger(function) for function in load_stack(PROJECT_ROOT / "stack.yml", settings, STORE_FUNCTIONS)]
    for trigger in triggers:
        outcome = trigger.process(records)
        assert (outcome.handled, outcome.dead_lettered) == (sent, 1), trigger.name

    dead = drain(bus, DEAD_LETTER_TOPIC)
    assert len(dead) == len(triggers)
    for record in dead:
        headers = {name: value.decode() for name, value in record.headers}
        assert headers["ce_id"] == "bad-humidity" and headers["ce_knativeerrorcode"] == "400"
        assert "relativeHumidity" in base64.b64decode(headers["ce_knativeerrordata"]).decode()

    stored = snapshot(settings)
    assert {table: len(rows) for table, rows in stored["rows"].items()} == {t.table: 2 for t in STREAM_TABLES.values()}
    assert len(stored["sensors"]) == 2
    assert len(stored["latest"]) == sent and len(stored["payloads"]) == sent and len(stored["incidents"]) == 2
    assert all(len(ids) == 2 for ids in stored["archive"].values())

    for trigger in triggers:  # a redelivery of the same records: the runtime knows them handled
        trigger.process(records)
    assert snapshot(settings) == stored
    cache = open_cache(settings.cache_url)
    cache.delete(*cache.keys("dedup:"))  # as if those marks had expired: the handlers run again
    for trigger in triggers:
        assert trigger.process(records).handled == sent
    assert snapshot(settings) == stored
    bus.close()
