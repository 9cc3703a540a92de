"""End to end on the real local stack: simulator -> ingest functions (HTTP) -> Kafka -> store functions ->
PostgreSQL, FerretDB, Redis and the S3 archive.

Ten minutes of the simulated city (all eight streams, an accident) are POSTed to the ingest functions through the
gateway; two malformed records are put on a topic beside them. Every store must then hold exactly the events
sent, the malformed ones dead-lettered by each store function. The same readings are then sent again, with the
runtime's dedup marks cleared (as if they had expired): no row, document, state or file changes.

The test has its own topics (a prefix), database, document database, bucket and Redis database, and removes them.
"""

import time
import uuid
from collections import Counter
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from smartcity.backends.bus import open_bus
from smartcity.backends.cache import open_cache
from smartcity.backends.database import open_database
from smartcity.backends.documents import open_documents
from smartcity.backends.objects import open_objects
from smartcity.events import STREAMS, TOPICS
from smartcity.privacy import Pseudonymizer
from smartcity.runtime.bindings import record_of
from smartcity.runtime.events import new_event
from smartcity.runtime.gateway import build_gateway
from smartcity.runtime.loader import load_stack
from smartcity.runtime.trigger import Triggers
from smartcity.settings import DEAD_LETTER_TOPIC
from smartcity.simulator.clock import CityClock
from smartcity.simulator.incidents import IncidentPlan
from smartcity.simulator.runner import publish
from smartcity.simulator.simulation import CitySimulation, SimulatorOptions
from smartcity.simulator.sinks import HttpSink
from smartcity.storage.archive import RawArchive
from smartcity.storage.documents import DEVICE_PAYLOADS, INCIDENTS
from smartcity.storage.envelope import LATEST_STATE_FIELD, iso_utc
from smartcity.storage.latest_state import LatestState
from smartcity.storage.migrate import migrate
from smartcity.storage.reference import load_reference
from smartcity.storage.tables import STREAM_TABLES
from tests.credentials import ingest_headers
from tests.storage_samples import drain, drop_real_stores, prefixed_stack, real_settings_of_own

pytestmark = [pytest.mark.real, pytest.mark.e2e]
START = datetime(2026, 3, 2, 7, 55, tzinfo=ZoneInfo("Europe/Berlin"))
STORE_FUNCTIONS = ["store-timeseries", "store-latest", "store-documents", "archive-raw"]
INGEST_FUNCTIONS = [f"ingest-{topic}" for topic in STREAMS]
REDIS_DB = 13  # the test's own Redis database: the simulator's entity ids are the demo's
WAIT_S = 180


class RecordingSink(HttpSink):
    """The HTTP sink, keeping every reading it sent (to send them again, and to know what to expect)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.sent: list[tuple] = []

    def send(self, stream, events) -> None:
        super().send(stream, events)
        self.sent += [(stream, event) for event in events]


@pytest.fixture
def settings(real_stack, tmp_path):
    settings = real_settings_of_own(real_stack, tmp_path, REDIS_DB, topic_partitions=3)
    cache = open_cache(settings.cache_url)
    clear_cache(cache)
    yield settings
    clear_cache(cache)
    drop_real_stores(settings)


def clear_cache(cache) -> None:
    for prefix in ("latest:", "archived:", "dedup:"):
        if keys := cache.keys(prefix):
            cache.delete(*keys)


def wait_until(done, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not done():
        assert time.monotonic() < deadline, f"not within {WAIT_S} s: {what}"
        time.sleep(0.5)


def invocations(metrics, function: str, code: int) -> int:
    value = metrics.registry.get_sample_value("gateway_function_invocation_total",
                                              {"function_name": function, "code": str(code)})
    return int(value or 0)


def test_the_simulated_city_lands_in_every_store_once(settings, tmp_path):
    prefix = f"e2e-{uuid.uuid4().hex[:8]}-"
    db, documents = open_database(settings.database_url, settings=settings), open_documents(settings.documents_url, settings=settings)
    cache, objects = open_cache(settings.cache_url, settings=settings), open_objects(settings.objects_url, settings=settings)
    bus = open_bus(settings.bus_url, settings=settings)
    bus.create_topics([prefix + topic for topic in STREAMS] + [prefix + DEAD_LETTER_TOPIC], settings.topic_partitions)
    migrate(db)
    load_reference(db)
    stack_file = prefixed_stack(tmp_path, prefix, INGEST_FUNCTIONS + STORE_FUNCTIONS)
    triggers = Triggers(load_stack(stack_file, settings, STORE_FUNCTIONS))
    try:
        with triggers, TestClient(build_gateway(stack_file, settings, INGEST_FUNCTIONS),
                                  headers=ingest_headers(settings)) as gateway:
            sink = RecordingSink("http://testserver/function/ingest-{topic}", client=gateway)
            options = SimulatorOptions(start=START, seed=7, sensors=10, duration_s=600,
                                       incidents=(IncidentPlan("accident", START, minutes=4),))
            with CitySimulation(options) as simulation:
                report = publish(simulation.ticks(), sink, CityClock(simulation.start, 0))
            assert set(report.by_topic) == set(TOPICS)  # the simulated streams, report.by_topic
            bad = malformed_records(bus, prefix)
            sent = report.events

            def all_handled(times: int) -> bool:
                return all(invocations(triggers.metrics, f, 200) >= times * sent
                           and invocations(triggers.metrics, f, 400) >= bad for f in STORE_FUNCTIONS)

            wait_until(lambda: all_handled(1), "every store function handled every event once")
            expected = expectations(sink.sent, settings)
            for function in STORE_FUNCTIONS:  # stored + dead-lettered = sent
                assert invocations(triggers.metrics, function, 200) == sent
                assert invocations(triggers.metrics, function, 400) == bad
            assert len(drain(bus, prefix + DEAD_LETTER_TOPIC, expected=bad * 4)) == bad * 4
            before = check_stores(expected, report.by_topic, db, documents, cache, objects)

            cache.delete(*cache.keys("dedup:"))  # as if the runtime's dedup marks had expired
            resend(gateway, sink.sent)
            wait_until(lambda: all_handled(2), "every store function handled the redelivery")
            assert check_stores(expected, report.by_topic, db, documents, cache, objects) == before
    finally:
        bus.delete_topics([prefix + topic for topic in STREAMS] + [prefix + DEAD_LETTER_TOPIC])
        bus.close()
        db.close()
        documents.close()


def malformed_records(bus, prefix: str) -> int:
    """Two weather records no store can take: data that breaks the model, and a body that is no JSON."""
    good = new_event(STREAMS["weather"].ce_type, "/tests", {"type": "WeatherObserved", "temperature": 900}, id="bad-1")
    key, value, headers = record_of(good)
    bus.publish(prefix + "weather", value, key=b"bad", headers=headers)
    bus.publish(prefix + "weather", b"{not json", key=b"bad",
                headers=[(name, b"bad-2" if name == "ce_id" else v) for name, v in headers])
    bus.flush()
    return 2


def resend(gateway: TestClient, sent: list[tuple]) -> None:
    by_topic: dict[str, list] = {}
    for stream, event in sent:
        by_topic.setdefault(stream.topic, []).append(event.model_dump(mode="json"))
    for topic, readings in by_topic.items():
        for start in range(0, len(readings), 500):
            answer = gateway.post(f"/function/ingest-{topic}", json=readings[start:start + 500])
            assert answer.status_code == 202, answer.text


def expectations(sent: list[tuple], settings) -> dict:
    """What the stores must hold: each entity's newest time, and the incidents."""
    pseudonymizer = Pseudonymizer.from_settings(settings)
    newest: dict[str, str] = {}
    for stream, event in sent:
        event = pseudonymizer.apply(event) if stream.personal_fields else event
        entity = str(getattr(event, LATEST_STATE_FIELD.get(stream.topic, stream.key_field)))
        key = f"{stream.topic}|{entity}"
        newest[key] = max(newest.get(key, ""), iso_utc(event.dateObserved))
    incidents = {event.id for stream, event in sent if stream.topic == "incidents"}
    return {"newest": newest, "incidents": incidents}


def check_stores(expected: dict, by_topic: Counter, db, documents, cache, objects) -> dict:
    """Assert each store holds what was sent; return a snapshot of them all."""
    counts = {topic: by_topic[topic] for topic in STREAMS}  # 0 for a stream the simulator has no source of
    rows = {t.table: db.query(f"SELECT * FROM {t.table} ORDER BY event_id") for t in STREAM_TABLES.values()}
    assert {stream: len(rows[t.table]) for stream, t in STREAM_TABLES.items()} == counts
    assert documents.count(DEVICE_PAYLOADS) == sum(by_topic.values())
    incidents = documents.find(INCIDENTS, sort=[("_id", 1)])
    assert {incident["_id"] for incident in incidents} == expected["incidents"]
    assert sum(len(incident["timeline"]) for incident in incidents) == by_topic["incidents"]
    latest = LatestState(cache, ttl_s=1)
    states = {f"{s['stream']}|{s['entity_id']}": s["time"] for topic in STREAMS for s in latest.read_all(topic)}
    assert states == expected["newest"]
    archive = RawArchive(objects, cache)
    tables = {topic: archive.read(topic) for topic in STREAMS}
    assert {topic: len(set(t.column("event_id").to_pylist())) for topic, t in tables.items()} == counts
    assert {topic: t.num_rows for topic, t in tables.items()} == counts
    return {"rows": rows, "incidents": incidents, "states": states, "files": objects.list("raw/"),
            "payloads": documents.count(DEVICE_PAYLOADS)}
