"""Reference data: the city's zones, road segments, traffic sensors, car parks, stations, bus routes and stops, as
table rows.

They come from the configured city (:mod:`smartcity.city`, ``SMARTCITY_CITY_FILE``), its transit stops and lines;
:func:`load_reference` upserts them (``smartcity db load-reference``), so loading twice changes nothing. The
sensors are the city's traffic loop sites (:func:`loop_site_rows`); sensors it does not describe (the simulator's
scale-out replicas, a connector's) are derived from the traffic events themselves (:func:`sensor_rows`): the
time-series store function adds each new one as it first reports.
Ids are the ones events carry (see ``0001_reference_tables.sql``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from smartcity.backends.database import Database
from smartcity.city import CityDefinition, Site
from smartcity.city.geometry import bbox
from smartcity.events import (
    AirQualityObserved,
    BikeHireDockingStation,
    OffStreetParking,
    TrafficFlowObserved,
    WeatherObserved,
    city,
    ngsi_id,
)

PRIMARY_KEYS = {
    "zones": "zone_id",
    "road_segments": "segment_id",
    "sensors": "sensor_id",
    "routes": "route_id",
    "stops": "stop_id",
    "stations": "station_id",
    "parkings": "parking_id",
}


def segment_id(edge: str) -> str:
    return ngsi_id("RoadSegment", edge)


def zone_rows(model: CityDefinition | None = None) -> list[dict[str, Any]]:
    """One row per zone: its box, and its row and column in the grid (else its rank, column 1)."""
    model = model or city()
    rows = []
    for rank, zone in enumerate(model.zones, 1):
        west, south, east, north = bbox(zone.polygon)
        row, col = (int(zone.id[1]), int(zone.id[2])) if model.grid else (rank, 1)
        rows.append({"zone_id": zone.id, "row_number": row, "col_number": col,
                     "west": west, "east": east, "south": south, "north": north})
    return rows


def _station(place: Site, kind: str, station_id: str) -> dict[str, Any]:
    return {"station_id": station_id, "kind": kind, "name": place.name, "zone_id": place.zone,
            "capacity": place.capacity or None, "lon": place.lon, "lat": place.lat}


def city_rows(model: CityDefinition) -> dict[str, list[dict[str, Any]]]:
    """The rows of the tables the city definition fills, its transit lines and stops included."""
    sites = model.sites
    stations = (
        [_station(p, "bike-share", BikeHireDockingStation.make_id(p.id)) for p in sites.bike_stations]
        + [_station(p, "weather", WeatherObserved.make_id(p.id)) for p in sites.weather_stations]
        + [_station(p, "air-quality", AirQualityObserved.make_id(p.id)) for p in sites.air_quality_stations]
    )
    return {
        "zones": zone_rows(model),
        "road_segments": [
            {"segment_id": segment_id(s.id), "name": None, "zone_id": s.zone, "lanes": s.lanes,
             "length_m": s.length, "speed_limit_kmh": round(s.speed * 3.6, 2), "lon": s.lon, "lat": s.lat}
            for s in model.segments
        ],
        "sensors": loop_site_rows(model),
        "stations": stations,
        "parkings": [
            {"parking_id": OffStreetParking.make_id(p.id), "name": p.name, "zone_id": p.zone,
             "segment_id": segment_id(p.edge), "capacity": p.capacity, "lon": p.lon, "lat": p.lat}
            for p in sites.car_parks
        ],
        "routes": [{"route_id": line.id, "short_name": line.short_name, "long_name": line.long_name,
                    "route_type": line.route_type} for line in model.transit.lines],
        "stops": [{"stop_id": s.id, "name": s.name, "lon": s.lon, "lat": s.lat, "zone_id": s.zone}
                  for s in model.transit.stops],
    }


def loop_site_rows(model: CityDefinition) -> list[dict[str, Any]]:
    """The rows of the city's traffic loop sites, with the ids their events carry."""
    return [{"sensor_id": TrafficFlowObserved.make_id(loop.id), "segment_id": segment_id(loop.edge),
             "lane_id": loop.lane_index, "zone_id": loop.zone, "lon": loop.lon, "lat": loop.lat}
            for loop in model.sites.traffic_loops]


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


def load_reference(db: Database, model: CityDefinition | None = None) -> dict[str, int]:
    """Upsert the rows of ``model`` (default: the configured city), in one transaction; return the rows per table."""
    tables = city_rows(model or city())
    with db.transaction():
        for table, rows in tables.items():
            write_rows(db, table, rows)
    return {table: len(rows) for table, rows in tables.items()}
