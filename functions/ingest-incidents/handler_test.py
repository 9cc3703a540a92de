"""ingest-incidents through the real gateway, loaded from stack.yml, publishing to the embedded bus."""

from __future__ import annotations

from smartcity.simulator.city import load_city
from smartcity.storage.reference import segment_id
from tests.stream_functions import assert_published, assert_refused, ingest_fixture, reading

ingest = ingest_fixture("incidents")


def test_an_incident_without_its_road_segment_gets_the_nearest_one(ingest):
    edge, segment = next(iter(load_city().segments.items()))
    here = {"type": "Point", "coordinates": [segment.lon, segment.lat]}
    sent = {k: v for k, v in reading("incidents", location=here).items() if k not in ("refRoadSegment", "zone")}
    [data] = assert_published(ingest, ingest.post(sent))
    assert (data["refRoadSegment"], data["zone"]) == (segment_id(edge), segment.zone)
    assert (data["subCategory"], data["severity"], data["status"]) == ("carAccident", "high", "active")


def test_a_time_without_a_timezone_and_an_unknown_severity_are_refused(ingest):
    assert_refused(ingest, [reading("incidents", validFrom="2025-03-01T08:30:00", severity="apocalyptic")],
                   "validFrom", "severity")
