"""ingest-bike-share through the real gateway, loaded from stack.yml, publishing to the embedded bus."""

from __future__ import annotations

from tests.stream_functions import assert_published, assert_refused, ingest_fixture, reading

ingest = ingest_fixture("bike-share")


def test_a_stations_status_is_published_under_its_ngsi_ld_id(ingest):
    sent = {k: v for k, v in reading("bike-share", id="dock-42").items() if k != "zone"}
    [data] = assert_published(ingest, ingest.post(sent))
    assert data["id"] == "urn:ngsi-ld:BikeHireDockingStation:dock-42"
    assert (data["availableBikeNumber"], data["freeSlotNumber"], data["zone"]) == (5, 14, reading("bike-share")["zone"])


def test_more_bikes_and_docks_than_the_station_has_are_refused(ingest):
    reasons = assert_refused(ingest, reading("bike-share", availableBikeNumber=19), "outOfServiceSlotNumber")
    assert "totalSlotNumber" in reasons["outOfServiceSlotNumber"]


def test_the_schema_of_a_reading_is_served(ingest):
    schema = ingest.client.get("/function/ingest-bike-share/schema").json()
    assert {"availableBikeNumber", "freeSlotNumber", "totalSlotNumber"} <= set(schema["properties"])
