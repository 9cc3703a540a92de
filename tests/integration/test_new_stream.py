"""A new stream from one descriptor (issue 15 item 2, the must-show): noise levels, a sound level in dB(A) at a
location from a station, declared in one file of a folder that ``SMARTCITY_STREAMS_DIR`` names, flows from its
ingest function (generated: stack.yml has no entry for it) to the file bus, store-timeseries' SQLite table and
store-latest's memory cache, and is listed by the API at ``/v1/traffic/noise-levels``. Ingest still needs an
ingest key and the API a viewer token; a reading out of bounds is refused naming the field.

The flow runs in a process of its own (:mod:`tests.stream_flow`), whose streams are the package's and the folder's,
in a copy of the project whose files are all the same afterwards: the descriptor is the whole change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from smartcity.events import STREAMS
from tests.project_copy import copy_project, snapshot

NOISE_DESCRIPTOR = '''"""noise-levels: the A-weighted sound level a noise monitoring station measures."""

from typing import Literal

from pydantic import Field

from smartcity.events.common import CityEvent, Location, Zone, measure
from smartcity.simulator.source import Source
from smartcity.streams import Stream


class NoiseLevelObserved(CityEvent):
    """The equivalent continuous sound level at one station over the interval before ``dateObserved``."""

    type: Literal["NoiseLevelObserved"] = "NoiseLevelObserved"
    stationId: str = Field(min_length=1, description="The station's own id")
    location: Location
    zone: Zone
    soundLevel: float = measure("Equivalent continuous sound level, A-weighted", "dB(A)", ge=0, le=194)


class NoiseSource(Source):
    """A noise meter beside each weather station: about 60 dB(A) by day, 45 at night."""

    topic = "noise-levels"
    every_s = 60

    def observe(self, now):
        hour = now.astimezone(self.city.timezone).hour
        base = 60.0 if 7 <= hour < 22 else 45.0
        return [NoiseLevelObserved(id=NoiseLevelObserved.make_id(f"at-{station.id}"), dateObserved=now,
                                   stationId=station.id, location=Location.at(station.lon, station.lat),
                                   zone=station.zone, soundLevel=round(base + self.rng.gauss(0, 2), 1))
                for station in self.city.weather_stations]


STREAM = Stream(
    topic="noise-levels",
    ce_type="city.noise.level.observed.v1",
    model=NoiseLevelObserved,
    key_field="id",
    description="Noise monitoring stations' sound levels",
    api_group="traffic",
    source=NoiseSource,
)
'''
READING = {"id": "nippes-1", "stationId": "NS-001", "dateObserved": "2026-03-02T08:00:00+01:00",
           "location": {"type": "Point", "coordinates": [6.9557, 50.9642]}, "soundLevel": 63.4}
ENTITY = "urn:ngsi-ld:NoiseLevelObserved:nippes-1"


@pytest.fixture
def noise_folder(tmp_path):
    folder = tmp_path / "streams"
    folder.mkdir()
    (folder / "noise_levels.py").write_text(NOISE_DESCRIPTOR)
    return folder


def run_flow(tmp_path, project, streams_dir) -> dict:
    env = {**os.environ, "SMARTCITY_STREAMS_DIR": str(streams_dir), "PYTHONPATH": str(project)}
    done = subprocess.run([sys.executable, "-m", "tests.stream_flow", str(tmp_path / "stack"), "noise-levels",
                           json.dumps(READING)], cwd=project, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_noise_stream_from_one_descriptor_flows_from_ingest_to_the_store_and_the_api(tmp_path, noise_folder):
    project = copy_project(tmp_path / "project")
    before = snapshot(project)
    result = run_flow(tmp_path, project, noise_folder)
    assert snapshot(project) == before  # no file of the project was edited: the descriptor is the whole change
    assert result["smartcity"].startswith(str(project))  # the copy's code ran
    assert "noise-levels" not in STREAMS  # this process has no such stream: only the flow's environment had it

    assert result["streams"][-1] == "noise-levels" and len(result["streams"]) == len(STREAMS) + 1
    assert "noise-levels" in result["platform_topics"]  # smartcity stack up and the demo create its topic
    assert result["anonymous"] == 401  # the generated ingest function asks for credentials as the others do
    status, accepted = result["accepted"]
    assert (status, accepted["accepted"]) == (202, 1), accepted
    status, refused = result["refused"]
    assert status == 422 and [e["field"] for e in refused["errors"]] == ["[0].soundLevel"], refused
    # the simulator ran the descriptor's source (smartcity simulate --streams noise-levels) for ten minutes
    simulated = result["simulated"]
    assert simulated >= 10 and simulated % 10 == 0, simulated  # each station once a minute
    assert result["records"] == 1 + simulated  # the refused reading never reached the topic
    # each store function reads the new topic (added to its stack entry) and stored every event
    assert result["stores"] == {"store-timeseries": [1, 1 + simulated, 0], "store-latest": [1, 1 + simulated, 0]}

    rows = {row["entity_id"]: row for row in result["rows"]}
    assert len(result["rows"]) == 1 + simulated
    row = rows[ENTITY]
    assert (row["station_id"], row["sound_level"], row["observed_at"]) == ("NS-001", 63.4, "2026-03-02T07:00:00+00:00")
    assert (row["lon"], row["lat"]) == (6.9557, 50.9642) and row["zone_id"]  # the zone from the location
    assert all(35 < row["sound_level"] < 75 for row in result["rows"])

    assert result["unauthorized"] == 401
    status, listing = result["listing"]
    stations = simulated // 10
    assert status == 200 and sorted(item["id"] for item in listing["items"]) == sorted(rows)[-1 - stations:], listing
    assert len(listing["items"]) == 1 + stations  # one latest state per station
    mine = next(item for item in listing["items"] if item["id"] == ENTITY)
    assert mine["soundLevel"] == 63.4 and mine["zone"] == row["zone_id"]
    assert result["one"] == [200, listing["items"][0]]
    assert result["missing"] == 404


def test_a_descriptor_that_repeats_a_topic_is_refused_naming_both_files(tmp_path, noise_folder):
    copy = (noise_folder / "noise_levels.py").read_text().replace('topic="noise-levels"', 'topic="weather"')
    (noise_folder / "noise_levels.py").write_text(copy)
    env = {**os.environ, "SMARTCITY_STREAMS_DIR": str(noise_folder)}
    done = subprocess.run([sys.executable, "-c", "from smartcity.events import STREAMS; len(STREAMS)"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "SMARTCITY_STREAMS_DIR: topic 'weather' is declared twice" in done.stderr
    assert "smartcity/streams/weather.py" in done.stderr and "noise_levels.py" in done.stderr
