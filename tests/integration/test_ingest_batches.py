"""Batched delivery on the real Kafka and PostgreSQL (issue 17 item 1): a poll of hundreds of records reaches
store-timeseries as batches written by COPY, yet each bad record is dead-lettered alone with its reason, an event
sent twice is stored once, and a redelivered batch adds no row (the table's key, not dedup marks).
"""

from __future__ import annotations

import base64
import json
from datetime import timedelta

import pytest

from smartcity.backends.bus import open_bus
from smartcity.backends.cache import open_cache
from smartcity.backends.database import open_database
from smartcity.events import STREAMS
from smartcity.runtime.bindings import record_of
from smartcity.runtime.events import new_event
from smartcity.runtime.loader import load_stack
from smartcity.runtime.trigger import FunctionTrigger
from smartcity.settings import DEAD_LETTER_TOPIC
from smartcity.storage.migrate import migrate
from tests.integration.test_storage_real import settings, unique  # noqa: F401 - its fixtures: a database of the test's own
from tests.storage_samples import MOMENT, drain, prefixed_stack, sample_events

pytestmark = pytest.mark.real
STREAM = "traffic-sensors"
EVENTS = 600


@pytest.fixture
def topics(settings, unique):
    prefix = f"t-{unique}-"
    bus = open_bus(settings.bus_url, settings=settings)
    bus.create_topics([prefix + STREAM, prefix + DEAD_LETTER_TOPIC], 2)
    yield prefix, bus
    bus.delete_topics([prefix + STREAM, prefix + DEAD_LETTER_TOPIC])
    bus.close()


def publish(bus, topic: str, unique: str) -> list[str]:
    """EVENTS traffic events, the 100th sent twice, with a malformed record and an event of bad data among them;
    the ids of the good ones, in order."""
    ids = []
    for i in range(EVENTS):
        event = sample_events(MOMENT + timedelta(milliseconds=i), n=i % 50)[STREAM]
        cloudevent = new_event(STREAMS[STREAM].ce_type, "/tests", event, id=f"{unique}-{i}", partitionkey=event.id)
        key, value, headers = record_of(cloudevent)
        bus.publish(topic, value, key=key, headers=headers)
        ids.append(cloudevent.get_id())
        if i == 100:
            bus.publish(topic, value, key=key, headers=headers)
        if i == 200:  # a CloudEvent without its id
            bus.publish(topic, value, key=key, headers=[h for h in headers if h[0] != "ce_id"])
        if i == 300:  # data its model refuses: the occupancy is a fraction
            bad = json.loads(value)
            bad["occupancy"] = 7.0
            bus.publish(topic, json.dumps(bad).encode(), key=key,
                        headers=[h if h[0] != "ce_id" else ("ce_id", b"bad-data") for h in headers])
    bus.flush()
    return ids


def stored(db) -> list[str]:
    return [row["event_id"] for row in db.query("SELECT event_id FROM traffic_flow ORDER BY observed_at")]


def test_a_batch_dead_letters_only_its_bad_records_and_a_redelivery_stores_no_duplicate(settings, topics, unique, tmp_path):
    prefix, bus = topics
    ids = publish(bus, prefix + STREAM, unique)
    records = drain(bus, prefix + STREAM, expected=EVENTS + 3)
    assert len(records) == EVENTS + 3
    [function] = load_stack(prefixed_stack(tmp_path, prefix, ["store-timeseries"]), settings)
    trigger = FunctionTrigger(function)
    assert trigger.runner.batch_size >= 100  # the handler takes batches: several hundred events per call
    db = open_database(settings.database_url, settings=settings)
    cache = open_cache(settings.cache_url, settings=settings)
    try:
        migrate(db)
        outcome = trigger.process(records)
        assert (outcome.handled, outcome.dead_lettered) == (EVENTS + 1, 2)
        assert sorted(stored(db)) == sorted(ids)  # the event sent twice is one row; the two bad ones none

        dead = drain(bus, prefix + DEAD_LETTER_TOPIC, expected=2)
        reasons = {}
        for record in dead:
            headers = dict(record.headers)
            assert headers["ce_knativeerrorcode"] == b"400"
            reasons[headers.get("ce_id", b"").decode()] = json.loads(base64.b64decode(headers["ce_knativeerrordata"]))
        assert [error["field"] for error in reasons["bad-data"]["errors"]] == ["data.TrafficFlowObserved.occupancy"]
        [missing_id] = [problem for key, problem in reasons.items() if key != "bad-data"]
        assert [error["field"] for error in missing_id["errors"]] == ["id"]

        # store-timeseries is idempotent: the runtime keeps no dedup marks for it, the table's key does the work
        assert cache.get_many([trigger.runner.dedup.key(event) for event in outcome.pending]) == [None] * (EVENTS + 1)
        again = trigger.process(records)  # redelivered, as after a crash before the commit
        assert again.handled == EVENTS + 1
        assert sorted(stored(db)) == sorted(ids)
    finally:
        function.context._backends.close()
        db.close()
        cache.close()
