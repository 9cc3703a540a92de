"""What the embedded file log promises beyond the bus contract: its on-disk format (the one Spark's JSON file
source reads) and offsets that stay dense and unique when several processes publish to one topic at once."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from smartcity.backends.bus import open_bus
from tests.contract.test_bus_contract import drain

PUBLISHER = textwrap.dedent(
    """
    import sys
    from smartcity.backends.bus import open_bus
    bus = open_bus(sys.argv[1])
    for i in range(int(sys.argv[3])):
        bus.publish("shared", f"{sys.argv[2]}-{i}".encode(), key=f"k{i % 7}".encode())
    bus.close()
    """
)


def test_segments_are_json_lines_named_by_first_offset(tmp_path):
    bus = open_bus(f"file://{tmp_path}?batch=3")
    bus.create_topics(["weather"], partitions=1)
    for i in range(7):
        bus.publish("weather", f'{{"t": {i}}}'.encode(), key=b"station-1", headers=[("ce_type", b"city.weather")])
    bus.publish("weather", b"\xff\xfe", key=b"\x00\xff")
    bus.close()

    partition = tmp_path / "weather" / "0"
    visible = sorted(p.name for p in partition.iterdir() if not p.name.startswith((".", "_")))
    # Every 3 records of a partition make a segment; the close flushes the rest into one more.
    assert visible == [f"{first:020d}.jsonl" for first in (0, 3, 6)]
    assert json.loads((tmp_path / "weather" / "_meta.json").read_text()) == {"partitions": 1}
    lines = [json.loads(line) for name in visible for line in (partition / name).read_text().splitlines()]
    assert [line["offset"] for line in lines] == list(range(8))
    assert lines[0] == {
        "topic": "weather", "partition": 0, "offset": 0, "timestamp_ms": lines[0]["timestamp_ms"],
        "key": "station-1", "value": '{"t": 0}', "headers": {"ce_type": "city.weather"},
    }
    assert lines[7]["key_base64"] is True and lines[7]["value_base64"] is True
    assert not [p for p in partition.iterdir() if p.name.endswith(".tmp")]


def test_processes_publishing_at_once_get_dense_unique_offsets(tmp_path):
    url = f"file://{tmp_path}?batch=25"
    bus = open_bus(url)
    bus.create_topics(["shared"], partitions=2)
    publishers = [
        subprocess.Popen([sys.executable, "-c", PUBLISHER, url, name, "400"]) for name in ("a", "b", "c")
    ]
    assert [p.wait(timeout=120) for p in publishers] == [0, 0, 0]

    consumer = bus.consumer("checker", ["shared"])
    records = drain(consumer, 1200, timeout_s=30)
    consumer.close()
    assert sorted(r.value for r in records) == sorted(f"{n}-{i}".encode() for n in "abc" for i in range(400))
    for partition in (0, 1):
        offsets = [r.offset for r in records if r.partition == partition]
        assert offsets == list(range(len(offsets)))
    # Each publisher's records of one key stay in publishing order.
    for name in "abc":
        for key in range(7):
            numbers = [int(r.value.split(b"-")[1]) for r in records if r.key == f"k{key}".encode() and r.value.startswith(name.encode())]
            assert numbers == sorted(numbers)


def test_a_group_member_waits_for_partitions_another_member_holds(tmp_path):
    bus = open_bus(f"file://{tmp_path}")
    bus.create_topics(["parking"], partitions=1)
    bus.publish("parking", b"spot-1")
    bus.flush()
    first = bus.consumer("g", ["parking"])
    second = bus.consumer("g", ["parking"])
    assert [r.value for r in first.poll(timeout_s=1)] == [b"spot-1"]
    assert second.poll(timeout_s=0.3) == []
    first.close()
    assert [r.value for r in drain(second, 1, timeout_s=5)] == [b"spot-1"]
    second.close()
