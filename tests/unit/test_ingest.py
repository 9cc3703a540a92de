"""The ingest functions, loaded from stack.yml through the real loader and gateway, on embedded backends."""

import jsonschema
import orjson
import pytest
from fastapi.testclient import TestClient

from smartcity.backends.bus import open_bus
from smartcity.backends.database import open_database
from smartcity.events import STREAMS, city
from smartcity.ingest import CSV_EXTRA_CELLS, event_id
from smartcity.runtime.gateway import build_gateway
from smartcity.settings import PROJECT_ROOT
from smartcity.storage.migrate import migrate
from smartcity.storage.reference import load_reference, segment_id
from tests.problem_assertions import answered_problem
from tests.credentials import ingest_headers
from tests.storage_samples import MOMENT, drain, embedded_settings, sample_events

STACK_FILE = PROJECT_ROOT / "stack.yml"
INGEST_FUNCTIONS = [f"ingest-{topic}" for topic in STREAMS]


@pytest.fixture
def settings(tmp_path):
    settings = embedded_settings(tmp_path)
    db = open_database(settings.database_url)
    migrate(db)
    load_reference(db)
    db.close()
    return settings


@pytest.fixture
def gateway(settings):
    with TestClient(build_gateway(STACK_FILE, settings, INGEST_FUNCTIONS), headers=ingest_headers(settings)) as client:
        yield client


def published(settings, topic):
    bus = open_bus(settings.bus_url)
    try:
        records = drain(bus, topic)
        return [orjson.loads(record.value) for record in records], records
    finally:
        bus.close()


def reading(topic, **changes):
    return {**sample_events()[topic].model_dump(mode="json"), **changes}


def test_every_stream_has_an_ingest_function_that_publishes_its_readings(gateway, settings):
    for topic in STREAMS:
        answer = gateway.post(f"/function/ingest-{topic}", json=[reading(topic)])
        assert answer.status_code == 202, answer.text
        assert answer.json()["accepted"] == 1
        (data,), (record,) = published(settings, topic)
        headers = dict(record.headers)
        assert headers["ce_type"] == STREAMS[topic].ce_type.encode() and headers["ce_id"] == answer.json()["ids"][0].encode()
        stream, sent = STREAMS[topic], sample_events()[topic]
        if stream.key_field in stream.personal_fields:  # keyed by the published pseudonym, never the raw value
            assert stream.key_of(stream.model.model_validate(data)) != stream.key_of(sent)
            sent = stream.model.model_validate(data)
        assert record.key == stream.key_of(sent).encode()


def test_a_batch_with_invalid_readings_gets_422_per_reading_and_its_valid_ones_are_published(gateway, settings):
    batch = [
        reading("taxi-vtc"),
        reading("taxi-vtc", speed=-3, passengerCount=12),
        reading("taxi-vtc", dateObserved="2025-03-01T08:31:00"),  # no timezone
        "not an object",
        reading("taxi-vtc", dateObserved="2025-03-01T08:32:00Z"),
    ]
    answer = gateway.post("/function/ingest-taxi-vtc", json=batch)
    errors = answered_problem(answer, 422)
    body = answer.json()
    assert (body["accepted"], body["rejected"], len(body["ids"])) == (2, 3, 2)
    assert set(errors) == {"[1].speed", "[1].passengerCount", "[2].dateObserved", "[3]"}
    assert all(errors.values()) and "timezone" in errors["[2].dateObserved"]
    assert body["instance"] == "/function/ingest-taxi-vtc/"
    data, _ = published(settings, "taxi-vtc")
    assert len(data) == 2 and {d["dateObserved"] for d in data} == {"2025-03-01T08:30:00Z", "2025-03-01T08:32:00Z"}


def test_no_raw_personal_value_reaches_the_topic(gateway, settings):
    raw = reading("taxi-vtc")
    assert gateway.post("/function/ingest-taxi-vtc", json=raw).status_code == 202
    (data,), (record,) = published(settings, "taxi-vtc")
    text = record.value.decode() + repr(record.headers) + repr(record.key)
    assert raw["vehicleId"] not in text and raw["driverId"] not in text
    assert data["vehicleId"].startswith("ps_") and data["driverId"].startswith("ps_")
    assert data["location"]["coordinates"] == [round(c, 3) for c in raw["location"]["coordinates"]]


def test_csv_readings_are_converted_to_the_model_units_and_enriched_with_zone_and_segment(gateway, settings):
    box = city()
    lon, lat = box.west + 0.001, box.south + 0.001
    csv = (
        "id,dateObserved,dateObservedFrom,dateObservedTo,lon,lat,laneId,intensity,intensityPerHour,"
        "occupancy[%],averageVehicleSpeed[m/s],congested\n"
        f"loop-7,2025-03-01T08:30:00Z,2025-03-01T08:29:55Z,2025-03-01T08:30:00Z,{lon},{lat},0,2,1440,35,10,false\n"
        f"loop-8,2025-03-01T08:30:00Z,2025-03-01T08:29:55Z,2025-03-01T08:30:00Z,{lon},{lat},1,0,0,0,,false\n"
    )
    answer = gateway.post("/function/ingest-traffic-sensors", content=csv, headers={"content-type": "text/csv"})
    assert answer.status_code == 202, answer.text
    data, _ = published(settings, "traffic-sensors")
    first, second = sorted(data, key=lambda d: d["id"])
    assert first["id"] == "urn:ngsi-ld:TrafficFlowObserved:loop-7"
    assert first["occupancy"] == pytest.approx(0.35) and first["averageVehicleSpeed"] == pytest.approx(36.0)
    assert second["averageVehicleSpeed"] is None
    assert first["zone"] == "Z11" and first["refRoadSegment"].startswith("urn:ngsi-ld:RoadSegment:")


def test_a_csv_row_with_more_cells_than_the_header_is_refused_not_cut(gateway, settings):
    box = city()
    header = "id,dateObserved,dateObservedFrom,dateObservedTo,lon,lat,laneId,intensity,intensityPerHour,occupancy,congested\n"
    row = f"2025-03-01T08:30:00Z,2025-03-01T08:29:55Z,2025-03-01T08:30:00Z,{box.west + 0.001},{box.south + 0.001},0,2,1440,0.35,false"
    csv = header + f"loop-7,{row},\n" + f"loop-8,{row},0.9\n"  # an empty trailing cell is nothing; 0.9 is a value
    answer = gateway.post("/function/ingest-traffic-sensors", content=csv, headers={"content-type": "text/csv"})
    assert list(answered_problem(answer, 422)) == [f"[1].{CSV_EXTRA_CELLS}"]
    data, _ = published(settings, "traffic-sensors")
    assert [d["id"] for d in data] == ["urn:ngsi-ld:TrafficFlowObserved:loop-7"]


def test_a_car_park_gets_its_own_road_segment_from_the_reference_tables(gateway, settings):
    park = city_car_park()
    item = {k: v for k, v in reading("parking", id=park.id, location={"type": "Point", "coordinates": [park.lon, park.lat]}).items()
            if k not in ("zone", "refRoadSegment")}
    assert gateway.post("/function/ingest-parking", json=item).status_code == 202
    (data,), _ = published(settings, "parking")
    assert data["refRoadSegment"] == segment_id(park.edge) and data["zone"] == park.zone


def city_car_park():
    from smartcity.simulator.city import load_city

    return load_city().car_parks[0]


def test_ngsi_ld_normalized_attributes_with_unit_codes(gateway, settings):
    item = reading("weather")
    normalized = {
        **{k: {"type": "Property", "value": v} for k, v in item.items() if k not in ("id", "type", "location")},
        "id": item["id"], "type": "WeatherObserved", "@context": ["https://smartdatamodels.org/context.jsonld"],
        "location": {"type": "GeoProperty", "value": item["location"]},
        "temperature": {"type": "Property", "value": 50, "unitCode": "FAH"},
        "windSpeed": {"type": "Property", "value": 36, "unitCode": "KMH"},
    }
    answer = gateway.post("/function/ingest-weather", json=normalized)
    assert answer.status_code == 202, answer.text
    (data,), _ = published(settings, "weather")
    assert data["temperature"] == pytest.approx(10.0) and data["windSpeed"] == pytest.approx(10.0)


def test_an_unknown_unit_is_refused_naming_the_field_and_the_known_units(gateway):
    answer = gateway.post("/function/ingest-weather", json=reading("weather") | {"temperature[furlongs]": 3})
    reason = answered_problem(answer, 422)["[0].temperature"]
    assert "furlongs" in reason and "°F" in reason


def test_the_same_reading_sent_twice_is_the_same_event(gateway):
    first = gateway.post("/function/ingest-air-quality", json=reading("air-quality")).json()["ids"]
    again = gateway.post("/function/ingest-air-quality", json=reading("air-quality")).json()["ids"]
    later = gateway.post("/function/ingest-air-quality", json=reading("air-quality", dateObserved="2025-03-01T09:00:00Z"))
    assert first == again != later.json()["ids"]
    assert first == [event_id(STREAMS["air-quality"], sample_events(MOMENT)["air-quality"])]


@pytest.mark.parametrize("body, content_type, status, field", [
    (b"{not json", "application/json", 400, "body"),
    (b"[]", "application/json", 400, "body"),
    (b"hello", "text/plain", 415, "header.content-type"),
    (b"", "text/csv", 400, "body"),
])
def test_a_body_that_cannot_be_read_is_refused_whole(gateway, settings, body, content_type, status, field):
    answer = gateway.post("/function/ingest-weather", content=body, headers={"content-type": content_type})
    assert list(answered_problem(answer, status)) == [field]
    assert published(settings, "weather")[0] == []


def test_the_schema_of_a_reading_is_served(gateway):
    schema = gateway.get("/function/ingest-bike-share/schema").json()
    assert "availableBikeNumber" in schema["properties"]
    jsonschema.validate(reading("bike-share"), schema)  # a valid reading passes the served schema, a bad one fails
    with pytest.raises(jsonschema.ValidationError, match="availableBikeNumber"):
        jsonschema.validate(reading("bike-share", availableBikeNumber=-1), schema)
