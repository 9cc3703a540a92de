"""Helpers of the ``functions/<name>/handler_test.py`` of the ingest and store functions.

Each test loads its one function from the project's ``stack.yml`` through the real loader, on embedded backends
under the test's own folder (a migrated SQLite database holding the city's reference tables, a file bus, an
in-memory cache, an embedded document store, a local object folder): an ingest function behind the real gateway,
a store function behind its Kafka trigger's record path, fed with records the way the bus delivers them.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient

from smartcity.backends.bus import EventBus, Record, open_bus
from smartcity.backends.database import open_database
from smartcity.events import STREAMS, CityEvent
from smartcity.ingest import event_id
from smartcity.runtime.bindings import record_of
from smartcity.runtime.events import new_event
from smartcity.runtime.gateway import build_gateway
from smartcity.runtime.context import Context
from smartcity.runtime.loader import LoadedFunction, load_stack
from smartcity.runtime.trigger import FunctionTrigger, Outcome
from smartcity.settings import DEAD_LETTER_TOPIC, PROJECT_ROOT, Settings
from smartcity.storage.migrate import migrate
from smartcity.storage.reference import load_reference
from tests.credentials import ingest_headers
from tests.storage_samples import drain, embedded_settings, sample_events

STACK_FILE = PROJECT_ROOT / "stack.yml"
# The one invalid record every store function is fed: a humidity of 45 where the model takes a ratio 0..1.
BAD_EVENT_ID = "bad-humidity"


def prepared_settings(folder: Path) -> Settings:
    """Embedded settings under ``folder`` whose database is migrated and holds the city's reference tables."""
    settings = embedded_settings(folder)
    db = open_database(settings.database_url)
    try:
        migrate(db)
        load_reference(db)
    finally:
        db.close()
    return settings


# --- ingest functions ---------------------------------------------------------------------------------------


def reading(stream: str, **changes: Any) -> dict[str, Any]:
    """The sample reading of a stream as a device sends it (key-value JSON), with ``changes``."""
    return {**sample_events()[stream].model_dump(mode="json"), **changes}


@dataclass
class IngestFunction:
    """An ingest function served by the real gateway, and the bus it publishes to."""

    stream: str
    client: TestClient
    settings: Settings

    def post(self, body: Any, content_type: str = "application/json"):
        """POST a body to the function: JSON-encoded unless it is text already (CSV)."""
        content = body.encode() if isinstance(body, str) else orjson.dumps(body)
        return self.client.post(f"/function/ingest-{self.stream}", content=content,
                                headers={"content-type": content_type})

    def published(self) -> list[tuple[dict[str, Any], Record]]:
        """What the function published on its stream's topic: (the event's data, the bus record)."""
        bus = open_bus(self.settings.bus_url)
        try:
            return [(orjson.loads(record.value), record) for record in drain(bus, self.stream)]
        finally:
            bus.close()


@contextmanager
def ingest_function(folder: Path, stream: str) -> Iterator[IngestFunction]:
    """``ingest-<stream>`` loaded from stack.yml and served by the gateway, on embedded backends under ``folder``."""
    settings = prepared_settings(folder)
    with TestClient(build_gateway(STACK_FILE, settings, [f"ingest-{stream}"]),
                    headers=ingest_headers(settings, [stream])) as client:
        yield IngestFunction(stream, client, settings)


def function_fixture(open_function: Callable[[Path, str], AbstractContextManager[Any]], name: str):
    """A pytest fixture of one function opened by ``open_function(tmp_path, name)``, for its handler_test.py."""

    @pytest.fixture
    def function(tmp_path: Path) -> Iterator[Any]:
        with open_function(tmp_path, name) as opened:
            yield opened

    return function


def ingest_fixture(stream: str):
    """A pytest fixture of ``ingest-<stream>``: :func:`ingest_function` under the test's own folder."""
    return function_fixture(ingest_function, stream)


def headers_of(record: Record) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def assert_published(ingest: IngestFunction, answer) -> list[dict[str, Any]]:
    """The answer is a 202 and each id it gives is one CloudEvent on the stream's topic: of the stream's type, keyed
    by the stream's key field, its id derived from the reading (:func:`smartcity.ingest.event_id`). Returns the
    events' data, in the order of the answer's ids."""
    assert answer.status_code == 202, answer.text
    body, stream = answer.json(), STREAMS[ingest.stream]
    by_id = {headers_of(record)["ce_id"]: (data, record) for data, record in ingest.published()}
    assert sorted(by_id) == sorted(body["ids"]) and body["accepted"] == len(body["ids"]) > 0
    for ce_id, (data, record) in by_id.items():
        event = stream.model.model_validate(data)
        assert headers_of(record)["ce_type"] == stream.ce_type and ce_id == event_id(stream, event)
        assert record.key == stream.key_of(event).encode()
    return [by_id[ce_id][0] for ce_id in body["ids"]]


def assert_refused(ingest: IngestFunction, body: Any, *fields: str, content_type: str = "application/json",
                   accepted: int = 0) -> dict[str, str]:
    """The body gets a 422 naming each of ``fields`` with a reason, and only its ``accepted`` valid readings reach
    the topic. Returns the reasons by field."""
    answer = ingest.post(body, content_type)
    assert answer.status_code == 422, answer.text
    # each field is located as [<index in the body>].<field>
    reasons = {error["field"].split("].", 1)[-1]: error["reason"] for error in answer.json()["errors"]}
    assert set(fields) <= set(reasons) and all(reasons.values()), reasons
    assert len(ingest.published()) == accepted
    return reasons


# --- store functions ----------------------------------------------------------------------------------------


@dataclass
class StoreFunction:
    """A store function behind its trigger, and the records of every stream it is fed (one of them invalid)."""

    function: LoadedFunction
    bus: EventBus
    records: list[Record]
    valid: int

    @property
    def context(self) -> Context:
        return self.function.context

    def deliver(self) -> Outcome:
        """Hand every record to the function as its Kafka trigger does (a trigger of its own each time)."""
        return FunctionTrigger(self.function).process(self.records)

    def deliver_events(self, topic: str, events: dict[str, CityEvent]) -> Outcome:
        """Publish these events (keyed by CloudEvent id) on ``topic`` and hand just their records to the function."""
        for ce_id, event in events.items():
            publish_event(self.bus, topic, event.model_dump(mode="json"), ce_id)
        self.bus.flush()
        records = [record for record in drain(self.bus, topic) if headers_of(record)["ce_id"] in events]
        assert len(records) == len(events)
        return FunctionTrigger(self.function).process(records)

    def forget_handled(self) -> None:
        """Drop the runtime's marks of handled events, as if they had expired: a redelivery runs the handler."""
        cache = self.context.cache
        cache.delete(*cache.keys("dedup:"))

    def dead_letters(self) -> list[Record]:
        return drain(self.bus, DEAD_LETTER_TOPIC)


def publish_samples(bus: EventBus, entities: int) -> int:
    """``entities`` sample events of each stream on the bus, then one invalid weather event; how many valid."""
    bus.create_topics([*STREAMS, DEAD_LETTER_TOPIC], 2)
    sent = 0
    for n in range(1, entities + 1):
        for topic, event in sample_events(n=n).items():
            publish_event(bus, topic, event.model_dump(mode="json"), f"{topic}-{n}")
            sent += 1
    publish_event(bus, "weather", {**sample_events()["weather"].model_dump(mode="json"), "relativeHumidity": 45},
                  BAD_EVENT_ID)
    bus.flush()
    return sent


def publish_event(bus: EventBus, topic: str, data: dict[str, Any], ce_id: str) -> None:
    """One CloudEvent of the topic's stream, in Kafka binary mode, keyed as the stream keys it."""
    stream = STREAMS[topic]
    cloudevent = new_event(stream.ce_type, "/tests", data, id=ce_id, partitionkey=str(data[stream.key_field]))
    key, value, headers = record_of(cloudevent)
    bus.publish(topic, value, key=key, headers=headers)


@contextmanager
def store_function(folder: Path, name: str, entities: int = 2) -> Iterator[StoreFunction]:
    """The store function ``name`` loaded from stack.yml, and the records of ``entities`` sample events a stream."""
    settings = prepared_settings(folder)
    bus = open_bus(settings.bus_url)
    try:
        valid = publish_samples(bus, entities)
        records = [record for topic in STREAMS for record in drain(bus, topic)]
        [function] = load_stack(STACK_FILE, settings, [name])
        yield StoreFunction(function, bus, records, valid)
    finally:
        bus.close()


def store_fixture(name: str):
    """A pytest fixture of the store function ``name``: :func:`store_function` under the test's own folder."""
    return function_fixture(store_function, name)


def assert_bad_data_is_dead_lettered(store: StoreFunction) -> None:
    """Every valid record is handled; the invalid one goes to the dead-letter topic, 400, naming its field."""
    outcome = store.deliver()
    assert (outcome.handled, outcome.dead_lettered) == (store.valid, 1)
    [dead] = store.dead_letters()
    headers = headers_of(dead)
    assert headers["ce_id"] == BAD_EVENT_ID and headers["ce_knativeerrorcode"] == "400"
    assert "relativeHumidity" in base64.b64decode(headers["ce_knativeerrordata"]).decode()


def assert_redelivery_changes_nothing(store: StoreFunction, stored: Callable[[], Any]) -> None:
    """A redelivery of every record, the runtime's marks kept and then forgotten, leaves ``stored()`` as it was.
    An idempotent handler has no marks: it runs on every redelivered event, and its store keeps each once."""
    store.deliver()
    before = stored()
    assert before, "the first delivery stored nothing"
    again = store.deliver().pending
    if store.function.handler.idempotent:
        assert len(again) == store.valid
    else:
        assert again == []  # marked handled: the runtime does not run the handler again
    assert stored() == before
    store.forget_handled()
    assert len(store.deliver().pending) == store.valid  # the marks gone, the handler runs on every one again
    assert stored() == before
