"""``smartcity city build`` from each source (a GTFS feed alone, GeoJSON zones and segments, a SUMO network), its
refusals (exit 2 naming the file and field), ``city show``, and switching the configured city."""

from __future__ import annotations

import ast
import json
import logging
import subprocess
import sys
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from smartcity.city import DEFAULT_CITY_FILE, read_city
from smartcity.cli import app
from smartcity.errors import ConfigurationError
from smartcity.events import Location, city
from smartcity.simulator.simulation import CitySimulation, SimulatorOptions
from tests.city_samples import LINES, TIMEZONE, configured_city, montreal_feed, montreal_tables, write_feed

COLOGNE_POINT = (6.9557, 50.9642)


def build(*args: str):
    return CliRunner().invoke(app, ["city", "build", *map(str, args)])


def test_a_gtfs_feed_alone_makes_a_city_in_its_own_time_zone(tmp_path):
    feed = montreal_feed(tmp_path / "stm.zip")
    result = build("--from-gtfs", feed, "--out", tmp_path / "city" / "montreal.json", "--name", "Montréal")
    assert result.exit_code == 0, result.output
    built = read_city(tmp_path / "city" / "montreal.json")
    assert (built.name, built.timezone, len(built.zones)) == ("Montréal", TIMEZONE, 9)
    assert built.gtfs_file.resolve() == feed.resolve()  # named relative to the city file
    stops = {stop.id: stop for stop in built.transit.stops}
    assert set(stops) == {stop_id for line in LINES.values() for stop_id, *_ in line}
    for stop in stops.values():
        assert built.contains(stop.lon, stop.lat) and built.zone_of(stop.lon, stop.lat) == stop.zone
    assert {line.id: line.stops for line in built.transit.lines} == {
        route: [stop_id for stop_id, *_ in line] for route, line in LINES.items()}
    assert not built.contains(*COLOGNE_POINT) and built.segments == []
    shown = CliRunner().invoke(app, ["city", "show", "--file", str(tmp_path / "city" / "montreal.json")])
    assert shown.exit_code == 0 and "Montréal (America/Toronto), 9 zones, 0 road segments" in shown.output


def test_the_time_zone_comes_from_the_agency_unless_given(tmp_path):
    feed = montreal_feed(tmp_path / "stm.zip", timezone=None)
    result = build("--from-gtfs", feed, "--out", tmp_path / "c.json")
    assert result.exit_code == 2 and "agency.txt: agency_timezone: missing" in result.output
    assert build("--from-gtfs", feed, "--out", tmp_path / "c.json", "--timezone", "America/Montreal").exit_code == 0
    assert read_city(tmp_path / "c.json").timezone == "America/Montreal"
    result = build("--from-gtfs", montreal_feed(tmp_path / "bad.zip", "Mars/Olympus"), "--out", tmp_path / "d.json")
    assert result.exit_code == 2 and "agency_timezone: 'Mars/Olympus' is not a known IANA time zone" in result.output


def test_bad_gtfs_input_exits_2_naming_the_file_and_what_is_wrong(tmp_path):
    (tmp_path / "junk.zip").write_text("not a zip")
    result = build("--from-gtfs", tmp_path / "junk.zip", "--out", tmp_path / "c.json")
    assert result.exit_code == 2 and "junk.zip: not a readable zip" in result.output
    tables = montreal_tables()
    tables["stops.txt"] = [{k: v for k, v in row.items() if k != "stop_lon"} for row in tables["stops.txt"]]
    result = build("--from-gtfs", write_feed(tmp_path / "nolon.zip", tables), "--out", tmp_path / "c.json")
    assert result.exit_code == 2 and "nolon.zip: a row lacks the column 'stop_lon'" in result.output
    assert not (tmp_path / "c.json").exists()


def test_one_source_exactly(tmp_path):
    feed = montreal_feed(tmp_path / "stm.zip")
    assert "exactly one of" in build("--out", tmp_path / "c.json").output
    result = build("--from-gtfs", feed, "--from-geojson", tmp_path / "z.json", "--out", tmp_path / "c.json")
    assert result.exit_code == 2 and "got --from-gtfs, --from-geojson" in result.output
    result = build("--from-gtfs", feed, "--segments", tmp_path / "s.json", "--out", tmp_path / "c.json")
    assert result.exit_code == 2 and "--segments: only with --from-geojson" in result.output


def feature(geometry_type: str, coordinates, **properties) -> dict:
    return {"type": "Feature", "properties": properties, "geometry": {"type": geometry_type, "coordinates": coordinates}}


def collection(path, *features) -> str:
    path.write_text(json.dumps({"type": "FeatureCollection", "features": list(features)}))
    return str(path)


def square(west: float, south: float, size: float = 0.01) -> list:
    return [[[west, south], [west + size, south], [west + size, south + size], [west, south + size], [west, south]]]


def test_geojson_zones_and_segments_make_a_city_with_neighbours(tmp_path):
    zones = collection(tmp_path / "zones.geojson", feature("Polygon", square(-70.66, -33.46), name="Centro"),
                       feature("MultiPolygon", [square(-70.65, -33.46)], name="Providencia"))
    a, b, c = [-70.655, -33.455], [-70.65, -33.455], [-70.645, -33.455]
    segments = collection(tmp_path / "roads.geojson", feature("LineString", [a, b], id="ab", lanes=2, speed_kmh=50),
                          feature("LineString", [b, c], id="bc"), feature("LineString", [b, a], id="ba"))
    result = build("--from-geojson", zones, "--segments", segments, "--timezone", "America/Santiago",
                   "--out", tmp_path / "santiago.json")
    assert result.exit_code == 0, result.output
    built = read_city(tmp_path / "santiago.json")
    assert [(z.id, z.name) for z in built.zones] == [("Z01", "Centro"), ("Z02", "Providencia")]
    by_id = {segment.id: segment for segment in built.segments}
    assert (by_id["ab"].zone, by_id["bc"].zone, by_id["ab"].road_class) == ("Z01", "Z02", "arterial")
    assert by_id["ab"].downstream == ["bc"] and by_id["bc"].upstream == ["ab"]  # no U-turn onto "ba"
    assert 455 < by_id["ab"].length < 470 and built.zone_of(-70.6451, -33.4549) == "Z02"


def test_bad_geojson_exits_2_naming_the_file_and_field(tmp_path):
    good = collection(tmp_path / "zones.geojson", feature("Polygon", square(-70.66, -33.46)))
    result = build("--from-geojson", good, "--out", tmp_path / "c.json")
    assert result.exit_code == 2 and "--timezone: required with --from-geojson" in result.output
    bad = collection(tmp_path / "bad.geojson", feature("Polygon", square(-70.66, -33.46)), feature("Point", [0, 0]))
    result = build("--from-geojson", bad, "--timezone", "America/Santiago", "--out", tmp_path / "c.json")
    assert result.exit_code == 2 and "bad.geojson: features[1].geometry: expected a Polygon or MultiPolygon" in result.output
    (tmp_path / "notjson.geojson").write_text("{")
    result = build("--from-geojson", tmp_path / "notjson.geojson", "--timezone", "UTC", "--out", tmp_path / "c.json")
    assert result.exit_code == 2 and "notjson.geojson: not JSON" in result.output
    roads = collection(tmp_path / "roads.geojson", feature("LineString", [[-70.655, -33.455], [-70.654, -33.455]]))
    result = build("--from-geojson", good, "--segments", roads, "--timezone", "UTC", "--out", tmp_path / "c.json")
    assert result.exit_code == 2 and "roads.geojson: features[0].properties.id: missing" in result.output


def test_a_sumo_network_makes_the_bundled_district_again(tmp_path):
    from smartcity.simulator.sumo_network import SCENARIO, scenario_dir

    net = scenario_dir(SCENARIO) / f"{SCENARIO}.net.xml"
    assert build("--from-sumo", net, "--out", tmp_path / "c.json").exit_code == 2  # no time zone
    assert "no such SUMO network" in build("--from-sumo", tmp_path / "x.net.xml", "--timezone", "UTC",
                                           "--out", tmp_path / "c.json").output
    result = build("--from-sumo", net, "--timezone", "Europe/Berlin", "--out", tmp_path / "c.json")
    assert result.exit_code == 0, result.output
    built, bundled = read_city(tmp_path / "c.json"), read_city(DEFAULT_CITY_FILE)
    assert built.segments == bundled.segments and built.sites == bundled.sites and built.zones == bundled.zones
    assert built.network == bundled.network == "sumo_rl/nets/RESCO/cologne8/cologne8.net.xml"  # wherever installed
    assert built.gtfs_file == tmp_path / "c-gtfs.zip" and built.gtfs_file.read_bytes() == bundled.gtfs_file.read_bytes()


def test_a_broken_city_file_names_its_fields(tmp_path):
    data = json.loads(DEFAULT_CITY_FILE.read_text())
    data["timezone"], data["zones"][0]["id"] = "Nowhere/City", "zone one"
    (tmp_path / "broken.json").write_text(json.dumps(data))
    result = CliRunner().invoke(app, ["city", "show", "--file", str(tmp_path / "broken.json")])
    assert result.exit_code == 2
    assert "timezone: Value error, unknown time zone 'Nowhere/City'" in result.output and "zones.0.id" in result.output


def test_the_configured_city_switches_and_comes_back(tmp_path):
    feed = montreal_feed(tmp_path / "stm.zip")
    assert build("--from-gtfs", feed, "--out", tmp_path / "montreal.json").exit_code == 0
    with configured_city(tmp_path / "montreal.json"):
        assert city().timezone == TIMEZONE
        assert Location.at(-73.5725, 45.4990).lon == -73.5725
        with pytest.raises(ValidationError, match="outside the city stm"):
            Location.at(*COLOGNE_POINT)
    assert city().timezone == "Europe/Berlin" and Location.at(*COLOGNE_POINT)


def test_a_city_without_a_road_network_simulates_buses_and_says_why_not_traffic(tmp_path, caplog):
    assert build("--from-gtfs", montreal_feed(tmp_path / "stm.zip"), "--out", tmp_path / "montreal.json").exit_code == 0
    start = datetime(2026, 3, 2, 7, 58, tzinfo=ZoneInfo(TIMEZONE))
    with configured_city(tmp_path / "montreal.json"):
        with pytest.raises(ConfigurationError, match="--streams: the city stm has no road network .* traffic-sensors"):
            CitySimulation(SimulatorOptions(start=start, streams=("traffic-sensors", "public-transport")))
        with caplog.at_level(logging.WARNING), CitySimulation(SimulatorOptions(start=start, duration_s=120)) as run:
            ticks = list(run.ticks())
    assert "simulating without them" in caplog.text and run.traffic is None
    topics = {stream.topic for tick in ticks for stream, _ in tick.events}
    assert "public-transport" in topics and not topics & {"traffic-sensors", "taxi-vtc", "incidents", "air-quality"}
    buses = [e for tick in ticks for stream, events in tick.events if stream.topic == "public-transport" for e in events]
    assert buses and all(e.zone in {f"Z{r}{c}" for r in (1, 2, 3) for c in (1, 2, 3)} for e in buses)
    assert {e.routeId for e in buses} == set(LINES) and start + timedelta(seconds=120) >= buses[-1].dateObserved


def test_the_city_package_is_the_bottom_layer():
    probe = ("import sys, smartcity.city, smartcity.city.from_gtfs, smartcity.city.from_geojson; "
             "print(sorted({m.split('.')[1] for m in sys.modules if m.startswith('smartcity.')}))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not {"simulator", "api", "storage", "events"} & set(ast.literal_eval(result.stdout.strip())), result.stdout


def test_history_of_a_city_without_a_road_network_is_refused(tmp_path):
    assert build("--from-gtfs", montreal_feed(tmp_path / "stm.zip"), "--out", tmp_path / "montreal.json").exit_code == 0
    with configured_city(tmp_path / "montreal.json"):
        result = CliRunner().invoke(app, ["history", "generate", "--days", "1"])
    assert result.exit_code == 2 and "the city stm has no road network" in result.output


def test_history_of_roads_without_loop_sites_says_what_is_missing(tmp_path):
    zones = collection(tmp_path / "zones.geojson", feature("Polygon", square(-70.66, -33.46), name="Centro"))
    roads = collection(tmp_path / "roads.geojson", feature("LineString", [[-70.655, -33.455], [-70.65, -33.455]], id="ab"))
    result = build("--from-geojson", zones, "--segments", roads, "--timezone", "America/Santiago",
                   "--out", tmp_path / "santiago.json")
    assert result.exit_code == 0, result.output
    with configured_city(tmp_path / "santiago.json"):
        result = CliRunner().invoke(app, ["history", "generate", "--days", "1"])
    assert result.exit_code == 2 and "no traffic loop sites (sites.traffic_loops)" in result.output, result.output


def test_a_city_without_a_transit_feed_simulates_the_rest_and_says_why_not_buses(tmp_path, caplog):
    zones = collection(tmp_path / "zones.geojson", feature("Polygon", square(-70.66, -33.46), name="Centro"))
    assert build("--from-geojson", zones, "--timezone", "America/Santiago", "--out", tmp_path / "santiago.json",
                 ).exit_code == 0
    start = datetime(2026, 3, 2, 7, 58, tzinfo=ZoneInfo("America/Santiago"))
    with configured_city(tmp_path / "santiago.json"):
        with pytest.raises(ConfigurationError, match="--streams: the city .* has no transit feed .* public-transport"):
            CitySimulation(SimulatorOptions(start=start, streams=("public-transport", "weather")))
        with caplog.at_level(logging.WARNING), CitySimulation(SimulatorOptions(start=start, duration_s=60)) as run:
            list(run.ticks())
    assert "has no transit feed" in caplog.text and "public-transport need it; simulating without them" in caplog.text
    assert run.options.streams == ("parking", "bike-share", "weather")  # their sites: none in these GeoJSON zones
