"""Any city on its own SUMO network (issue 15): a small street grid in Montréal (made here with netconvert from
lon/lat nodes, projected to UTM) is built into a city file with ``smartcity city build --from-sumo`` in
America/Toronto. Its traffic loop sites lie on its streets inside its boundary; ``smartcity simulate`` runs SUMO
traffic on that network (random trips made once by SUMO's randomTrips.py, cached by the network's hash) onto the
file bus, and its readings carry that city's loop ids and places and pass the stream's validation for that city;
``smartcity history generate`` writes its loops' history. The default city is back after each test.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from smartcity.backends.bus import open_bus
from smartcity.backends.database import open_database
from smartcity.city import read_city
from smartcity.cli import app
from smartcity.events import STREAMS, city
from smartcity.events.common import ngsi_id
from smartcity.simulator.sumo import TrafficSimulation
from smartcity.storage.reference import city_rows
from tests.city_samples import configured_city
from tests.storage_samples import drain, embedded_settings

sumo = pytest.importorskip("sumo", reason="the simulator extra (eclipse-sumo) runs SUMO's tools")

TIMEZONE = "America/Toronto"
WEST, SOUTH, STEP_LON, STEP_LAT, SIZE = -73.575, 45.495, 0.0026, 0.0018, 4  # a 4 x 4 grid, ~200 m blocks
COLOGNE = (6.9557, 50.9642)


def grid_network(folder: Path) -> Path:
    """A two-way street grid in Montréal: one east-west and one north-south main road (2 lanes, 60 km/h,
    priority 9), the rest 1-lane 50 km/h streets; the opposite direction of edge ``X`` is ``-X`` (as netconvert
    names OSM's)."""
    nodes = [f'<node id="n{r}{c}" x="{WEST + c * STEP_LON:.6f}" y="{SOUTH + r * STEP_LAT:.6f}" '
             f'type="{"traffic_light" if (r, c) == (1, 2) else "priority"}"/>'
             for r in range(SIZE) for c in range(SIZE)]
    edges = []
    for r in range(SIZE):
        for c in range(SIZE):
            for r2, c2 in ((r, c + 1), (r + 1, c)):
                if r2 < SIZE and c2 < SIZE:
                    main = (r == r2 == 1) or (c == c2 == 2)
                    for sign, (a, b) in (("", (f"{r}{c}", f"{r2}{c2}")), ("-", (f"{r2}{c2}", f"{r}{c}"))):
                        edges.append(f'<edge id="{sign}e{r}{c}_{r2}{c2}" from="n{a}" to="n{b}" numLanes='
                                     f'"{2 if main else 1}" speed="{16.67 if main else 13.89}" '
                                     f'priority="{9 if main else 5}"/>')
    (folder / "grid.nod.xml").write_text("<nodes>\n" + "\n".join(nodes) + "\n</nodes>\n")
    (folder / "grid.edg.xml").write_text("<edges>\n" + "\n".join(edges) + "\n</edges>\n")
    net = folder / "montreal.net.xml"
    done = subprocess.run([str(Path(sumo.SUMO_HOME) / "bin" / "netconvert"), "-n", str(folder / "grid.nod.xml"),
                           "-e", str(folder / "grid.edg.xml"), "--proj.utm", "-o", str(net)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return net


@pytest.fixture(scope="module")
def montreal(tmp_path_factory) -> Path:
    """The grid's city file (its network in the folder above it: the city file names it relative to itself)."""
    folder = tmp_path_factory.mktemp("foreign-network")
    net = grid_network(folder)
    out = folder / "city" / "montreal.json"
    result = CliRunner().invoke(app, ["city", "build", "--from-sumo", str(net), "--timezone", TIMEZONE,
                                      "--out", str(out), "--name", "Montréal grid"])
    assert result.exit_code == 0, result.output
    return out


def test_the_city_build_places_loop_sites_on_its_streets_inside_its_boundary(montreal):
    built = read_city(montreal)
    assert (built.name, built.timezone, built.network) == ("Montréal grid", TIMEZONE, "../montreal.net.xml")
    assert built.network_file.resolve() == (montreal.parent.parent / "montreal.net.xml").resolve()
    assert not built.contains(*COLOGNE)
    segments = {segment.id: segment for segment in built.segments}
    loops = built.sites.traffic_loops
    # every lane of 30 m or more (all of them here: ~200 m blocks), the faster main roads (2 lanes) first
    assert len(loops) == sum(segment.lanes for segment in segments.values())
    assert [loop.lane_index for loop in loops[:4]] == [0, 1, 0, 1] and segments[loops[0].edge].lanes == 2
    for loop in loops:
        assert loop.id == f"loop.{loop.lane}" and loop.lane == f"{loop.edge}_{loop.lane_index}"
        assert built.contains(loop.lon, loop.lat) and built.zone_of(loop.lon, loop.lat) == loop.zone
        assert loop.position == pytest.approx(segments[loop.edge].length / 2, abs=1)
    assert len({loop.zone for loop in loops}) >= 5
    sensors = city_rows(built)["sensors"]  # what db load-reference writes
    assert [row["sensor_id"] for row in sensors] == [ngsi_id("TrafficFlowObserved", loop.id) for loop in loops]
    assert built.transit.lines and built.gtfs_file.is_file()  # buses along its main roads
    assert built.sites.weather_stations[0].name == "Weather station Montréal grid"  # not the bundled district's


def test_the_live_simulator_runs_traffic_on_the_citys_own_network(montreal, tmp_path, monkeypatch):
    settings = embedded_settings(tmp_path / "stack")
    monkeypatch.setenv("SMARTCITY_BUS_URL", settings.bus_url)
    monkeypatch.setenv("SMARTCITY_SECRETS_DIR", str(settings.secrets_dir))
    built, cache = read_city(montreal), montreal.parent.parent / "sumo-demand"
    with configured_city(montreal):
        result = CliRunner().invoke(app, [
            "simulate", "--speed", "0", "--start", "2026-03-02T07:58:00-0500", "--duration", "3m", "--seed", "2",
            "--streams", "traffic-sensors,taxi-vtc,public-transport"])
        assert result.exit_code == 0, result.output
        trips = list(cache.glob("*.trips.xml"))
        assert len(trips) == 1  # randomTrips' output, named by the network's hash
        bus = open_bus(settings.bus_url)
        try:
            readings = [orjson.loads(record.value) for record in drain(bus, "traffic-sensors")]
            taxis = [orjson.loads(record.value) for record in drain(bus, "taxi-vtc")]
        finally:
            bus.close()
        model = STREAMS["traffic-sensors"].model
        events = [model.model_validate(reading) for reading in readings]  # the city's boundary and zones
        assert city().name == "Montréal grid"
    loops = {ngsi_id("TrafficFlowObserved", loop.id): loop for loop in built.sites.traffic_loops}
    assert len(events) == 36 * len(loops) and {event.id for event in events} == set(loops)
    for event in events:
        loop = loops[event.id]
        assert tuple(event.location.coordinates) == pytest.approx((loop.lon, loop.lat))
        assert event.zone == loop.zone and event.refRoadSegment == ngsi_id("RoadSegment", loop.edge)
    assert sum(event.intensity for event in events) > 200, "no traffic on the grid's loops at the morning peak"
    assert taxis and all(built.contains(*taxi["location"]["coordinates"]) for taxi in taxis)
    made = trips[0].stat().st_mtime_ns
    with TrafficSimulation(5, 8 * 3600, detector_lanes=2, city=built) as again:  # a second run reads the cache
        assert again.demand.routes and len(again.detectors) == 2
    assert [path.stat().st_mtime_ns for path in cache.glob("*.trips.xml")] == [made]


def test_history_generates_the_loops_of_the_citys_network(montreal, tmp_path, monkeypatch):
    database_url = f"sqlite:///{tmp_path / 'history.db'}"
    monkeypatch.setenv("SMARTCITY_DATABASE_URL", database_url)
    monkeypatch.setenv("SMARTCITY_SECRETS_DIR", str(tmp_path / "secrets"))
    with configured_city(montreal):
        result = CliRunner().invoke(app, ["history", "generate", "--days", "1", "--end", "2026-03-03T00:00:00-05:00"])
    assert result.exit_code == 0, result.output
    db = open_database(database_url)
    try:
        sensors = db.query("SELECT sensor_id, lon, lat FROM sensors")
        windows = db.query("SELECT count(DISTINCT sensor_id) AS n FROM traffic_sensor_5min")[0]["n"]
    finally:
        db.close()
    built = read_city(montreal)
    assert {row["sensor_id"] for row in sensors} == {ngsi_id("TrafficFlowObserved", loop.id)
                                                     for loop in built.sites.traffic_loops}
    assert all(built.contains(row["lon"], row["lat"]) for row in sensors) and windows == len(sensors)



def test_a_network_without_a_projection_is_refused_naming_the_field(tmp_path):
    net = tmp_path / "plain.net.xml"  # SUMO's own grid: metres, no geo-reference
    done = subprocess.run([str(Path(sumo.SUMO_HOME) / "bin" / "netgenerate"), "--grid", "--grid.number", "3",
                           "-o", str(net)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    result = CliRunner().invoke(app, ["city", "build", "--from-sumo", str(net), "--timezone", "UTC",
                                      "--out", str(tmp_path / "plain.json")])
    assert result.exit_code == 2 and "location.projParameter: the network is not geo-referenced" in result.output
    assert not (tmp_path / "plain.json").exists()
