"""The jobs' parse step (streaming.sources.parse_events) on a local Spark: problems named, each record parsed once."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest
from pyspark.sql import functions as F

from smartcity.events import stream_for_topic
from smartcity.settings import Settings
from streaming import samples
from streaming.session import build_session
from streaming.sources import parse_events

AT = datetime(2024, 3, 5, 8, 0, 10, tzinfo=timezone.utc)
TOPICS = ("traffic-sensors", "bike-share", "public-transport")


@pytest.fixture(scope="module")
def spark():
    return build_session(Settings())


def record(topic: str, value: str, offset: int, ce_type: str | None = None):
    headers = {"ce_type": ce_type or stream_for_topic(topic).ce_type, "ce_id": f"id-{offset}"}
    return value, headers, topic, 0, offset, AT


def parsed_records(spark):
    traffic = samples.traffic("s1", AT, intensity=3, speed=42.0, occupancy=0.12, segment="seg1", zone="Z22")
    bikes = samples.bike_station("b1", AT, bikes=4, docks=6)
    good_traffic = json.dumps(traffic.model_dump(mode="json", by_alias=True))
    missing = traffic.model_dump(mode="json", by_alias=True)
    # A bus position as most GTFS-realtime feeds give it: no speed, heading or occupancy (optional fields).
    bus = samples.bus_position("v1", AT, delay_s=60).model_dump(mode="json", by_alias=True)
    bus = {name: value for name, value in bus.items() if name not in ("speed", "heading", "occupancyStatus")}
    del missing["intensity"]
    rows = [
        record("traffic-sensors", good_traffic, 0),
        record("traffic-sensors", "not json", 1),
        record("traffic-sensors", json.dumps(missing), 2),
        record("traffic-sensors", good_traffic, 3, ce_type="city.other.v1"),
        record("bike-share", json.dumps(bikes.model_dump(mode="json", by_alias=True)), 4),
        record("parking", good_traffic, 5),
        record("public-transport", json.dumps(bus), 6),
    ]
    schema = ("value string, headers map<string,string>, topic string, partition int, offset long, "
              "timestamp timestamp")
    return parse_events(spark.createDataFrame(rows, schema), TOPICS)


def test_each_record_gets_its_problem_or_its_parsed_event(spark):
    parsed = parsed_records(spark)
    rows = {row["offset"]: row for row in parsed.withColumn("event_us", F.unix_micros("event_time")).collect()}
    assert sorted(rows) == [0, 1, 2, 3, 4, 6]  # another topic's record is not read
    assert rows[0]["problem"] is None and rows[0]["traffic_sensors"]["intensity"] == 3
    assert rows[0]["bike_share"] is None
    assert rows[0]["event_us"] == int(AT.timestamp()) * 1_000_000 and rows[4]["event_us"] is not None
    # Spark's from_json reads text that is not JSON as a struct of nulls, so the first required field is named.
    assert rows[1]["problem"] == "data.id: missing or of the wrong type"
    assert rows[2]["problem"] == "data.intensity: missing or of the wrong type"
    assert rows[3]["problem"] == ("ce_type: expected city.traffic.flow.observed.v1 on traffic-sensors, "
                                  "got city.other.v1")
    assert rows[4]["problem"] is None and rows[4]["bike_share"] is not None and rows[4]["traffic_sensors"] is None
    assert rows[6]["problem"] is None and rows[6]["public_transport"]["delay"] == 60
    assert rows[6]["public_transport"]["speed"] is None and rows[6]["public_transport"]["occupancyStatus"] is None


def test_the_good_records_filter_parses_each_record_once(spark):
    # The optimizer used to push `problem IS NULL` into the scan's filter with from_json inlined once per checked
    # field (15 parses of a traffic record); a generator now stands between them.
    good = parsed_records(spark).where("problem IS NULL")
    plan = good._jdf.queryExecution().executedPlan().toString()
    assert plan.count("from_json(") == len(TOPICS)
    assert sorted(row["offset"] for row in good.collect()) == [0, 4, 6]
