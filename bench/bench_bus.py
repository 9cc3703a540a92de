"""Bench: records per second published and consumed on the embedded file log and on Kafka, in one run.

    .venv/bin/python bench/bench_bus.py [--records 50000] [--value-bytes 200] [--kafka-url kafka://127.0.0.1:9092]

Each bus gets a fresh 3-partition topic; the same keyed records with two headers are published then flushed
(publish rate), then read by one consumer group member that commits after every poll (consume rate). Kafka is
the one named by ``--kafka-url``, else by ``SMARTCITY_BUS_URL`` when that is a ``kafka://`` URL, else the local
stack's (``smartcity stack up kafka``); when it cannot be reached the Kafka row says so and is skipped.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid

from smartcity.backends.bus import open_bus
from smartcity.errors import ConfigurationError

DEFAULT_KAFKA_URL = "kafka://127.0.0.1:9092"


def measure(url: str, records: int, value_bytes: int) -> tuple[float, float]:
    """(published records/s, consumed records/s) on the bus at ``url``."""
    bus = open_bus(url)
    topic = f"bench-{uuid.uuid4().hex[:8]}"
    bus.create_topics([topic], partitions=3)
    payload = b"x" * value_bytes
    headers = [("ce_type", b"city.traffic.reading"), ("ce_source", b"bench")]
    try:
        started = time.perf_counter()
        for i in range(records):
            bus.publish(topic, payload, key=f"sensor-{i % 100}".encode(), headers=headers)
        bus.flush()
        published = records / (time.perf_counter() - started)

        consumer = bus.consumer(f"bench-{uuid.uuid4().hex[:8]}", [topic])
        seen = 0
        first = consumer.poll(timeout_s=30)  # group join and assignment: not counted
        consumer.commit(first)
        seen += len(first)
        started = time.perf_counter()
        while seen < records:
            batch = consumer.poll(timeout_s=10)
            if not batch:
                raise RuntimeError(f"{url}: only {seen} of {records} records came back")
            consumer.commit(batch)
            seen += len(batch)
        consumed = (records - len(first)) / (time.perf_counter() - started)
        consumer.close()
        return published, consumed
    finally:
        bus.delete_topics([topic])
        bus.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--value-bytes", type=int, default=200)
    parser.add_argument("--kafka-url", default=None)
    args = parser.parse_args()
    env_url = os.environ.get("SMARTCITY_BUS_URL", "")
    kafka_url = args.kafka_url or (env_url if env_url.startswith("kafka://") else DEFAULT_KAFKA_URL)

    print(f"{args.records} records of {args.value_bytes} bytes, 100 keys, 2 headers, 3 partitions")
    print(f"{'bus':<34} {'published/s':>12} {'consumed/s':>12}")
    with tempfile.TemporaryDirectory() as folder:
        rows = [("file log (embedded)", f"file://{folder}/bus"), (f"Kafka {kafka_url}", kafka_url)]
        for label, url in rows:
            try:
                published, consumed = measure(url, args.records, args.value_bytes)
            except ConfigurationError as error:
                print(f"{label:<34} skipped: {error}")
                continue
            print(f"{label:<34} {published:>12,.0f} {consumed:>12,.0f}")


if __name__ == "__main__":
    main()
