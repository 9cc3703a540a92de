"""cluster-hotspots, loaded through the real loader over embedded stores: flagged anomalies and an active incident
close together make a hotspot, published once and stored; a run with nothing new publishes nothing; a hotspot
whose members have aged out is published cleared."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cloudevents.core.v1.event import CloudEvent

from models.anomaly.serving import alert_id, store_scores
from smartcity.events import Alert, Location
from smartcity.events.derived import HOTSPOTS, TRAFFIC_WINDOWS, TrafficHotspot
from smartcity.runtime.loader import load_stack
from smartcity.runtime.runner import FunctionRunner
from smartcity.storage.envelope import StoredEvent
from smartcity.storage.prepare import prepare_storage
from smartcity.storage.timeseries import TimeSeriesWriter
from tests.fixtures.functions.helpers import embedded_settings

STACK = Path(__file__).resolve().parents[2] / "stack.yml"
NOW = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
HERE = (6.9520, 50.9640)
FAR = (6.9660, 50.9770)


def anomaly(sensor: str, place: tuple[float, float], minutes_ago: int) -> dict:
    start = NOW - timedelta(minutes=minutes_ago + 5)
    return {"entity_id": sensor, "window_start": start, "model": "isolation-forest", "target": "anomaly-sensor",
            "window_end": start + timedelta(minutes=5), "model_version": "v1", "score": 0.999, "basis": "series",
            "contributions": "{}", "flagged": True, "alert_id": alert_id(sensor, start, "isolation-forest"),
            "sensor_id": sensor, "segment_id": "urn:ngsi-ld:RoadSegment:h", "zone_id": "Z11", "lon": place[0],
            "lat": place[1], "scored_at": NOW}


def accident(status: str, at: datetime, source: str = "city-operator") -> StoredEvent:
    alert = Alert(id="urn:ngsi-ld:Alert:crash-h", dateObserved=at, category="traffic", subCategory="carAccident",
                  severity="high", status=status, description="Two cars", location=Location.at(HERE[0] + 0.0004, HERE[1]),
                  zone="Z11", refRoadSegment="urn:ngsi-ld:RoadSegment:h", dateIssued=at,
                  validFrom=NOW - timedelta(minutes=40), alertSource=source)
    return StoredEvent("incidents", f"crash-h-{status}-{at.isoformat()}", "/tests", alert)


def tick(end: datetime) -> CloudEvent:
    """A closed window ending at ``end``: the function's clock."""
    start = end - timedelta(minutes=5)
    return CloudEvent({"type": TRAFFIC_WINDOWS.ce_type, "source": "/tests", "id": uuid.uuid4().hex}, {
        "sensor_id": "urn:ngsi-ld:TrafficFlowObserved:h1", "segment_id": "urn:ngsi-ld:RoadSegment:h", "zone_id": "Z11",
        "lane_id": 0, "lon": HERE[0], "lat": HERE[1], "window_start": start.isoformat(), "window_end": end.isoformat(),
        "flow_per_hour": 600.0, "mean_speed_kmh": 40.0, "mean_occupancy": 0.2, "congestion_index": 0.3})


@pytest.fixture
def function(tmp_path):
    settings = embedded_settings(tmp_path, hotspot_interval_s=60)
    prepare_storage(settings)
    [loaded] = load_stack(STACK, settings, ["cluster-hotspots"])
    store_scores(loaded.context.database, [
        anomaly("urn:ngsi-ld:TrafficFlowObserved:h1", HERE, 20), anomaly("urn:ngsi-ld:TrafficFlowObserved:h2",
                                                                         (HERE[0] + 0.001, HERE[1]), 10),
        anomaly("urn:ngsi-ld:TrafficFlowObserved:h3", (HERE[0], HERE[1] + 0.001), 0),
        anomaly("urn:ngsi-ld:TrafficFlowObserved:far", FAR, 5)])
    TimeSeriesWriter(loaded.context.database).write([accident("active", NOW - timedelta(minutes=40))])
    return loaded


def run(function, end: datetime) -> list[CloudEvent]:
    runner = FunctionRunner(function)
    return runner.run([runner.typed(tick(end))])


def test_a_hotspot_is_published_once_and_cleared_when_its_members_age_out(function):
    [published] = run(function, NOW)
    assert published.get_type() == HOTSPOTS.ce_type
    hotspot = TrafficHotspot.model_validate(published.get_data())
    assert (hotspot.status, hotspot.size, hotspot.anomalies, hotspot.incidents) == ("active", 4, 3, 1)
    assert hotspot.members[0] == "urn:ngsi-ld:Alert:crash-h" and hotspot.since == NOW - timedelta(minutes=40)
    assert hotspot.last_seen == NOW and hotspot.extent["type"] == "Polygon"
    [row] = function.context.database.query("SELECT * FROM traffic_hotspots")
    assert (row["id"], bool(row["active"]), json.loads(row["members"])) == (hotspot.id, True, hotspot.members)

    assert run(function, NOW + timedelta(seconds=30)) == []  # too soon: no run
    assert run(function, NOW + timedelta(minutes=2)) == []  # same members: nothing to say

    [cleared] = run(function, NOW + timedelta(hours=3))  # the anomalies are old now; the incident alone is no hotspot
    gone = TrafficHotspot.model_validate(cleared.get_data())
    assert (gone.id, gone.status, gone.members) == (hotspot.id, "cleared", hotspot.members)
    assert [bool(r["active"]) for r in function.context.database.query("SELECT active FROM traffic_hotspots")] == [False]


def test_a_cleared_incident_is_no_member(function):
    TimeSeriesWriter(function.context.database).write([accident("cleared", NOW - timedelta(minutes=15))])
    [published] = run(function, NOW)
    hotspot = TrafficHotspot.model_validate(published.get_data())
    assert (hotspot.size, hotspot.incidents) == (3, 0)


def test_a_detectors_alert_counts_as_an_anomaly(function):
    TimeSeriesWriter(function.context.database).write([
        accident("active", NOW - timedelta(minutes=10), source="/smartcity/streaming/anomalies")])
    [published] = run(function, NOW)
    assert TrafficHotspot.model_validate(published.get_data()).anomalies == 4
