"""The functions' test helper read_all stops at its timeout when fewer records than expected come (it used to poll
forever, and only the test run's own timeout ended it)."""

from __future__ import annotations

import time

from smartcity.backends.bus import open_bus
from tests.fixtures.functions.helpers import read_all


def test_read_all_returns_what_came_when_fewer_than_expected_come_in_time(tmp_path):
    bus = open_bus(f"file://{tmp_path / 'bus'}")
    bus.create_topics(["weather"], partitions=1)
    bus.publish("weather", b"one", key=b"k")
    bus.flush()
    started = time.monotonic()
    records = read_all(bus, ["weather"], expected=3, timeout_s=0.5)
    assert [record.value for record in records] == [b"one"]
    assert time.monotonic() - started < 10


def test_read_all_reads_past_expected_until_polls_come_back_empty(tmp_path):
    bus = open_bus(f"file://{tmp_path / 'bus'}")
    bus.create_topics(["weather"], partitions=1)
    for n in range(5):
        bus.publish("weather", f"{n}".encode(), key=b"k")
    bus.flush()
    assert len(read_all(bus, ["weather"], expected=2)) == 5
