"""ingest-traffic-sensors through the real gateway, loaded from stack.yml, publishing to the embedded bus."""

from __future__ import annotations

import pytest

from smartcity.simulator.city import load_city
from smartcity.storage.reference import segment_id
from tests.stream_functions import assert_published, assert_refused, ingest_fixture, reading

ingest = ingest_fixture("traffic-sensors")


def test_an_ngsi_ld_reading_of_a_new_loop_is_converted_and_placed_on_the_nearest_segment(ingest):
    edge, segment = next(iter(load_city().segments.items()))
    sent = reading("traffic-sensors")
    normalized = {
        "id": "loop-9", "type": "TrafficFlowObserved",
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [segment.lon, segment.lat]}},
        "averageVehicleSpeed": {"type": "Property", "value": 10, "unitCode": "MTS"},
        "occupancy": {"type": "Property", "value": 35, "unitCode": "P1"},
        **{name: {"type": "Property", "value": sent[name]} for name in (
            "dateObserved", "dateObservedFrom", "dateObservedTo", "laneId", "intensity", "intensityPerHour",
            "congested")},
    }
    [data] = assert_published(ingest, ingest.post(normalized))
    assert data["id"] == "urn:ngsi-ld:TrafficFlowObserved:loop-9"
    assert data["averageVehicleSpeed"] == pytest.approx(36.0) and data["occupancy"] == pytest.approx(0.35)
    assert (data["refRoadSegment"], data["zone"]) == (segment_id(edge), segment.zone)


def test_an_interval_that_ends_before_it_starts_is_refused(ingest):
    reasons = assert_refused(ingest, reading("traffic-sensors", dateObservedTo="2025-03-01T08:29:00Z"),
                             "dateObservedTo")
    assert "dateObservedFrom" in reasons["dateObservedTo"]
