"""ingest-public-transport through the real gateway, loaded from stack.yml, publishing to the embedded bus."""

from __future__ import annotations

from tests.stream_functions import assert_published, assert_refused, ingest_fixture, reading

ingest = ingest_fixture("public-transport")


def test_a_batch_of_vehicle_positions_is_published_keyed_by_vehicle(ingest):
    buses = [reading("public-transport", id=f"bus-{n}", vehicleId=f"bus-{n}", **{"delay[min]": n}) for n in (7, 8)]
    for bus in buses:
        del bus["delay"]
    published = assert_published(ingest, ingest.post(buses))
    assert [(d["id"], d["vehicleId"], d["delay"]) for d in published] == [
        ("urn:ngsi-ld:Vehicle:bus-7", "bus-7", 420), ("urn:ngsi-ld:Vehicle:bus-8", "bus-8", 480)]


def test_an_impossible_heading_and_an_unknown_status_are_refused_per_reading(ingest):
    batch = [reading("public-transport", heading=400), reading("public-transport"),
             reading("public-transport", currentStatus="FLYING")]
    reasons = assert_refused(ingest, batch, "heading", "currentStatus", accepted=1)
    assert "360" in reasons["heading"] and "IN_TRANSIT_TO" in reasons["currentStatus"]
