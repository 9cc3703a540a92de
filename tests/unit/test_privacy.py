"""Keyed pseudonyms and coarse positions for the fields the event models mark personal."""

import pytest

from smartcity.errors import ConfigurationError
from smartcity.events import Location, TaxiTrip, city
from smartcity.privacy import PSEUDONYM_KEY_SECRET, Pseudonymizer, ensure_pseudonym_key
from smartcity.settings import Settings
from tests.storage_samples import sample_events


def test_a_pseudonym_is_stable_keyed_and_hides_the_identifier():
    one, other = Pseudonymizer(b"key-one", 3), Pseudonymizer(b"key-two", 3)
    assert one.pseudonym("AB-123-CD") == one.pseudonym("AB-123-CD")
    assert one.pseudonym("AB-123-CD") != one.pseudonym("AB-124-CD")
    assert one.pseudonym("AB-123-CD") != other.pseudonym("AB-123-CD")
    assert one.pseudonym("x").startswith("ps_") and len(one.pseudonym("x")) == 3 + 32


def test_the_taxi_event_keeps_no_raw_personal_value_and_stays_valid():
    raw = sample_events()["taxi-vtc"]
    protected = Pseudonymizer(b"secret", 3).apply(raw)
    assert protected.vehicleId != raw.vehicleId and protected.vehicleId.startswith("ps_")
    assert protected.driverId != raw.driverId and protected.driverId.startswith("ps_")
    assert raw.vehicleId not in protected.model_dump_json() and raw.driverId not in protected.model_dump_json()
    assert protected.location.coordinates == tuple(round(c, 3) for c in raw.location.coordinates)
    assert protected.id == raw.id and protected.speed == raw.speed and protected.zone == raw.zone
    assert TaxiTrip.model_validate(protected.model_dump(mode="json")) == protected


def test_the_precision_is_a_setting_and_a_coarse_point_stays_inside_the_city():
    box = city()
    corner = Location.at(box.west, box.south)
    coarse = Pseudonymizer(b"k", 1).coarsen_location(corner)  # 0.1 degree: the box holds no such point
    assert box.contains(*coarse.coordinates)
    assert Pseudonymizer(b"k", 5).coarsen(6.9512345) == 6.95123


def test_events_without_personal_fields_are_returned_as_they_are():
    traffic = sample_events()["traffic-sensors"]
    assert Pseudonymizer(b"k", 3).apply(traffic) is traffic


def test_the_key_is_the_secret_file_and_a_missing_one_is_named(tmp_path):
    settings = Settings(secrets_dir=tmp_path, gps_precision_decimals=2)
    with pytest.raises(ConfigurationError, match=PSEUDONYM_KEY_SECRET):
        Pseudonymizer.from_settings(settings)
    (tmp_path / PSEUDONYM_KEY_SECRET).write_text("a-long-random-key\n")
    pseudonymizer = Pseudonymizer.from_settings(settings)
    assert pseudonymizer.gps_precision_decimals == 2
    assert pseudonymizer.pseudonym("x") == Pseudonymizer(b"a-long-random-key", 2).pseudonym("x")


def test_a_missing_key_is_made_once_and_then_kept(tmp_path):
    settings = Settings(secrets_dir=tmp_path / "secrets")
    path = ensure_pseudonym_key(settings)
    key = path.read_text()
    assert len(key) == 64 and path.stat().st_mode & 0o777 == 0o600
    assert ensure_pseudonym_key(settings).read_text() == key


def test_a_personal_entity_id_keeps_its_type_prefix_and_the_event_stays_valid():
    pseudonymizer = Pseudonymizer(b"k", gps_precision_decimals=3)
    vehicle = sample_events()["bike-share-vehicles"].model_copy(update={"id": "urn:ngsi-ld:BikeShareVehicle:op:b-1"})
    kept = pseudonymizer.apply(vehicle)
    assert kept.id == "urn:ngsi-ld:BikeShareVehicle:" + pseudonymizer.pseudonym("op:b-1")  # a ':' in the local id
    assert type(vehicle).model_validate(kept.model_dump()).id == kept.id and "b-1" not in kept.model_dump_json()
