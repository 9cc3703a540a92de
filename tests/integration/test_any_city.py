"""Any city (issue 15, the first must-show): a city built from a GTFS feed alone, on another continent and in
another time zone than Cologne (Montréal, America/Toronto; the feed is written here), is made the configured city;
its buses are simulated, POSTed to the ingest-public-transport function through the gateway, stored by
store-timeseries and store-latest (their trigger's record path, from the bus), and served by the API with that
city's zones and local times (UTC-05:00 on 2 March 2026). A reading at a Cologne point is refused naming
``location.coordinates`` and the city. Every backend is embedded under the test's folder; the default city is back
after the test.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smartcity.api.auth import Role
from smartcity.backends.bus import open_bus
from smartcity.backends.database import open_database
from smartcity.city import read_city
from smartcity.cli import app
from smartcity.events import city
from smartcity.runtime.gateway import build_gateway
from smartcity.runtime.loader import load_stack
from smartcity.runtime.trigger import FunctionTrigger
from smartcity.settings import PROJECT_ROOT
from smartcity.simulator.clock import CityClock
from smartcity.simulator.runner import publish
from smartcity.simulator.simulation import CitySimulation, SimulatorOptions
from smartcity.simulator.sinks import HttpSink
from smartcity.storage.migrate import migrate
from smartcity.storage.reference import load_reference
from tests.api_samples.gateway import api_gateway
from tests.city_samples import LINES, configured_city, montreal_feed
from tests.credentials import bearer, ingest_headers
from tests.storage_samples import drain, embedded_settings

STACK_FILE = PROJECT_ROOT / "stack.yml"
# 07:55 in Montréal on a Monday before daylight saving time; given in UTC: the API answers in the city's time
START = datetime(2026, 3, 2, 12, 55, tzinfo=timezone.utc)
END = START + timedelta(minutes=10)
COLOGNE = [6.9557, 50.9642]


def test_a_gtfs_city_on_another_continent_is_simulated_ingested_stored_and_served(tmp_path):
    feed = montreal_feed(tmp_path / "stm.zip")
    built = CliRunner().invoke(app, ["city", "build", "--from-gtfs", str(feed), "--out", str(tmp_path / "city.json"),
                                     "--name", "Montréal (STM sample)"])
    assert built.exit_code == 0, built.output
    montreal = read_city(tmp_path / "city.json")
    with configured_city(tmp_path / "city.json"):
        assert city().name == "Montréal (STM sample)"
        settings = embedded_settings(tmp_path / "stack")
        db = open_database(settings.database_url)
        migrate(db)
        assert load_reference(db)["stops"] == len(montreal.transit.stops)
        db.close()

        ingest = build_gateway(STACK_FILE, settings, ["ingest-public-transport"])
        with TestClient(ingest, headers=ingest_headers(settings, ["public-transport"])) as client:
            sink = KeepingSink("http://testserver/function/ingest-{topic}", client=client)
            with CitySimulation(SimulatorOptions(start=START, seed=3, duration_s=(END - START).total_seconds(),
                                                 streams=("public-transport",))) as simulation:
                report = publish(simulation.ticks(), sink, CityClock(simulation.start, 0))
            assert report.by_topic["public-transport"] > 20, report.by_topic
            refused = client.post("/function/ingest-public-transport", json=[cologne_reading(sink)])
        assert refused.status_code == 422, refused.text
        reasons = {error["field"]: error["reason"] for error in refused.json()["errors"]}
        assert "outside the city Montréal (STM sample)" in reasons["[0].location.coordinates"], reasons

        records = drain_stream(settings)
        assert len(records) == report.by_topic["public-transport"]
        for function in load_stack(STACK_FILE, settings, ["store-timeseries", "store-latest"]):
            outcome = FunctionTrigger(function).process(records)
            assert (outcome.handled, outcome.dead_lettered) == (len(records), 0), (function.name, outcome)

        with TestClient(api_gateway(settings), headers=bearer(settings, Role.viewer)) as api:
            check_the_api(api, montreal)
    assert city().timezone == "Europe/Berlin"  # the default city is back


class KeepingSink(HttpSink):
    """The HTTP sink, keeping the last reading it sent."""

    last_sent: dict = {}

    def send(self, stream, events) -> None:
        super().send(stream, events)
        if events:
            self.last_sent = events[-1].model_dump(mode="json")


def cologne_reading(sink: KeepingSink) -> dict:
    """The last reading the simulator sent, moved to Cologne."""
    return {**sink.last_sent, "location": {"type": "Point", "coordinates": COLOGNE}}


def drain_stream(settings) -> list:
    bus = open_bus(settings.bus_url)
    try:
        return drain(bus, "public-transport")
    finally:
        bus.close()


def check_the_api(api: TestClient, montreal) -> None:
    zones = {zone.id for zone in montreal.zones}
    vehicles = api.get("/v1/transport/vehicles", params={"limit": 100})
    assert vehicles.status_code == 200, vehicles.text
    items = vehicles.json()["items"]
    assert items and {item["line_id"] for item in items} <= set(LINES)
    for item in items:
        assert item["zone"] in zones and montreal.contains(item["lon"], item["lat"])
        assert item["zone"] == montreal.zone_of(item["lon"], item["lat"])
        observed = datetime.fromisoformat(item["observed_at"])
        assert item["observed_at"].endswith("-05:00") and START <= observed <= END, item["observed_at"]
    stops = api.get("/v1/transport/stops", params={"limit": 100}).json()["items"]
    assert {(s["stop_id"], s["zone"]) for s in stops} == {(s.id, s.zone) for s in montreal.transit.stops}
    delays = api.get("/v1/transport/delays/lines", params={"from": START.isoformat(), "to": END.isoformat()})
    assert delays.status_code == 200, delays.text
    assert {line["line_id"] for line in delays.json()["items"]} == set(LINES)  # the stored positions
    lines = api.get("/v1/transport/lines").json()["items"]
    assert {line["line_id"] for line in lines} == set(LINES)
