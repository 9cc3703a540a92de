"""A shared vehicle's reading through ingest-bike-share-vehicles, the store functions and the API listing
/v1/mobility/bike-share-vehicles, on embedded backends (:func:`tests.stream_flow.flow`): only its pseudonym is kept."""

from __future__ import annotations

import json

from smartcity.privacy import PSEUDONYM_KEY_SECRET, Pseudonymizer
from tests.storage_samples import centre
from tests.stream_flow import flow

READING = {"id": "bike-4711", "dateObserved": "2026-03-02T08:00:00+01:00", "location": centre(),
           "vehicleType": "ebike", "formFactor": "bicycle", "isReserved": False, "isDisabled": False,
           "currentRangeMeters": 9000}


def test_a_vehicle_is_stored_and_listed_under_its_pseudonym_only(tmp_path):
    result = flow(tmp_path, "bike-share-vehicles", READING)
    key = (tmp_path / "secrets" / PSEUDONYM_KEY_SECRET).read_text().encode()  # the key the flow's ingest used
    vehicle = f"urn:ngsi-ld:BikeShareVehicle:{Pseudonymizer(key, 3).pseudonym('bike-4711')}"
    assert result["accepted"][0] == 202 and result["refused"][0] == 422 and result["anonymous"] == 401
    assert result["records"] == 1 and result["stores"]["store-timeseries"][1:] == [1, 0]
    [row] = result["rows"]
    assert row["entity_id"] == vehicle and "bike-4711" not in json.dumps(row, default=str)  # a hash may hold 4711
    status, listing = result["listing"]
    assert status == 200 and [item["id"] for item in listing["items"]] == [vehicle]
    assert result["one"][0] == 200 and result["one"][1]["formFactor"] == "bicycle" and result["missing"] == 404
