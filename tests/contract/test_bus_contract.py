"""The event bus contract, run against the embedded file log and against Kafka."""

from __future__ import annotations

import time
from collections import defaultdict

import pytest

from smartcity.backends.bus import EventBus, Record, open_bus
from tests.contract.conftest import IMPLEMENTATIONS, open_implementation

WAIT_S = 40.0  # a Kafka consumer group takes a few seconds to form


@pytest.fixture(params=IMPLEMENTATIONS)
def bus(request, tmp_path) -> EventBus:
    bus = open_implementation(request, open_bus, f"file://{tmp_path}/bus", "bus_url")
    yield bus
    bus.close()


@pytest.fixture
def topic(bus, unique) -> str:
    name = f"contract-{unique}"
    bus.create_topics([name], partitions=3)
    yield name
    bus.delete_topics([name])


def drain(consumer, count: int, timeout_s: float = WAIT_S) -> list[Record]:
    """Poll until ``count`` records came (or the time is up); returns what came."""
    records: list[Record] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        records += consumer.poll(timeout_s=0.5)
    return records


def publish_numbered(bus, topic: str, count: int, keys: int = 0) -> list[bytes]:
    values = [f"record-{i}".encode() for i in range(count)]
    for i, value in enumerate(values):
        bus.publish(topic, value, key=f"key-{i % keys}".encode() if keys else None)
    bus.flush()
    return values


def test_order_is_kept_per_partition_and_one_key_lands_in_one_partition(bus, topic, unique):
    publish_numbered(bus, topic, 60, keys=6)
    consumer = bus.consumer(f"g-{unique}", [topic])
    records = drain(consumer, 60)
    consumer.close()
    assert len(records) == 60
    partitions_of_key = defaultdict(set)
    offsets_of_partition = defaultdict(list)
    numbers_of_key = defaultdict(list)
    for record in records:
        partitions_of_key[record.key].add(record.partition)
        offsets_of_partition[record.partition].append(record.offset)
        numbers_of_key[record.key].append(int(record.value.split(b"-")[1]))
    assert all(len(partitions) == 1 for partitions in partitions_of_key.values())
    for offsets in offsets_of_partition.values():
        assert offsets == list(range(offsets[0], offsets[0] + len(offsets)))
    for numbers in numbers_of_key.values():
        assert numbers == sorted(numbers)


def test_key_value_headers_and_timestamp_round_trip(bus, topic, unique):
    binary = bytes(range(256))
    before_ms = int(time.time() * 1000)
    bus.publish(topic, binary, key="sensor-é".encode(), headers=[("ce_type", b"city.traffic"), ("ce_id", "é-1".encode())])
    bus.publish(topic, b'{"speed": 42}', key=None)
    bus.flush()
    consumer = bus.consumer(f"g-{unique}", [topic])
    records = {record.value: record for record in drain(consumer, 2)}
    consumer.close()
    assert set(records) == {binary, b'{"speed": 42}'}
    first = records[binary]
    assert first.key == "sensor-é".encode() and first.topic == topic
    assert sorted(first.headers) == [("ce_id", "é-1".encode()), ("ce_type", b"city.traffic")]
    assert before_ms - 1000 <= first.timestamp_ms <= int(time.time() * 1000) + 1000
    assert records[b'{"speed": 42}'].key is None


def test_group_resumes_after_its_commit(bus, topic, unique):
    publish_numbered(bus, topic, 30, keys=3)
    first = bus.consumer(f"g-{unique}", [topic])
    records = drain(first, 30)
    handled = [r for r in records if int(r.value.split(b"-")[1]) < 15]
    first.commit(handled)
    first.close()
    second = bus.consumer(f"g-{unique}", [topic])
    rest = drain(second, 30 - len(handled))
    assert second.poll(timeout_s=1.0) == []
    second.close()
    # Per key (so per partition) the commit covered a prefix: the rest is exactly what came after it.
    assert sorted(r.value for r in rest) == sorted(r.value for r in records if r not in handled)


def test_uncommitted_records_are_redelivered_to_the_next_member(bus, topic, unique):
    values = publish_numbered(bus, topic, 12)
    first = bus.consumer(f"g-{unique}", [topic])
    assert sorted(r.value for r in drain(first, 12)) == sorted(values)
    first.close()
    second = bus.consumer(f"g-{unique}", [topic])
    assert sorted(r.value for r in drain(second, 12)) == sorted(values)
    second.close()


def test_two_groups_each_see_everything(bus, topic, unique):
    values = publish_numbered(bus, topic, 20, keys=4)
    consumers = [bus.consumer(f"g-{unique}-{n}", [topic]) for n in (1, 2)]
    for consumer in consumers:
        assert sorted(r.value for r in drain(consumer, 20)) == sorted(values)
        consumer.close()


def test_a_group_with_no_commit_can_start_at_the_end(bus, topic, unique):
    publish_numbered(bus, topic, 5)
    consumer = bus.consumer(f"g-{unique}", [topic], from_beginning=False)
    # Publish after the member has taken its partitions, so "the end" is the end before these.
    seen: list[Record] = []
    deadline = time.monotonic() + WAIT_S
    while not seen and time.monotonic() < deadline:
        seen += consumer.poll(timeout_s=0.5)
        bus.publish(topic, b"late", key=b"late")
        bus.flush()
    seen += drain(consumer, 1, timeout_s=2)
    consumer.close()
    assert seen and {r.value for r in seen} == {b"late"}


def test_bad_names_and_headers_are_refused(bus, topic):
    with pytest.raises(ValueError, match="topic name"):
        bus.create_topics(["bad/name"], partitions=1)
    with pytest.raises(ValueError, match="topic name"):
        bus.delete_topics(["bad/name"])
    with pytest.raises(ValueError, match="'ce_id' appears twice"):
        bus.publish(topic, b"x", headers=[("ce_id", b"1"), ("ce_id", b"2")])
    with pytest.raises(ValueError, match="'ce_id': the value must be UTF-8"):
        bus.publish(topic, b"x", headers=[("ce_id", b"\xff")])
