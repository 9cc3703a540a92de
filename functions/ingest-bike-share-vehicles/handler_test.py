"""ingest-bike-share-vehicles through the real gateway, loaded from stack.yml, publishing to the embedded bus: the
vehicle's id (its local part) pseudonymized and its position coarsened before publishing, the record key too."""

from __future__ import annotations

from smartcity.privacy import PSEUDONYM_KEY_SECRET, Pseudonymizer
from tests.storage_samples import centre
from tests.stream_functions import assert_published, assert_refused, ingest_fixture, reading

ingest = ingest_fixture("bike-share-vehicles")


def test_a_vehicle_is_published_with_a_pseudonymous_id_and_a_coarse_position(ingest):
    lon, lat = (round(c, 3) + 0.000234 for c in centre()["coordinates"])  # precise to the metre
    raw = reading("bike-share-vehicles", id="bike-4711", location={"type": "Point", "coordinates": [lon, lat]})
    [data] = assert_published(ingest, ingest.post(raw))
    key = (ingest.settings.secrets_dir / PSEUDONYM_KEY_SECRET).read_text().encode()
    pseudonym = Pseudonymizer(key, ingest.settings.gps_precision_decimals).pseudonym("bike-4711")
    assert data["id"] == f"urn:ngsi-ld:BikeShareVehicle:{pseudonym}"
    assert data["location"]["coordinates"] == [round(lon, 3), round(lat, 3)] != [lon, lat]
    assert data["zone"] == raw["zone"] and data["formFactor"] == raw["formFactor"]
    [(_, record)] = ingest.published()
    seen = record.value.decode() + repr(record.headers) + repr(record.key)
    assert "bike-4711" not in seen and f"{lon:.5f}" not in seen and pseudonym in record.key.decode()


def test_a_vehicle_without_is_reserved_or_with_a_bad_form_factor_is_refused_naming_them(ingest):
    incomplete = {name: value for name, value in reading("bike-share-vehicles").items() if name != "isReserved"}
    assert_refused(ingest, [reading("bike-share-vehicles"), incomplete, reading("bike-share-vehicles", formFactor="tank")],
                   "isReserved", "formFactor", accepted=1)
