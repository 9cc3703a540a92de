"""The simulator publishing into the real Kafka: a short run, consumed back, counted and decoded."""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import orjson
import pytest

from smartcity.backends.bus import open_bus
from smartcity.events import STREAMS, TOPICS
from smartcity.privacy import Pseudonymizer
from smartcity.runtime.bindings import event_from_record
from smartcity.simulator.clock import CityClock
from smartcity.simulator.incidents import IncidentPlan
from smartcity.simulator.runner import publish
from smartcity.simulator.simulation import CitySimulation, SimulatorOptions
from smartcity.simulator.sinks import BusSink

pytestmark = pytest.mark.real

START = datetime(2026, 3, 2, 7, 58, tzinfo=ZoneInfo("Europe/Berlin"))


def test_a_short_run_reaches_kafka_whole_and_decodes_back(real_stack):
    prefix = f"test-sim-{uuid.uuid4().hex[:8]}."
    topics = [prefix + topic for topic in TOPICS]
    bus = open_bus(real_stack["SMARTCITY_BUS_URL"])
    sink = BusSink(bus, 3, lambda: Pseudonymizer(b"integration-test-key", 3), topic_prefix=prefix)
    try:
        options = SimulatorOptions(start=START, seed=9, duration_s=300, sensors=40,
                                   incidents=(IncidentPlan("accident", START, minutes=2),))
        with CitySimulation(options) as simulation:
            report = publish(simulation.ticks(), sink, CityClock(START, speed=0))
        assert set(report.by_topic) == set(TOPICS)

        consumer = bus.consumer(f"{prefix}check", topics)
        seen: dict[str, int] = {}
        # Until every published record is back or a minute has passed: an empty poll is no end (a loaded machine
        # can leave a partition's first fetch waiting longer than one poll; the flush confirmed every delivery).
        deadline = time.monotonic() + 60
        try:
            while sum(seen.values()) < report.events and time.monotonic() < deadline:
                records = consumer.poll(timeout_s=5, max_records=2000)
                for record in records:
                    topic = record.topic[len(prefix):]
                    event = event_from_record(record, "/test")
                    assert event.get_type() == STREAMS[topic].ce_type
                    STREAMS[topic].model.model_validate(orjson.loads(record.value))
                    seen[topic] = seen.get(topic, 0) + 1
                consumer.commit(records)
        finally:
            consumer.close()
        assert seen == dict(report.by_topic)
    finally:
        bus.delete_topics(topics)
        bus.close()
