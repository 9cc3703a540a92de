"""Connectors against feeds in their real formats, served over HTTP on loopback, publishing through the ingest
functions (loaded from stack.yml and served by the real gateway with uvicorn) onto the embedded bus.

GTFS-realtime protobuf is built from the city's own static GTFS (its trips, stops and routes); GBFS 2.3 and 3.0
JSON and a CSV open-data file with a mapping are written here. Conditional requests (304), backoff on server
errors, unchanged entities and malformed feeds are exercised on the same servers.
"""

from __future__ import annotations

import base64
import json
import random
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from google.transit import gtfs_realtime_pb2 as rt
from typer.testing import CliRunner

from smartcity.api.auth import Role
from smartcity.backends.bus import EventBus, open_bus
from smartcity.backends.database import open_database
from smartcity.cli import app
from smartcity.city.files import configured_city
from smartcity.connectors import feed_source, poller
from smartcity.connectors.gtfs_realtime import static_gtfs
from smartcity.connectors.polling import Backoff, FeedUnavailable, Poller, PollReport
from smartcity.events import city
from smartcity.ingest_client import CLIENT_API_KEY_SECRET, IngestUnavailable
from smartcity.privacy import Pseudonymizer
from smartcity.runtime.credentials import add_ingest_key
from smartcity.runtime.gateway import build_gateway
from smartcity.runtime.loader import load_stack
from smartcity.runtime.trigger import FunctionTrigger
from smartcity.settings import DEAD_LETTER_TOPIC, Settings, get_settings
from tests.api_samples.gateway import api_gateway
from tests.credentials import bearer
from tests.feed_server import FeedServer, feed_server
from tests.fixtures.functions.helpers import serving
from tests.storage_samples import drain
from tests.stream_functions import STACK_FILE, prepared_settings

INGEST = ["ingest-public-transport", "ingest-incidents", "ingest-bike-share", "ingest-bike-share-vehicles",
          "ingest-taxi-vtc"]
SERVICE_DAY = date(2026, 3, 2)


@dataclass
class Platform:
    """The ingest functions behind a gateway on loopback, the bus they publish to, the feed server."""

    settings: Settings
    gateway: str
    bus: EventBus
    feeds: FeedServer
    key: str | None

    def poller(self, kind: str, url: str, mapping: Path | None = None, interval_s: float = 30.0,
               backoff: Backoff | None = None) -> Poller:
        return poller(feed_source(kind, url, mapping), self.gateway, self.bus, self.settings.topic_partitions,
                      interval_s, backoff or Backoff(), client=httpx.Client(timeout=10), key=self.key)

    def published(self, topic: str) -> list[dict]:
        return [orjson.loads(record.value) for record in drain(self.bus, topic)]

    def dead_letters(self) -> list[tuple[dict, dict]]:
        """(headers, decoded knativeerrordata) of each dead letter."""
        letters = []
        for record in drain(self.bus, DEAD_LETTER_TOPIC):
            headers = {name: value.decode() for name, value in record.headers}
            letters.append((headers, json.loads(base64.b64decode(headers["ce_knativeerrordata"]))))
        return letters


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """The connector holds an API key for its five streams, in the secret file a client reads it from."""
    settings = prepared_settings(tmp_path)
    key = add_ingest_key(settings.secrets_dir, "connector-tests", [name.removeprefix("ingest-") for name in INGEST])
    (settings.secrets_dir / CLIENT_API_KEY_SECRET).write_text(key)
    bus = open_bus(settings.bus_url)
    try:
        with serving(build_gateway(STACK_FILE, settings, INGEST)) as gateway, feed_server() as feeds:
            yield Platform(settings, gateway, bus, feeds, key)
    finally:
        bus.close()


# --- GTFS-realtime ------------------------------------------------------------------------------------------


def running_trips(count: int):
    feed = static_gtfs()
    trips = sorted((t for t in feed.trips.values() if len(t.stop_times) >= 3), key=lambda t: t.id)[:count]
    assert len(trips) == count, "the city's GTFS has too few trips"
    return feed, trips


def at(seconds_after_midnight: int) -> int:
    zone = ZoneInfo(configured_city().timezone)
    midnight = datetime(SERVICE_DAY.year, SERVICE_DAY.month, SERVICE_DAY.day, tzinfo=zone)
    return int((midnight + timedelta(seconds=seconds_after_midnight)).timestamp())


def vehicle(message, entity_id: str, trip, index: int, observed: int, with_position: bool = True,
            with_measures: bool = True) -> None:
    """A vehicle of ``trip`` on its way to stop ``index``, at that stop's coordinates; without ``with_measures``,
    no speed, bearing or occupancy, as many real feeds give their positions."""
    feed = static_gtfs()
    entity = message.entity.add(id=entity_id)
    vp = entity.vehicle
    vp.vehicle.id, vp.vehicle.label = f"bus-{entity_id}", f"Bus {entity_id}"
    vp.trip.trip_id, vp.trip.start_date = trip.id, SERVICE_DAY.strftime("%Y%m%d")
    vp.current_stop_sequence = trip.stop_times[index].sequence
    vp.current_status = rt.VehiclePosition.IN_TRANSIT_TO
    vp.timestamp = observed
    if with_measures:
        vp.occupancy_status = rt.VehiclePosition.MANY_SEATS_AVAILABLE
    if with_position:
        stop = feed.stops[trip.stop_times[index].stop]
        vp.position.longitude, vp.position.latitude = stop.lon, stop.lat
    if with_position and with_measures:
        vp.position.speed, vp.position.bearing = 5.0, 90.0


def gtfs_rt_feed(header_time: int, second_moves: bool = False) -> bytes:
    """Three vehicles (the third without a position) on the static feed's trips, a TripUpdate, a works alert."""
    feed, (first, second, third) = running_trips(3)
    message = rt.FeedMessage()
    message.header.gtfs_realtime_version, message.header.timestamp = "2.0", header_time
    vehicle(message, "1", first, 1, at(first.stop_times[1].arrival_s + 90))
    index = 2 if second_moves else 1
    vehicle(message, "2", second, index, at(second.stop_times[index].arrival_s))
    vehicle(message, "3", third, 1, at(third.stop_times[1].arrival_s), with_position=False)
    update = message.entity.add(id="u2").trip_update
    update.trip.trip_id = second.id
    for stop_time in second.stop_times[:3]:
        stu = update.stop_time_update.add(stop_sequence=stop_time.sequence, stop_id=stop_time.stop)
        stu.arrival.delay = 120
    alert = message.entity.add(id="works-1").alert
    alert.cause, alert.effect = rt.Alert.CONSTRUCTION, rt.Alert.DETOUR
    alert.severity_level = rt.Alert.WARNING
    alert.informed_entity.add(stop_id=first.stop_times[1].stop)
    alert.header_text.translation.add(text="Road works: the stop is moved", language="en")
    alert.active_period.add(start=at(6 * 3600))
    return message.SerializeToString()


def test_gtfs_realtime_vehicles_and_alerts_reach_the_bus_through_ingest(platform):
    feed, (first, second, third) = running_trips(3)
    url = platform.feeds.serve("/gtfs-rt", gtfs_rt_feed(at(8 * 3600)), "application/x-protobuf")
    connector = platform.poller("gtfs-rt", url)

    report = connector.poll()
    assert (report.read, report.published, report.refused) == (4, 3, 1)
    buses = {event["vehicleId"]: event for event in platform.published("public-transport")}
    assert set(buses) == {"bus-1", "bus-2"}
    one, two = buses["bus-1"], buses["bus-2"]
    assert (one["tripId"], one["routeId"], one["stopId"]) == (first.id, first.route, first.stop_times[1].stop)
    assert one["vehicleType"] == feed.route_types[first.route]
    assert one["delay"] == 90  # 90 s past the scheduled arrival, estimated from the timetable
    assert two["delay"] == 120  # the TripUpdate's
    assert (one["speed"], one["heading"], one["occupancyStatus"]) == (18.0, 90.0, "MANY_SEATS_AVAILABLE")
    stop = feed.stops[first.stop_times[1].stop]
    assert one["location"]["coordinates"] == pytest.approx([stop.lon, stop.lat], abs=1e-5)  # float32 in the protobuf
    assert one["zone"] == city().zone_of(stop.lon, stop.lat)
    [alert] = platform.published("incidents")
    assert (alert["subCategory"], alert["severity"], alert["status"]) == ("roadWorks", "medium", "active")
    assert alert["refRoadSegment"].startswith("urn:ngsi-ld:RoadSegment:")  # ingest's nearest segment
    [(headers, error)] = platform.dead_letters()
    assert headers["ce_type"] == "city.connector.reading.refused.v1" and headers["ce_knativeerrorcode"] == "422"
    assert "location" in {item["field"] for item in error["errors"]}

    assert connector.poll() == PollReport(not_modified=True)  # 304: nothing read, nothing published
    assert platform.feeds.statuses("/gtfs-rt") == [200, 304]
    assert "if-none-match" in platform.feeds.requests[-1][1]

    platform.feeds.serve("/gtfs-rt", gtfs_rt_feed(at(8 * 3600 + 30), second_moves=True), "application/x-protobuf")
    report = connector.poll()
    assert (report.read, report.published, report.refused) == (4, 1, 0)  # only bus 2 moved
    assert [event["vehicleId"] for event in platform.published("public-transport")] == ["bus-1", "bus-2", "bus-2"]
    assert len(platform.published("incidents")) == 1 and len(platform.dead_letters()) == 1


def test_positions_without_speed_bearing_or_occupancy_are_stored_and_listed_with_nulls(platform):
    feed, trips = running_trips(2)
    message = rt.FeedMessage()
    message.header.gtfs_realtime_version, message.header.timestamp = "2.0", at(8 * 3600)
    for number, trip in enumerate(trips, start=1):
        vehicle(message, str(number), trip, 1, at(trip.stop_times[1].arrival_s), with_measures=False)
    url = platform.feeds.serve("/gtfs-rt", message.SerializeToString(), "application/x-protobuf")

    report = platform.poller("gtfs-rt", url).poll()
    assert (report.read, report.published, report.refused) == (2, 2, 0) and platform.dead_letters() == []
    records = drain(platform.bus, "public-transport")
    assert [[orjson.loads(r.value)[name] for name in ("speed", "heading", "occupancyStatus")] for r in records] == \
        [[None, None, None]] * 2
    for function in load_stack(STACK_FILE, platform.settings, ["store-timeseries", "store-latest"]):
        assert FunctionTrigger(function).process(records).dead_lettered == 0, function.name
    db = open_database(platform.settings.database_url)
    try:
        rows = db.query("SELECT vehicle_id, trip_id, speed, heading, occupancy_status FROM transport_positions "
                        "ORDER BY vehicle_id")
    finally:
        db.close()
    assert rows == [{"vehicle_id": f"bus-{n}", "trip_id": trip.id, "speed": None, "heading": None,
                     "occupancy_status": None} for n, trip in enumerate(trips, start=1)]

    with TestClient(api_gateway(platform.settings)) as api:
        answer = api.get("/v1/transport/vehicles", headers=bearer(platform.settings, Role.viewer))
    assert answer.status_code == 200, answer.text
    listed = {item["vehicle_id"]: item for item in answer.json()["items"]}
    assert set(listed) == {"bus-1", "bus-2"}
    assert all((item["speed_kmh"], item["heading"], item["occupancy_status"]) == (None, None, None)
               for item in listed.values())
    assert listed["bus-1"]["stop_id"] == trips[0].stop_times[1].stop and listed["bus-1"]["delay_s"] == 0


# --- GBFS ---------------------------------------------------------------------------------------------------


def gbfs_documents(version: str, base: str, bikes: int, reported: int,
                   vehicles: tuple[dict, ...] = ()) -> dict[str, dict]:
    """gbfs.json, station_information, station_status, vehicle_types and the vehicles' feed of a two-station
    system, in GBFS ``version``; ``vehicles`` (keyed ``id``) are written with the version's id and time."""
    feed = static_gtfs()
    stops = sorted(feed.stops.values(), key=lambda s: s.id)[:2]
    v3 = version.startswith("3")

    def time(seconds: int):
        return datetime.fromtimestamp(seconds, ZoneInfo("UTC")).isoformat() if v3 else seconds

    names = ["station_information", "station_status", "vehicle_status" if v3 else "free_bike_status", "vehicle_types"]
    feeds = [{"name": name, "url": f"{base}/{version}/{name}.json"} for name in names]
    information = [{"station_id": f"st-{i}", "lat": stop.lat, "lon": stop.lon, "capacity": 12,
                    "name": [{"text": stop.name or f"Station {i}", "language": "de"}] if v3 else stop.name or f"Station {i}"}
                   for i, stop in enumerate(stops)]
    bikes_key = "num_vehicles_available" if v3 else "num_bikes_available"
    status = [{"station_id": f"st-{i}", bikes_key: bikes + i, "num_docks_available": 12 - bikes - i - 1,
               "num_docks_disabled": 1, "is_installed": True, "is_renting": True, "is_returning": True,
               "last_reported": time(reported)} for i in range(len(stops))]
    envelope = {"last_updated": time(reported + 5), "ttl": 60, "version": version}
    return {
        "gbfs.json": {**envelope, "data": {"feeds": feeds} if v3 else {"en": {"feeds": feeds}}},
        "station_information.json": {**envelope, "data": {"stations": information}},
        "station_status.json": {**envelope, "data": {"stations": status}},
        names[2] + ".json": {**envelope, "data": {"vehicles" if v3 else "bikes": [
            {"vehicle_id" if v3 else "bike_id": v["id"], "last_reported": time(reported),
             **{name: value for name, value in v.items() if name != "id"}} for v in vehicles]}},
        "vehicle_types.json": {**envelope, "data": {"vehicle_types": [
            {"vehicle_type_id": "ebike", "form_factor": "bicycle", "propulsion_type": "electric_assist"},
            {"vehicle_type_id": "hover", "form_factor": "hoverboard", "propulsion_type": "electric"}]}},
    }


def serve_gbfs(feeds: FeedServer, version: str, bikes: int, reported: int, vehicles: tuple[dict, ...] = ()) -> str:
    for name, document in gbfs_documents(version, feeds.base_url, bikes, reported, vehicles).items():
        feeds.serve(f"/{version}/{name}", json.dumps(document))
    return feeds.url(f"/{version}/gbfs.json")


@pytest.mark.parametrize("version", ["2.3", "3.0"])
def test_gbfs_stations_are_published_once_per_change(platform, version):
    url = serve_gbfs(platform.feeds, version, bikes=4, reported=at(8 * 3600))
    connector = platform.poller("gbfs", url)
    assert connector.poll().published == 2
    stations = {event["id"]: event for event in platform.published("bike-share")}
    first = stations["urn:ngsi-ld:BikeHireDockingStation:st-0"]
    assert (first["availableBikeNumber"], first["freeSlotNumber"], first["outOfServiceSlotNumber"]) == (4, 7, 1)
    assert (first["totalSlotNumber"], first["status"]) == (12, "working")
    assert datetime.fromisoformat(first["dateLastReported"]).timestamp() == at(8 * 3600)

    assert connector.poll().not_modified  # every document 304
    serve_gbfs(platform.feeds, version, bikes=4, reported=at(8 * 3600 + 60))  # reported again, nothing changed
    report = connector.poll()
    assert (report.not_modified, report.read, report.published) == (False, 2, 0)
    serve_gbfs(platform.feeds, version, bikes=2, reported=at(8 * 3600 + 120))  # two bikes rented at each
    assert connector.poll().published == 2
    latest = [event for event in platform.published("bike-share") if event["id"].endswith("st-0")][-1]
    assert (latest["availableBikeNumber"], latest["status"]) == (2, "almostEmpty")
    assert platform.dead_letters() == []


def free_vehicles(moved: float = 0.0, form: str = "ebike") -> tuple[dict, ...]:
    """A free-floating e-bike near the first stop (``moved`` degrees east) and one docked at station st-0."""
    stop = sorted(static_gtfs().stops.values(), key=lambda s: s.id)[0]
    return ({"id": "bike-4711", "lat": stop.lat + 0.001, "lon": stop.lon + moved, "is_reserved": False,
             "is_disabled": False, "vehicle_type_id": form, "current_range_meters": 9000},
            {"id": "bike-0815", "station_id": "st-0", "is_reserved": True, "is_disabled": False,
             "vehicle_type_id": "ebike"})


@pytest.mark.parametrize("version", ["2.3", "3.0"])
def test_gbfs_vehicles_are_published_pseudonymized_once_per_change(platform, version):
    url = serve_gbfs(platform.feeds, version, bikes=4, reported=at(8 * 3600), vehicles=free_vehicles())
    connector = platform.poller("gbfs", url)
    assert connector.poll().published == 4  # two stations, two vehicles
    pseudonyms = Pseudonymizer.from_settings(platform.settings)
    records = drain(platform.bus, "bike-share-vehicles")
    assert not any(b"bike-4711" in record.value + (record.key or b"") or b"bike-0815" in record.value for record in records)
    vehicles = {event["id"]: event for event in (orjson.loads(record.value) for record in records)}
    free = vehicles[f"urn:ngsi-ld:BikeShareVehicle:{pseudonyms.pseudonym('bike-4711')}"]
    docked = vehicles[f"urn:ngsi-ld:BikeShareVehicle:{pseudonyms.pseudonym('bike-0815')}"]
    stop = sorted(static_gtfs().stops.values(), key=lambda s: s.id)[0]
    assert free["location"]["coordinates"] == [round(stop.lon, 3), round(stop.lat + 0.001, 3)]  # coarsened
    assert (free["formFactor"], free["propulsionType"], free["currentRangeMeters"]) == ("bicycle", "electric_assist", 9000)
    assert (free["isReserved"], free["zone"]) == (False, city().zone_of(stop.lon, stop.lat + 0.001))
    assert docked["stationId"] == "st-0" and docked["isReserved"] is True
    assert docked["location"]["coordinates"] == [round(stop.lon, 3), round(stop.lat, 3)]  # at its station
    assert datetime.fromisoformat(free["dateLastReported"]).timestamp() == at(8 * 3600)

    assert connector.poll().not_modified
    serve_gbfs(platform.feeds, version, bikes=4, reported=at(8 * 3600 + 60), vehicles=free_vehicles(moved=0.002))
    report = connector.poll()  # only the free-floating bike moved: stations and the docked one are not sent again
    assert (report.read, report.published) == (4, 1)
    events = platform.published("bike-share-vehicles")  # from the topic's start, partitions one after the other
    assert sorted(event["location"]["coordinates"][0] for event in events if event["id"] == free["id"]) == sorted(
        [round(stop.lon, 3), round(stop.lon + 0.002, 3)]) and len(events) == 3
    assert platform.dead_letters() == []


def test_gbfs_vehicles_refused_or_malformed_are_dead_lettered_and_polling_goes_on(platform):
    url = serve_gbfs(platform.feeds, "3.0", bikes=4, reported=at(8 * 3600), vehicles=free_vehicles(form="hover"))
    connector = platform.poller("gbfs", url)
    report = connector.poll()
    assert (report.published, report.refused) == (3, 1)  # a hoverboard is no form factor of GBFS
    [(headers, error)] = platform.dead_letters()
    assert headers["ce_type"] == "city.connector.reading.refused.v1"
    assert [item["field"] for item in error["errors"]] == ["formFactor"]
    [letter] = drain(platform.bus, DEAD_LETTER_TOPIC)  # the vehicle's raw id and position are not kept there
    seen = letter.value + (letter.key or b"") + repr(letter.headers).encode() + json.dumps(error).encode()
    assert b"bike-4711" not in seen and repr(free_vehicles()[0]["lat"]).encode() not in seen  # raw id, not digits
    assert json.loads(letter.value)["formFactor"] == "hoverboard"  # the rest of the reading is, to see what was wrong

    platform.feeds.serve("/3.0/vehicle_status.json", json.dumps({"data": {"vehicles": {"bike-1": {}}}}))
    broken = connector.poll()
    assert broken.malformed and "data.vehicles" in broken.malformed
    [error] = [error for headers, error in platform.dead_letters()
               if headers["ce_type"] == "city.connector.feed.malformed.v1"]
    assert error["errors"][0]["field"] == "data.vehicles" and error["instance"].endswith("/3.0/vehicle_status.json")
    serve_gbfs(platform.feeds, "3.0", bikes=3, reported=at(8 * 3600 + 60), vehicles=free_vehicles())
    assert connector.poll().published == 3  # polling went on: two stations changed, the e-bike is valid now


# --- a CSV open-data file with a mapping --------------------------------------------------------------------

TAXI_MAPPING = """
stream: taxi-vtc
format: csv
delimiter: ";"
id: trip
fields:
  serviceType: {value: taxi}
  vehicleId: plate
  driverId: licence
  tripStatus: status
  lon: {from: x, type: float}
  lat: {from: y, type: float}
  speed: {from: speed_ms, type: float, unit: m/s}
  heading: {from: course, type: float}
  pickupZone: from_zone
  dropoffZone: to_zone
  passengerCount: {from: passengers, type: int}
  distanceTravelled: {from: km, type: float, unit: km}
  dateObserved: {from: epoch, type: timestamp}
"""


def taxi_csv(speed_ms: float) -> str:
    box = city()
    lon, lat = (box.west + box.east) / 2, (box.south + box.north) / 2
    zone = box.zone_of(lon, lat)
    rows = [f"trip-{n};K-TX-10{n};lic-{n};onTrip;{lon};{lat};{speed_ms};45;{zone};{zone};1;1.5;{at(8 * 3600)}"
            for n in (1, 2)]
    return "\n".join(["trip;plate;licence;status;x;y;speed_ms;course;from_zone;to_zone;passengers;km;epoch", *rows])


def test_a_csv_file_is_mapped_and_its_personal_fields_pseudonymized_by_ingest(platform, tmp_path):
    mapping = tmp_path / "taxis.yaml"
    mapping.write_text(TAXI_MAPPING)
    url = platform.feeds.serve("/taxis.csv", taxi_csv(10.0), "text/csv")
    connector = platform.poller("http", url, mapping)
    assert connector.poll().published == 2
    trips = {event["id"]: event for event in platform.published("taxi-vtc")}
    trip = trips["urn:ngsi-ld:TaxiTrip:trip-1"]
    assert (trip["speed"], trip["distanceTravelled"]) == (36.0, 1500.0)  # ingest converted m/s and km
    assert trip["vehicleId"] != "K-TX-101" and trip["driverId"] != "lic-1"  # pseudonyms, not the plate
    assert "K-TX-10" not in json.dumps(list(trips.values()))
    assert connector.poll().not_modified
    platform.feeds.serve("/taxis.csv", taxi_csv(12.0), "text/csv")
    assert connector.poll().published == 2


# --- backoff and malformed feeds ----------------------------------------------------------------------------


def run_until(connector: Poller, polls: int) -> tuple[list[float], list[PollReport | Exception]]:
    """Run the connector's loop for ``polls`` polls; the waits it asked for and each poll's outcome."""
    waits: list[float] = []
    outcomes: list[PollReport | Exception] = []

    def wait(seconds: float) -> bool:
        waits.append(seconds)
        return len(outcomes) >= polls

    connector.run(threading.Event(), wait=wait, on_poll=outcomes.append)
    return waits, outcomes


def test_server_errors_back_off_with_growing_delays_then_polling_recovers(platform):
    url = serve_gbfs(platform.feeds, "2.3", bikes=4, reported=at(8 * 3600))
    platform.feeds.fail("/2.3/gbfs.json", 503, 500, 503, 502)
    connector = platform.poller("gbfs", url, interval_s=30.0,
                                backoff=Backoff(initial_s=1.0, maximum_s=8.0, rng=random.Random(7)))
    waits, outcomes = run_until(connector, polls=6)
    assert [type(outcome) for outcome in outcomes[:4]] == [FeedUnavailable] * 4
    assert "503" in str(outcomes[0])
    assert waits[0] < waits[1] < waits[2] < waits[3]  # at most 1, 2, 4, 8 s, less up to half of it
    assert 0.5 <= waits[0] <= 1.0 and 4.0 <= waits[3] <= 8.0
    assert outcomes[4].published == 2 and waits[4] == 30.0  # recovered: the interval again
    assert outcomes[5].not_modified and connector.failures == 0
    assert len(platform.published("bike-share")) == 2


def archived_dead_letters(platform: Platform) -> dict:
    """The dead-letter topic handed to dead-letter-archive as its trigger does: the one document it keeps."""
    [function] = load_stack(STACK_FILE, platform.settings, ["dead-letter-archive"])
    outcome = FunctionTrigger(function).process(drain(platform.bus, DEAD_LETTER_TOPIC))
    assert (outcome.handled, outcome.dead_lettered) == (1, 0)
    [document] = function.context.documents.find("dead_letters", {})
    return document


def test_a_malformed_feed_is_dead_lettered_with_the_reason_and_polling_goes_on(platform):
    url = platform.feeds.serve("/gtfs-rt", b"<html>502 Bad Gateway from a proxy</html>", "text/html")
    connector = platform.poller("gtfs-rt", url)
    first = connector.poll()
    assert first.malformed and first.published == 0
    assert connector.poll().not_modified  # the same bad body is not dead-lettered twice
    [(headers, error)] = platform.dead_letters()
    assert headers["ce_type"] == "city.connector.feed.malformed.v1" and headers["ce_knativeerrorcode"] == "400"
    assert error["errors"] == [{"field": "body", "reason": error["errors"][0]["reason"]}]
    assert "not a GTFS-realtime FeedMessage" in error["errors"][0]["reason"] and error["instance"] == url
    archive = archived_dead_letters(platform)
    assert archive["code"] == 400 and archive["function"] == url and archive["error"] == error
    assert archive["event"]["source"] == "/smartcity/connectors/gtfs-rt"
    assert base64.b64decode(archive["data"]["body"]).startswith(b"<html>")

    platform.feeds.serve("/gtfs-rt", gtfs_rt_feed(at(8 * 3600)), "application/x-protobuf")
    waits, outcomes = run_until(connector, polls=1)
    assert outcomes[0].published == 3 and waits == [30.0]
    assert len(platform.published("public-transport")) == 2


def test_without_a_key_ingest_refuses_and_the_readings_wait_for_the_next_poll(platform):
    url = serve_gbfs(platform.feeds, "2.3", bikes=4, reported=at(8 * 3600))
    platform.key = None
    anonymous = platform.poller("gbfs", url)
    with pytest.raises(IngestUnavailable, match="401"):
        anonymous.poll()
    assert platform.published("bike-share") == [] and platform.dead_letters() == []
    anonymous.ingest.headers["x-api-key"] = platform.settings.secrets_dir.joinpath(CLIENT_API_KEY_SECRET).read_text()
    assert anonymous.poll().published == 2  # nothing was remembered as sent: both stations go now


# --- the command --------------------------------------------------------------------------------------------


def test_smartcity_connect_once_publishes_through_the_gateway_and_exits_1_when_the_feed_is_down(platform, monkeypatch):
    url = serve_gbfs(platform.feeds, "3.0", bikes=5, reported=at(9 * 3600))
    monkeypatch.setenv("SMARTCITY_BUS_URL", platform.settings.bus_url)
    monkeypatch.setenv("SMARTCITY_SECRETS_DIR", str(platform.settings.secrets_dir))
    get_settings.cache_clear()
    try:
        done = CliRunner().invoke(app, ["connect", "gbfs", url, "--gateway", platform.gateway, "--once"])
        platform.feeds.fail("/3.0/gbfs.json", 503)
        down = CliRunner().invoke(app, ["connect", "gbfs", url, "--gateway", platform.gateway, "--once"])
    finally:
        get_settings.cache_clear()
    assert done.exit_code == 0, done.output
    assert "published=2" in done.output and len(platform.published("bike-share")) == 2
    assert down.exit_code == 1 and "503" in down.output
