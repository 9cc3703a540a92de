"""Publishing the simulated city: to the embedded bus, through the real ingest functions over HTTP (JSON and
CSV), to a recording and back; the city clock and the rate cap; the ``smartcity simulate`` command."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import orjson
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from smartcity.backends.bus import open_bus
from smartcity.backends.database import open_database
from smartcity.cli import app
from smartcity.events import STREAMS, TOPICS
from smartcity.privacy import Pseudonymizer
from smartcity.runtime.gateway import build_gateway
from smartcity.settings import PROJECT_ROOT
from smartcity.simulator.clock import CityClock, RateLimiter
from smartcity.simulator.incidents import IncidentPlan
from smartcity.simulator.recording import Recorder, RecordingError, read_recording
from smartcity.simulator.runner import publish
from smartcity.simulator.simulation import CitySimulation, SimulatorOptions
from smartcity.simulator.sinks import BusSink, HttpSink
from smartcity.storage.migrate import migrate
from smartcity.storage.reference import load_reference
from tests.credentials import ingest_headers
from tests.storage_samples import drain, embedded_settings

START = datetime(2026, 3, 2, 7, 58, tzinfo=ZoneInfo("Europe/Berlin"))


def city_ticks(minutes: float = 5, **options):
    """A morning-rush run with an accident at its start, so that every stream has events within minutes."""
    options.setdefault("incidents", (IncidentPlan("accident", START, minutes=2),))
    return CitySimulation(SimulatorOptions(start=START, seed=4, duration_s=minutes * 60, **options))


def unpaced() -> CityClock:
    return CityClock(START, speed=0)


def test_bus_sink_publishes_cloudevents_keyed_by_stream_with_personal_fields_pseudonymized(tmp_path):
    settings = embedded_settings(tmp_path)
    pseudonymizer = Pseudonymizer.from_settings(settings)
    sink = BusSink(open_bus(settings.bus_url), settings.topic_partitions, lambda: pseudonymizer)
    with city_ticks(sensors=20) as simulation:
        report = publish(simulation.ticks(), sink, unpaced())
    sink.close()
    assert set(report.by_topic) == set(TOPICS)  # the simulated streams
    bus = open_bus(settings.bus_url)
    try:
        for topic, count in report.by_topic.items():
            records = drain(bus, topic)
            assert len(records) == count, topic
            headers = dict(records[0].headers)
            assert headers["ce_type"] == STREAMS[topic].ce_type.encode()
            assert headers["content-type"] == b"application/json"
            event = STREAMS[topic].model.model_validate(orjson.loads(records[0].value))
            assert records[0].key == STREAMS[topic].key_of(event).encode()
        taxi = [orjson.loads(r.value) for r in drain(bus, "taxi-vtc")]
    finally:
        bus.close()
    assert taxi and all(t["vehicleId"].startswith("ps_") and t["driverId"].startswith("ps_") for t in taxi)
    assert all(len(str(c).split(".")[1]) <= settings.gps_precision_decimals for t in taxi
               for c in t["location"]["coordinates"])


@pytest.fixture
def gateway(tmp_path):
    """The real ingest functions of stack.yml behind the real gateway, on embedded backends."""
    settings = embedded_settings(tmp_path)
    db = open_database(settings.database_url)
    migrate(db)
    load_reference(db)
    db.close()
    functions = [f"ingest-{topic}" for topic in STREAMS]
    with TestClient(build_gateway(PROJECT_ROOT / "stack.yml", settings, functions),
                    headers=ingest_headers(settings)) as client:
        yield client, settings


@pytest.mark.parametrize("body_format", ["json", "csv"])
def test_http_sink_readings_are_all_accepted_by_the_ingest_functions(gateway, body_format):
    client, settings = gateway
    sink = HttpSink("http://testserver/function/ingest-{topic}", body_format, client=client)
    with city_ticks(sensors=20) as simulation:
        report = publish(simulation.ticks(), sink, unpaced())
    assert set(report.by_topic) == set(TOPICS)  # the simulated streams
    bus = open_bus(settings.bus_url)
    try:
        for topic, count in report.by_topic.items():
            assert len(drain(bus, topic)) == count, topic
    finally:
        bus.close()


def test_http_sink_reports_a_refusal(gateway):
    client, _ = gateway
    sink = HttpSink("http://testserver/function/no-such-function-{topic}", client=client)
    with city_ticks(minutes=0.5, streams=("parking",)) as simulation, pytest.raises(Exception, match="404"):
        publish(simulation.ticks(), sink, unpaced())


class ListSink:
    def __init__(self):
        self.sent = []

    def send(self, stream, events):
        self.sent += [(stream.topic, e.model_dump_json()) for e in events]

    def flush(self):
        pass

    def close(self):
        pass


def test_a_recording_replays_the_same_events(tmp_path):
    first, recorder = ListSink(), Recorder(tmp_path / "city.jsonl")
    with city_ticks() as simulation:
        publish(simulation.ticks(), first, unpaced(), recorder=recorder)
    recorder.close()
    again = ListSink()
    publish(read_recording(tmp_path / "city.jsonl"), again, unpaced())
    assert sorted(again.sent) == sorted(first.sent) and len(first.sent) > 1000

    lines = (tmp_path / "city.jsonl").read_text().splitlines()
    damaged = json.loads(lines[3])
    damaged["data"]["location"]["coordinates"] = [2.35, 48.85]
    (tmp_path / "bad.jsonl").write_text("\n".join(lines[:3] + [json.dumps(damaged)]) + "\n")
    with pytest.raises(RecordingError, match=r"bad.jsonl:4: .*location.coordinates"):
        list(read_recording(tmp_path / "bad.jsonl"))


class FakeTime:
    """A wall clock the test moves: sleeping advances it."""

    def __init__(self):
        self.now, self.slept = 100.0, []

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(round(seconds, 6))
        self.now += seconds


def test_the_city_clock_runs_speed_times_faster_than_the_wall_clock():
    wall = FakeTime()
    clock = CityClock(START, speed=60, sleep=wall.sleep, monotonic=wall.monotonic)
    clock.wait_until(START + timedelta(minutes=5))
    assert wall.slept == [5.0]
    wall.now += 2  # the simulation took 2 wall seconds more than it had
    assert clock.lag_s(START + timedelta(minutes=5)) == pytest.approx(2.0)
    assert clock.now() == START + timedelta(minutes=7)
    with pytest.raises(ValueError, match="timezone"):
        CityClock(START.replace(tzinfo=None), speed=1)


def test_the_rate_cap_waits_rather_than_drops():
    wall = FakeTime()
    limiter = RateLimiter(100, sleep=wall.sleep, monotonic=wall.monotonic)
    for _ in range(5):
        limiter.take(50)
    assert wall.now - 100.0 == pytest.approx(2.5)


def test_the_simulate_command_publishes_to_the_configured_bus(tmp_path, monkeypatch):
    settings = embedded_settings(tmp_path)
    monkeypatch.setenv("SMARTCITY_BUS_URL", settings.bus_url)
    monkeypatch.setenv("SMARTCITY_SECRETS_DIR", str(settings.secrets_dir))
    monkeypatch.setenv("SMARTCITY_SIMULATOR_SPEED", "1")  # the flag below wins
    from smartcity.settings import get_settings
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, [
            "simulate", "--speed", "0", "--start", "2026-03-02T08:00:00+0100", "--duration", "1m", "--seed", "2",
            "--streams", "traffic-sensors,incidents", "--sensors", "30",
            "--incident", "kind=accident,at=+10s,minutes=5", "--record", str(tmp_path / "run.jsonl")])
        assert result.exit_code == 0, result.output
        assert "published 361 events" in result.output  # 12 ticks x 30 sensors + 1 alert
        bad = CliRunner().invoke(app, ["simulate", "--speed", "0", "--duration", "1m", "--incident", "kind=flood"])
        assert bad.exit_code != 0 and "kind must be one of" in bad.output
    finally:
        get_settings.cache_clear()
    bus = open_bus(settings.bus_url)
    try:
        assert len(drain(bus, "traffic-sensors")) == 360 and len(drain(bus, "incidents")) == 1
    finally:
        bus.close()
