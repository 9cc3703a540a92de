"""Reference data: the city's zones, road segments, car parks, stations, bus routes and stops, as table rows.

They come from the simulated city's description (``smartcity/simulator/data/city.json``) and its GTFS feed;
:func:`load_reference` upserts them (``smartcity db load-reference``), so loading twice changes nothing. Sensors
are not in the description (the simulator places its loops when it starts): :func:`sensor_rows` derives them from
the traffic events themselves, and the time-series store function adds each new one as it first reports.
Ids are the ones events carry (see ``0001_reference_tables.sql``).
"""

from __future__ import annotations

import csv
import io
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from smartcity.backends.database import Database
from smartcity.events import (
    AirQualityObserved,
    BikeHireDockingStation,
    OffStreetParking,
    TrafficFlowObserved,
    WeatherObserved,
    city,
    ngsi_id,
)
from smartcity.simulator.city import GTFS_FILE, CityModel, Place, load_city

PRIMARY_KEYS = {
    "zones": "zone_id",
    "road_segments": "segment_id",
    "sensors": "sensor_id",
    "routes": "route_id",
    "stops": "stop_id",
    "stations": "station_id",
    "parkings": "parking_id",
}
GTFS_ROUTE_TYPES = {"0": "tram", "3": "bus"}


def segment_id(edge: str) -> str:
    return ngsi_id("RoadSegment", edge)


def zone_rows() -> list[dict[str, Any]]:
    box = city()
    height, width = (box.north - box.south) / box.zone_rows, (box.east - box.west) / box.zone_cols
    return [
        {"zone_id": f"Z{row}{col}", "row_number": row, "col_number": col,
         "west": box.west + (col - 1) * width, "east": box.west + col * width,
         "south": box.south + (row - 1) * height, "north": box.south + row * height}
        for row in range(1, box.zone_rows + 1) for col in range(1, box.zone_cols + 1)
    ]


def _station(place: Place, kind: str, station_id: str) -> dict[str, Any]:
    return {"station_id": station_id, "kind": kind, "name": place.name, "zone_id": place.zone,
            "capacity": place.capacity or None, "lon": place.lon, "lat": place.lat}


def city_rows(model: CityModel) -> dict[str, list[dict[str, Any]]]:
    """The rows of the tables the city description fills."""
    stations = (
        [_station(p, "bike-share", BikeHireDockingStation.make_id(p.id)) for p in model.bike_stations]
        + [_station(p, "weather", WeatherObserved.make_id(p.id)) for p in model.weather_stations]
        + [_station(p, "air-quality", AirQualityObserved.make_id(p.id)) for p in model.air_stations]
    )
    return {
        "zones": zone_rows(),
        "road_segments": [
            {"segment_id": segment_id(s.id), "name": None, "zone_id": s.zone, "lanes": s.lanes,
             "length_m": s.length, "speed_limit_kmh": round(s.speed * 3.6, 2), "lon": s.lon, "lat": s.lat}
            for s in model.segments.values()
        ],
        "stations": stations,
        "parkings": [
            {"parking_id": OffStreetParking.make_id(p.id), "name": p.name, "zone_id": p.zone,
             "segment_id": segment_id(p.edge), "capacity": p.capacity, "lon": p.lon, "lat": p.lat}
            for p in model.car_parks
        ],
    }


def gtfs_rows(feed: Path) -> dict[str, list[dict[str, Any]]]:
    """Routes and stops of a GTFS feed (zip)."""
    with zipfile.ZipFile(feed) as archive:
        def table(name: str) -> list[dict[str, str]]:
            return list(csv.DictReader(io.TextIOWrapper(archive.open(name), encoding="utf-8-sig")))

        routes, stops = table("routes.txt"), table("stops.txt")
    box = city()
    return {
        "routes": [
            {"route_id": r["route_id"], "short_name": r["route_short_name"], "long_name": r.get("route_long_name"),
             "route_type": GTFS_ROUTE_TYPES.get(r["route_type"], r["route_type"])}
            for r in routes
        ],
        "stops": [
            {"stop_id": s["stop_id"], "name": s["stop_name"], "lon": float(s["stop_lon"]), "lat": float(s["stop_lat"]),
             "zone_id": box.zone_of(float(s["stop_lon"]), float(s["stop_lat"]))}
            for s in stops
        ],
    }


def sensor_rows(events: Iterable[TrafficFlowObserved]) -> list[dict[str, Any]]:
    """One row per sensor the traffic events name (the first event of each)."""
    rows: dict[str, dict[str, Any]] = {}
    for event in events:
        rows.setdefault(event.id, {
            "sensor_id": event.id, "segment_id": event.refRoadSegment, "lane_id": event.laneId,
            "zone_id": event.zone, "lon": event.location.lon, "lat": event.location.lat,
        })
    return list(rows.values())


def upsert_sql(table: str, columns: Sequence[str], update: bool = True) -> str:
    key = PRIMARY_KEYS[table]
    values = ", ".join(f":{c}" for c in columns)
    changes = ", ".join(f"{c} = excluded.{c}" for c in columns if c != key)
    action = f"DO UPDATE SET {changes}" if update and changes else "DO NOTHING"
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({values}) ON CONFLICT ({key}) {action}"


def write_rows(db: Database, table: str, rows: Sequence[dict[str, Any]], update: bool = True) -> int:
    if not rows:
        return 0
    return db.executemany(upsert_sql(table, list(rows[0]), update), rows)


def load_reference(db: Database, model: CityModel | None = None, feed: Path = GTFS_FILE) -> dict[str, int]:
    """Upsert the city's reference rows, in one transaction; return the rows per table."""
    tables = {**city_rows(model or load_city()), **gtfs_rows(feed)}
    with db.transaction():
        for table, rows in tables.items():
            write_rows(db, table, rows)
    return {table: len(rows) for table, rows in tables.items()}
