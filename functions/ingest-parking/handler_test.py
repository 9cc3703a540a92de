"""ingest-parking through the real gateway, loaded from stack.yml, publishing to the embedded bus."""

from __future__ import annotations

import pytest

from smartcity.simulator.city import load_city
from smartcity.storage.reference import segment_id
from tests.stream_functions import assert_published, assert_refused, ingest_fixture, reading

ingest = ingest_fixture("parking")


def test_csv_readings_of_the_citys_car_parks_get_their_zone_and_road_segment(ingest):
    parks = load_city().car_parks[:2]
    rows = [f"{p.id},{p.name},2025-03-01T08:30:00Z,{p.lon},{p.lat},{p.capacity},{p.capacity // 2},"
            f"{p.capacity - p.capacity // 2},50,open" for p in parks]
    csv = "id,name,dateObserved,lon,lat,totalSpotNumber,occupiedSpotNumber,availableSpotNumber,occupancy[%],status\n"
    published = assert_published(ingest, ingest.post(csv + "\n".join(rows) + "\n", "text/csv"))
    for data, park in zip(published, parks):
        assert data["id"] == f"urn:ngsi-ld:OffStreetParking:{park.id}"
        assert (data["refRoadSegment"], data["zone"]) == (segment_id(park.edge), park.zone)
        assert data["occupancy"] == pytest.approx(0.5) and data["totalSpotNumber"] == park.capacity


def test_spots_that_do_not_add_up_are_refused(ingest):
    reasons = assert_refused(ingest, reading("parking", availableSpotNumber=10), "availableSpotNumber")
    assert "totalSpotNumber" in reasons["availableSpotNumber"]
