"""ingest-taxi-vtc through the real gateway, loaded from stack.yml: personal fields pseudonymized before publishing."""

from __future__ import annotations

from smartcity.privacy import PSEUDONYM_KEY_SECRET, Pseudonymizer
from tests.storage_samples import centre
from tests.stream_functions import assert_published, assert_refused, ingest_fixture, reading

ingest = ingest_fixture("taxi-vtc")


def test_a_fix_is_published_with_keyed_pseudonyms_and_a_coarse_position(ingest):
    lon, lat = (round(c, 3) + 0.000234 for c in centre()["coordinates"])  # precise to the metre
    raw = reading("taxi-vtc", location={"type": "Point", "coordinates": [lon, lat]})
    [data] = assert_published(ingest, ingest.post(raw))
    key = (ingest.settings.secrets_dir / PSEUDONYM_KEY_SECRET).read_text().encode()
    pseudonyms = Pseudonymizer(key, ingest.settings.gps_precision_decimals)
    assert data["vehicleId"] == pseudonyms.pseudonym(raw["vehicleId"]) != raw["vehicleId"]
    assert data["driverId"] == pseudonyms.pseudonym(raw["driverId"]) != raw["driverId"]
    assert data["location"]["coordinates"] == [round(lon, 3), round(lat, 3)] != [lon, lat]
    [(_, record)] = ingest.published()
    seen = record.value.decode() + repr(record.headers) + repr(record.key)
    assert raw["vehicleId"] not in seen and raw["driverId"] not in seen and f"{lon:.5f}" not in seen


def test_a_refused_fix_is_named_without_echoing_its_personal_values(ingest):
    raw = reading("taxi-vtc", passengerCount=0, speed=-3)
    reasons = assert_refused(ingest, raw, "passengerCount", "speed")
    assert raw["vehicleId"] not in repr(reasons) and raw["driverId"] not in repr(reasons)
