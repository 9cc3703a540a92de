"""The eight stream models: valid events pass (model and exported JSON Schema), bad ones fail keyed by field."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import jsonschema
import pytest
from pydantic import ValidationError

from smartcity.events import STREAMS, TOPICS, city, errors_by_field, model_for_type, stream_for_topic
from smartcity.events.common import ngsi_id

T0 = datetime(2026, 3, 2, 8, 0, 5, tzinfo=timezone(timedelta(hours=1)))
CENTRE = {"type": "Point", "coordinates": [6.957, 50.97]}


def sample(topic: str) -> dict:
    """One valid event's data for each stream, as JSON would carry it."""
    when = T0.isoformat()
    return {
        "traffic-sensors": {
            "id": ngsi_id("TrafficFlowObserved", "-23283579#1_0@40"), "type": "TrafficFlowObserved",
            "dateObserved": when, "dateObservedFrom": (T0 - timedelta(seconds=5)).isoformat(), "dateObservedTo": when,
            "location": CENTRE, "refRoadSegment": ngsi_id("RoadSegment", "-23283579#1"), "laneId": 0, "zone": "Z22",
            "intensity": 2, "intensityPerHour": 1440.0, "occupancy": 0.31, "averageVehicleSpeed": 42.5,
            "congested": False,
        },
        "public-transport": {
            "id": ngsi_id("Vehicle", "bus-12"), "type": "Vehicle", "dateObserved": when, "vehicleId": "bus-12",
            "vehicleType": "bus", "routeId": "R1", "tripId": "R1-0-0800", "stopId": "S004", "stopSequence": 3,
            "currentStatus": "IN_TRANSIT_TO", "delay": 75, "location": CENTRE, "zone": "Z22", "speed": 31.0,
            "heading": 270.0, "occupancyStatus": "FEW_SEATS_AVAILABLE",
        },
        "taxi-vtc": {
            "id": ngsi_id("TaxiTrip", "trip-000042"), "type": "TaxiTrip", "dateObserved": when, "serviceType": "vtc",
            "vehicleId": "K-AB-1234", "driverId": "driver-0007", "tripStatus": "onTrip", "location": CENTRE,
            "zone": "Z22", "speed": 28.0, "heading": 12.5, "pickupZone": "Z11", "dropoffZone": "Z33",
            "passengerCount": 1, "distanceTravelled": 850.0, "fare": None,
        },
        "parking": {
            "id": ngsi_id("OffStreetParking", "P03"), "type": "OffStreetParking", "dateObserved": when,
            "name": "Parkhaus Neusser Str.", "location": CENTRE, "zone": "Z22",
            "refRoadSegment": ngsi_id("RoadSegment", "22917421#3"), "totalSpotNumber": 300,
            "occupiedSpotNumber": 240, "availableSpotNumber": 60, "occupancy": 0.8, "status": "open",
        },
        "bike-share": {
            "id": ngsi_id("BikeHireDockingStation", "B07"), "type": "BikeHireDockingStation", "dateObserved": when,
            "name": "Nippes Markt", "location": CENTRE, "zone": "Z22", "totalSlotNumber": 20,
            "availableBikeNumber": 7, "freeSlotNumber": 12, "outOfServiceSlotNumber": 1, "isInstalled": True,
            "isRenting": True, "isReturning": True, "status": "working", "dateLastReported": when,
        },
        "incidents": {
            "id": ngsi_id("Alert", "incident-1"), "type": "Alert", "dateObserved": when, "category": "traffic",
            "subCategory": "carAccident", "severity": "high", "status": "active",
            "description": "Accident blocking lane 0", "location": CENTRE, "zone": "Z22",
            "refRoadSegment": ngsi_id("RoadSegment", "22917421#3"), "laneId": 0, "dateIssued": when,
            "validFrom": when, "validTo": None, "alertSource": "simulator",
        },
        "weather": {
            "id": ngsi_id("WeatherObserved", "W1"), "type": "WeatherObserved", "dateObserved": when,
            "name": "Köln-Nippes", "location": CENTRE, "zone": "Z22", "temperature": 6.5, "relativeHumidity": 0.81,
            "atmosphericPressure": 1012.3, "precipitation": 0.4, "windSpeed": 3.2, "windDirection": 225.0,
            "weatherType": "drizzle",
        },
        "air-quality": {
            "id": ngsi_id("AirQualityObserved", "A1"), "type": "AirQualityObserved", "dateObserved": when,
            "name": "Köln-Nippes", "location": CENTRE, "zone": "Z22", "no2": 48.0, "pm10": 22.0, "pm25": 14.0,
            "o3": 31.0, "co": 0.4, "airQualityIndex": 48, "airQualityLevel": "low",
        },
    }[topic]


def reasons(topic: str, **changes) -> dict[str, str]:
    """The field-keyed errors of ``topic``'s sample with ``changes`` (a value of ``...`` removes the field)."""
    data = sample(topic)
    for field, value in changes.items():
        if value is ...:
            del data[field]
        else:
            data[field] = value
    with pytest.raises(ValidationError) as caught:
        STREAMS[topic].model.model_validate(data)
    return errors_by_field(caught.value)


def test_every_topic_has_one_stream_in_registry_order():
    # the simulated eight first, in the registry's order (TOPICS); a stream of `smartcity new-stream` after them
    assert tuple(STREAMS)[:len(TOPICS)] == TOPICS
    assert len({stream.ce_type for stream in STREAMS.values()}) == len(STREAMS)


@pytest.mark.parametrize("topic", TOPICS)
def test_valid_event_passes_model_and_exported_json_schema(topic):
    stream = stream_for_topic(topic)
    event = stream.model.model_validate(sample(topic))
    assert model_for_type(stream.ce_type) is stream.model
    as_json = json.loads(event.model_dump_json())
    assert stream.model.model_validate(as_json) == event
    from smartcity.cli.schemas import schema_document
    jsonschema.Draft202012Validator(schema_document(stream)).validate(as_json)
    assert stream.key_of(event)


@pytest.mark.parametrize("topic", TOPICS)
def test_missing_field_and_unknown_field_are_named(topic):
    assert "location" in reasons(topic, location=...)
    assert reasons(topic, colour="red") == {"colour": "Extra inputs are not permitted"}


@pytest.mark.parametrize("topic", TOPICS)
def test_naive_datetime_is_refused(topic):
    assert "dateObserved" in reasons(topic, dateObserved="2026-03-02T08:00:05")


@pytest.mark.parametrize("topic", TOPICS)
def test_coordinates_outside_the_city_are_refused(topic):
    box = city()
    errors = reasons(topic, location={"type": "Point", "coordinates": [box.east + 0.01, 50.97]})
    assert "outside the city" in errors["location.coordinates"]
    errors = reasons(topic, location={"type": "Point", "coordinates": [6.957, box.north + 0.01]})
    assert "latitude" in errors["location.coordinates"]


@pytest.mark.parametrize("topic", TOPICS)
def test_id_must_be_an_ngsi_ld_urn_of_the_model_type(topic):
    assert "must start with 'urn:ngsi-ld:" in reasons(topic, id="sensor-1")["id"]
    assert "id" in reasons(topic, id=ngsi_id("Other", "x"))


def test_wrong_types_are_named():
    assert reasons("traffic-sensors", intensity="many") == {
        "intensity": "Input should be a valid integer, unable to parse string as an integer"}
    assert set(reasons("weather", temperature=[1], windSpeed=None)) == {"temperature", "windSpeed"}


def test_impossible_values_are_refused():
    assert "greater than or equal to 0" in reasons("traffic-sensors", averageVehicleSpeed=-3.0)["averageVehicleSpeed"]
    assert "less than or equal to 1" in reasons("traffic-sensors", occupancy=1.2)["occupancy"]
    assert "occupancy" in reasons("parking", occupancy=1.5)
    assert "relativeHumidity" in reasons("weather", relativeHumidity=95)
    assert "speed" in reasons("taxi-vtc", speed=-1)
    assert "pm25" in reasons("air-quality", pm25=-0.1)
    assert "must equal totalSpotNumber" in reasons("parking", availableSpotNumber=70)["availableSpotNumber"]
    assert "exceeds totalSlotNumber" in reasons("bike-share", freeSlotNumber=19)["outOfServiceSlotNumber"]
    assert "after dateObservedFrom" in reasons(
        "traffic-sensors", dateObservedFrom=(T0 + timedelta(seconds=1)).isoformat())["dateObservedTo"]
    assert "averageVehicleSpeed" in reasons("traffic-sensors", averageVehicleSpeed=float("nan"))


def test_a_bus_position_without_speed_heading_or_occupancy_is_valid_with_nulls():
    # Real GTFS-realtime VehiclePositions very often leave them out; the rest of the position is still worth it.
    data = {name: value for name, value in sample("public-transport").items()
            if name not in ("speed", "heading", "occupancyStatus")}
    event = stream_for_topic("public-transport").model.model_validate(data)
    assert (event.speed, event.heading, event.occupancyStatus) == (None, None, None)
    from smartcity.cli.schemas import schema_document
    as_json = json.loads(event.model_dump_json())
    jsonschema.Draft202012Validator(schema_document(stream_for_topic("public-transport"))).validate(as_json)
    # present, they are still checked
    assert set(reasons("public-transport", speed=-1.0, heading=360.0, occupancyStatus="CRUSHED")) == {
        "speed", "heading", "occupancyStatus"}


def test_personal_fields_are_marked_for_ingest():
    assert stream_for_topic("taxi-vtc").personal_fields == ["vehicleId", "driverId", "location"]
    assert [t for t in TOPICS if stream_for_topic(t).personal_fields] == ["taxi-vtc"]
    assert STREAMS["taxi-vtc"].key_field not in STREAMS["taxi-vtc"].personal_fields
    # a shared vehicle's id is its trace's: pseudonymized, and the record key is made from the pseudonym
    assert STREAMS["bike-share-vehicles"].personal_fields == ["id", "location"]


def test_unknown_topic_or_type_lists_the_known_ones():
    with pytest.raises(KeyError, match="known topics: traffic-sensors"):
        stream_for_topic("trafic")
    with pytest.raises(KeyError, match="city.traffic.flow.observed.v1"):
        model_for_type("city.traffic.flow.observed.v9")


def test_ngsi_id_percent_encodes_sumo_ids():
    assert ngsi_id("RoadSegment", "-23283579#1") == "urn:ngsi-ld:RoadSegment:-23283579%231"


def test_events_are_frozen():
    event = STREAMS["parking"].model.model_validate(sample("parking"))
    with pytest.raises(ValidationError):
        event.occupancy = 0.1
