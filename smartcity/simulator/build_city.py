"""Derive a city from a SUMO network: ``smartcity city build --from-sumo NET`` (``python -m
smartcity.simulator.build_city`` rebuilds the bundled Cologne district).

Makes the city definition (:mod:`smartcity.city`: bounding box, zone grid, road segments with their lines and
neighbours, car parks, bike stations, weather and air-quality stations, transit stops and lines) and a GTFS zip
(bus lines along the network's main roads, with stops, shapes and a weekday/weekend timetable). The output is
deterministic: running it again gives the same files, which a test checks. Places are chosen with a fixed seed;
their names and capacities are made up, their positions lie on the real network.
"""

from __future__ import annotations

import csv
import io
import math
import os
import random
import xml.etree.ElementTree as ElementTree
import zipfile
from pathlib import Path
from types import ModuleType

from smartcity.city import CityDefinition, CityFileError, metres, road_class, save_city
from smartcity.city.files import DEFAULT_CITY_FILE
from smartcity.city.gtfs import load_feed
from smartcity.city.grid import grid_zones
from smartcity.city.model import Boundary, Sites, TrafficLoop, Transit, ZoneGrid
from smartcity.city.transit import transit_of
from smartcity.simulator.city import GTFS_FILE
from smartcity.simulator.network import topology
from smartcity.simulator.sumo_network import SCENARIO, allows_cars, loop_lanes, network, resco_network, scenario_dir

NAME = "Cologne (Nippes, RESCO cologne8 network)"
PLACE = "Nippes"  # the bundled district, in its places' names; another network's city gives its own name
TIMEZONE = "Europe/Berlin"
MARGIN_M = 150
ZONE_ROWS = ZONE_COLS = 3
STOP_SPACING_M = 300
SEED = 2026
FIXED_ZIP_TIME = (2026, 1, 1, 0, 0, 0)


def main() -> None:
    write(None, DEFAULT_CITY_FILE, NAME, TIMEZONE)


def write(net_file: Path | None, out: Path, name: str, timezone: str) -> CityDefinition:
    """Build the city of ``net_file`` (default: the bundled scenario) into ``out`` and its GTFS zip beside it."""
    gtfs = GTFS_FILE if net_file is None else out.with_name(f"{out.stem}-gtfs.zip")
    source = None if net_file is None else _network_name(Path(net_file), Path(out))
    city, feed = build(net_file, name, timezone, gtfs.name, source)
    save_city(city, out)
    if not feed:
        print(f"wrote {out} (no bus line fits the network: no GTFS feed)")
        return city
    gtfs.write_bytes(feed)
    print(f"wrote {out} and {gtfs} ({len(feed)} bytes)")
    return city


def build(net_file: Path | None = None, name: str = NAME, timezone: str = TIMEZONE,
          gtfs_name: str = GTFS_FILE.name, source: str | None = None) -> tuple[CityDefinition, bytes]:
    """The city definition and its GTFS zip (empty when no bus line fits the network), derived from a SUMO network
    (default: the bundled scenario's); ``source`` is how the city file names the network (default: ``net_file``)."""
    source = source or (resco_network(SCENARIO) if net_file is None else str(net_file))
    net_file = net_file or scenario_dir(SCENARIO) / f"{SCENARIO}.net.xml"
    _check_geo_referenced(net_file)
    with network(net_file) as traci:
        extent = _extent(traci, name, timezone)
        segments = _segments(traci, net_file, extent)
        loops = _traffic_loops(traci, net_file, extent)
        lines = _bus_lines(traci, segments)
        shapes = {line: _shape(traci, edges) for line, edges in lines.items()}
        stops = {line: _stops(traci, edges, extent) for line, edges in lines.items()}
    rng = random.Random(SEED)
    place = PLACE if source == resco_network(SCENARIO) else name
    feed = _gtfs_zip(lines, shapes, stops, timezone, place) if lines else b""
    sites = Sites(
        traffic_loops=loops,
        car_parks=_car_parks(segments, rng),
        bike_stations=_bike_stations(segments),
        weather_stations=[_station(segments, "W1", f"Weather station {place}", "weather", main_road=False)],
        air_quality_stations=[
            _station(segments, "AQ1", f"Air quality {place} (traffic)", "traffic", main_road=True),
            _station(segments, "AQ2", f"Air quality {place} (urban background)", "background", main_road=False),
        ],
    )
    transit = transit_of(load_feed(io.BytesIO(feed)), extent.zone_of, gtfs_name) if feed else Transit()
    city = CityDefinition(**{**extent.model_dump(), "network": source, "segments": segments, "sites": sites,
                             "transit": transit})
    return city, feed


def _check_geo_referenced(net_file: Path) -> None:
    """CityFileError unless the network has a projection (its ``<location projParameter>``): without one SUMO's
    coordinates are metres, not longitudes and latitudes."""
    for _, element in ElementTree.iterparse(net_file):
        if element.tag == "location":
            if element.get("projParameter", "!") != "!":
                return
            break
    raise CityFileError(f"{net_file}: location.projParameter: the network is not geo-referenced; "
                        "convert it with netconvert --proj.utm (or --proj)")


def _network_name(net_file: Path, out: Path) -> str:
    """How the city file names its network: the bundled scenario's by its sumo-rl name (wherever that is
    installed), another relative to the city file (as its feed is: keep them together)."""
    if net_file.resolve() == (scenario_dir(SCENARIO) / f"{SCENARIO}.net.xml").resolve():
        return resco_network(SCENARIO)
    return os.path.relpath(net_file.resolve(), out.resolve().parent)


# --- the city -------------------------------------------------------------------------------------------------


def _extent(traci: ModuleType, name: str, timezone: str) -> CityDefinition:
    """The network's box with a margin, cut into the zone grid: the city before its segments and places."""
    (xmin, ymin), (xmax, ymax) = traci.simulation.getNetBoundary()
    west, south = traci.simulation.convertGeo(xmin - MARGIN_M, ymin - MARGIN_M)
    east, north = traci.simulation.convertGeo(xmax + MARGIN_M, ymax + MARGIN_M)
    box = Boundary(west=round(west, 6), south=round(south, 6), east=round(east, 6), north=round(north, 6))
    return CityDefinition(name=name, timezone=timezone, boundary=box, grid=ZoneGrid(rows=ZONE_ROWS, cols=ZONE_COLS),
                          zones=grid_zones(box, ZONE_ROWS, ZONE_COLS))


def _segments(traci: ModuleType, net_file: Path, extent: CityDefinition) -> list[dict]:
    joins = topology(net_file)
    segments = []
    for edge in ElementTree.parse(net_file).getroot().iter("edge"):
        lanes = list(edge.iter("lane"))
        if edge.get("function") or not any(allows_cars(lane) for lane in lanes):
            continue
        length, speed, priority = float(lanes[0].get("length")), float(lanes[0].get("speed")), int(edge.get("priority", "0"))
        lon, lat = traci.simulation.convert2D(edge.get("id"), length / 2, 0, toGeo=True)
        segments.append({
            "id": edge.get("id"), "lon": round(lon, 7), "lat": round(lat, 7), "zone": extent.zone_of(lon, lat),
            "length": length, "speed": speed, "lanes": len(lanes), "priority": priority,
            "geometry": [_geo(traci, x, y) for x, y in traci.lane.getShape(f"{edge.get('id')}_0")],
            "road_class": road_class(priority, len(lanes), speed),
            "upstream": joins.get(edge.get("id"), {}).get("upstream", []),
            "downstream": joins.get(edge.get("id"), {}).get("downstream", []),
        })
    return sorted(segments, key=lambda s: s["id"])


def _traffic_loops(traci: ModuleType, net_file: Path, extent: CityDefinition) -> list[TrafficLoop]:
    """An induction loop in the middle of every car lane of at least 30 m (:func:`loop_lanes`), main roads first:
    the live simulation's loops, placed with SUMO's own geo conversion."""
    loops = []
    for lane, edge, index, length, _ in loop_lanes(net_file):
        lon, lat = traci.simulation.convert2D(edge, length / 2, index, toGeo=True)
        loops.append(TrafficLoop(id=f"loop.{lane}", lane=lane, edge=edge, lane_index=index,
                                 position=round(length / 2, 2), lon=round(lon, 7), lat=round(lat, 7),
                                 zone=extent.zone_of(lon, lat)))
    return loops


def _geo(traci: ModuleType, x: float, y: float) -> tuple[float, float]:
    lon, lat = traci.simulation.convertGeo(x, y)
    return round(lon, 7), round(lat, 7)


def _place(segment: dict, place_id: str, name: str, capacity: int = 0, kind: str = "") -> dict:
    return {"id": place_id, "name": name, "lon": segment["lon"], "lat": segment["lat"], "zone": segment["zone"],
            "edge": segment["id"], "capacity": capacity, "kind": kind}


def _car_parks(segments: list[dict], rng: random.Random) -> list[dict]:
    """One car park per zone that has a local street, with a capacity of 120 to 450 spots."""
    parks = []
    for zone in sorted({s["zone"] for s in segments}):
        local = [s for s in segments if s["zone"] == zone and s["priority"] <= 7 and s["length"] >= 40]
        if local:
            number = len(parks) + 1
            parks.append(_place(rng.choice(local), f"P{number}", f"Car park P{number} ({zone})",
                                rng.choice([120, 180, 250, 320, 450]), "offStreet"))
    return parks


def _bike_stations(segments: list[dict], count: int = 12) -> list[dict]:
    """Stations spread over the city: each next one on the street farthest from those already chosen."""
    streets = [s for s in segments if s["length"] >= 30]
    centre_lon = sum(s["lon"] for s in streets) / len(streets)
    centre_lat = sum(s["lat"] for s in streets) / len(streets)
    chosen = [min(streets, key=lambda s: metres(s["lon"], s["lat"], centre_lon, centre_lat))]
    while len(chosen) < count:
        chosen.append(max(streets, key=lambda s: min(metres(s["lon"], s["lat"], c["lon"], c["lat"]) for c in chosen)))
    return [_place(s, f"B{n:02}", f"Bike station B{n:02} ({s['zone']})", 12 + 4 * (n % 4), "dockingStation")
            for n, s in enumerate(chosen, 1)]


def _station(segments: list[dict], place_id: str, name: str, kind: str, main_road: bool) -> dict:
    """A station near the city's centre, beside a main road or on a quiet street."""
    centre_lon = sum(s["lon"] for s in segments) / len(segments)
    centre_lat = sum(s["lat"] for s in segments) / len(segments)
    fits = [s for s in segments if (s["priority"] >= 9) == main_road]
    return _place(min(fits, key=lambda s: metres(s["lon"], s["lat"], centre_lon, centre_lat)), place_id, name,
                  kind=kind)


# --- the bus lines ----------------------------------------------------------------------------------------------


def _bus_lines(traci: ModuleType, segments: list[dict], count: int = 3) -> dict[str, list[str]]:
    """The longest two-way, fairly straight routes between main roads that overlap little.

    Returns ``"<line>.<direction>"`` -> edges.
    """
    main = [s for s in segments if s["priority"] >= 6]
    ids = {s["id"] for s in segments}
    candidates = []
    for origin in main:
        for destination in main:
            if origin["zone"] == destination["zone"] or not {_opposite(origin["id"]), _opposite(destination["id"])} <= ids:
                continue
            there = traci.simulation.findRoute(origin["id"], destination["id"])
            back = traci.simulation.findRoute(_opposite(destination["id"]), _opposite(origin["id"]))
            straight = metres(origin["lon"], origin["lat"], destination["lon"], destination["lat"]) > there.length / 2
            if there.edges and back.edges and straight:
                candidates.append((there.length + back.length, list(there.edges), list(back.edges)))
    lines: dict[str, list[str]] = {}
    used: set[str] = set()
    for _, there, back in sorted(candidates, key=lambda c: (-c[0], c[1])):
        if len(lines) == 2 * count:
            break
        if len(set(there + back) & used) > len(there + back) / 3:
            continue
        number = len(lines) // 2 + 1
        lines[f"{number}.0"], lines[f"{number}.1"] = there, back
        used.update(there + back)
    return lines


def _opposite(edge: str) -> str:
    return edge[1:] if edge.startswith("-") else f"-{edge}"


def _shape(traci: ModuleType, edges: list[str], step_m: float = 25.0) -> list[tuple[float, float, float]]:
    """(lon, lat, distance from the start in m) every ``step_m`` along the route's rightmost lanes."""
    points, travelled = [], 0.0
    for edge in edges:
        length = traci.lane.getLength(f"{edge}_0")
        for i in range(max(1, math.ceil(length / step_m)) + 1):
            position = min(i * step_m, length)
            lon, lat = traci.simulation.convert2D(edge, position, 0, toGeo=True)
            points.append((round(lon, 7), round(lat, 7), round(travelled + position, 1)))
        travelled += length
    return points


def _stops(traci: ModuleType, edges: list[str], extent: CityDefinition) -> list[dict]:
    """A stop every ``STOP_SPACING_M`` metres along the route, first and last near its ends."""
    stops, travelled, next_at = [], 0.0, 10.0
    for edge in edges:
        length = traci.lane.getLength(f"{edge}_0")
        while next_at <= travelled + length - 5:
            position = max(5.0, next_at - travelled)
            lon, lat = traci.simulation.convert2D(edge, position, 0, toGeo=True)
            stops.append({"edge": edge, "lon": round(lon, 7), "lat": round(lat, 7), "distance": round(next_at, 1),
                          "zone": extent.zone_of(lon, lat)})
            next_at += STOP_SPACING_M
        travelled += length
    last_lon, last_lat = traci.simulation.convert2D(edges[-1], traci.lane.getLength(f"{edges[-1]}_0") - 5, 0,
                                                    toGeo=True)
    if travelled - 5 - stops[-1]["distance"] > 100:
        stops.append({"edge": edges[-1], "lon": round(last_lon, 7), "lat": round(last_lat, 7),
                      "distance": round(travelled - 5, 1), "zone": extent.zone_of(last_lon, last_lat)})
    return stops


def _gtfs_zip(lines: dict[str, list[str]], shapes: dict, stops: dict, timezone: str, place: str) -> bytes:
    tables: dict[str, list[dict]] = {
        "agency.txt": [{"agency_id": "SIM", "agency_name": "Smart-city simulated buses",
                        "agency_url": "https://smartcity.invalid/transit", "agency_timezone": timezone}],
        "calendar.txt": [
            {"service_id": "WD", "monday": 1, "tuesday": 1, "wednesday": 1, "thursday": 1, "friday": 1,
             "saturday": 0, "sunday": 0, "start_date": "20240101", "end_date": "20301231"},
            {"service_id": "WE", "monday": 0, "tuesday": 0, "wednesday": 0, "thursday": 0, "friday": 0,
             "saturday": 1, "sunday": 1, "start_date": "20240101", "end_date": "20301231"},
        ],
        "routes.txt": [], "stops.txt": [], "shapes.txt": [], "trips.txt": [], "stop_times.txt": [],
    }
    for line in sorted({name.split(".")[0] for name in lines}):
        tables["routes.txt"].append({"route_id": f"L{line}", "agency_id": "SIM", "route_short_name": f"N{line}",
                                     "route_long_name": f"{place} line {line}", "route_type": 3})
    for name, edges in lines.items():
        line, direction = name.split(".")
        shape_id = f"L{line}.{direction}"
        tables["shapes.txt"] += [{"shape_id": shape_id, "shape_pt_lat": lat, "shape_pt_lon": lon,
                                  "shape_pt_sequence": i, "shape_dist_traveled": d}
                                 for i, (lon, lat, d) in enumerate(shapes[name])]
        stop_ids = []
        for n, stop in enumerate(stops[name], 1):
            stop_id = f"L{line}.{direction}.{n:02}"
            stop_ids.append(stop_id)
            tables["stops.txt"].append({"stop_id": stop_id, "stop_name": f"N{line} stop {n} ({stop['zone']})",
                                        "stop_lat": stop["lat"], "stop_lon": stop["lon"]})
        offsets = _running_times(stops[name])
        for service, headways in (("WD", _WEEKDAY_HEADWAYS), ("WE", _WEEKEND_HEADWAYS)):
            for start in _departures(headways):
                trip_id = f"L{line}.{direction}.{service}.{start // 3600:02}{start % 3600 // 60:02}"
                tables["trips.txt"].append({"route_id": f"L{line}", "service_id": service, "trip_id": trip_id,
                                            "direction_id": direction, "shape_id": shape_id})
                for seq, (stop_id, stop, (arrive, leave)) in enumerate(zip(stop_ids, stops[name], offsets), 1):
                    tables["stop_times.txt"].append({
                        "trip_id": trip_id, "arrival_time": _hms(start + arrive), "departure_time": _hms(start + leave),
                        "stop_id": stop_id, "stop_sequence": seq, "shape_dist_traveled": stop["distance"]})
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for filename, rows in tables.items():
            text = io.StringIO()
            writer = csv.DictWriter(text, fieldnames=list(rows[0]), lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
            archive.writestr(zipfile.ZipInfo(filename, FIXED_ZIP_TIME), text.getvalue(),
                             compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


# (from hour, to hour, minutes between buses)
_WEEKDAY_HEADWAYS = ((5, 6, 20), (6, 20, 10), (20, 24, 20))
_WEEKEND_HEADWAYS = ((6, 24, 20),)
DWELL_S = 20


def _departures(headways: tuple[tuple[int, int, int], ...]) -> list[int]:
    return [minute * 60 for start, end, every in headways for minute in range(start * 60, end * 60, every)]


def _running_times(stops: list[dict]) -> list[tuple[int, int]]:
    """(arrival, departure) seconds after the trip's start at each stop: 28 km/h average between stops."""
    times, clock = [], 0
    for i, stop in enumerate(stops):
        if i:
            clock += round((stop["distance"] - stops[i - 1]["distance"]) / (28 / 3.6))
        times.append((clock, clock if i in (0, len(stops) - 1) else clock + DWELL_S))
        clock = times[-1][1]
    return times


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02}:{seconds % 3600 // 60:02}:{seconds % 60:02}"


if __name__ == "__main__":
    main()
