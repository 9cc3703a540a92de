"""Shared and individual mobility for ``/v1/mobility``: the models of its answers and the reads behind them.

Availability is each station's and car park's latest state in the cache (``latest:bike-share:<id>``,
``latest:parking:<id>``); taxi demand counts the trips of the ``taxi_trips`` table by pickup zone over a time
range; the mobility index per zone is the streaming job's ``mobility_index_5min`` table (its newest window, or
its windows over a range).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Query
from pydantic import BaseModel, Field

from smartcity.api.latest_routes import Filters, stream_entities
from smartcity.api.pagination import Page, decode_cursor, page_of
from smartcity.api.timeseries import TimeRange, city_time, cursor_time, sql_time
from smartcity.backends.database import Database
from smartcity.events.common import Zone


class BikeStation(BaseModel):
    station_id: str
    name: str
    zone: str
    lon: float
    lat: float
    capacity: int = Field(description="Docks at the station")
    bikes_available: int
    docks_available: int
    docks_out_of_service: int
    is_renting: bool
    is_returning: bool
    status: str
    observed_at: datetime


class Parking(BaseModel):
    parking_id: str
    name: str
    zone: str
    lon: float
    lat: float
    capacity: int
    spots_available: int
    occupancy: float = Field(description="Fraction of the spots taken, 0..1")
    status: Literal["open", "almostFull", "full", "closed"]
    observed_at: datetime


class ZoneDemand(BaseModel):
    zone: str = Field(description="Pickup zone")
    trips: int = Field(description="Trips picked up in the zone during the range")
    completed_trips: int
    average_fare: float | None = Field(description="Mean fare of the completed trips (EUR)")


class TaxiDemand(BaseModel):
    start: datetime
    end: datetime
    zones: list[ZoneDemand]


class MobilityIndex(BaseModel):
    """A zone's mobility index over one 5-minute window, 0 (stuck) to 100 (fluid), and its parts."""

    zone: str
    window_start: datetime
    window_end: datetime
    mobility_index: float | None
    traffic_score: float | None
    transit_score: float | None
    bikes_score: float | None
    parking_score: float | None
    taxi_score: float | None
    air_score: float | None


class MobilityIndexNow(BaseModel):
    zones: list[MobilityIndex] = Field(description="Each zone's newest window")


INDEX_COLUMNS = """zone_id AS zone, window_start, window_end, mobility_index, traffic_score, transit_score,
    bikes_score, parking_score, taxi_score, air_score"""


def bike_station(state: dict[str, Any]) -> BikeStation:
    data = state["data"]
    lon, lat = data["location"]["coordinates"]
    return BikeStation(
        station_id=data["id"], name=data["name"], zone=data["zone"], lon=lon, lat=lat,
        capacity=data["totalSlotNumber"], bikes_available=data["availableBikeNumber"],
        docks_available=data["freeSlotNumber"], docks_out_of_service=data["outOfServiceSlotNumber"],
        is_renting=data["isRenting"], is_returning=data["isReturning"], status=data["status"],
        observed_at=city_time(data["dateObserved"]),
    )


def parking(state: dict[str, Any]) -> Parking:
    data = state["data"]
    lon, lat = data["location"]["coordinates"]
    return Parking(
        parking_id=data["id"], name=data["name"], zone=data["zone"], lon=lon, lat=lat,
        capacity=data["totalSpotNumber"], spots_available=data["availableSpotNumber"], occupancy=data["occupancy"],
        status=data["status"], observed_at=city_time(data["dateObserved"]),
    )


def zone_and_at_least(zone: str | None, name: str, minimum: int | None, attribute: str) -> Filters:
    """Entities of ``zone`` (any when None) whose ``attribute`` is at least ``minimum`` (any when None); the
    minimum is the query parameter ``name``."""
    return Filters({"zone": zone, name: minimum}, lambda item: (
        (zone is None or item.zone == zone) and (minimum is None or getattr(item, attribute) >= minimum)))


def station_filters(
    zone: Zone | None = None,
    min_bikes: Annotated[int | None, Query(ge=0, description="Only stations with at least this many bikes")] = None,
) -> Filters:
    return zone_and_at_least(zone, "min_bikes", min_bikes, "bikes_available")


def car_park_filters(
    zone: Zone | None = None,
    min_spots: Annotated[int | None, Query(ge=0, description="Only car parks with at least this many free spots")] = None,
) -> Filters:
    return zone_and_at_least(zone, "min_spots", min_spots, "spots_available")


BIKE_STATIONS = stream_entities("bike-share", BikeStation, bike_station, lambda station: station.station_id,
                                "bike station {}")
CAR_PARKS = stream_entities("parking", Parking, parking, lambda car_park: car_park.parking_id, "car park {}")


def zone_taxi_demand(database: Database, period: TimeRange, zone: str | None) -> TaxiDemand:
    """Taxi and VTC trips by pickup zone over ``period`` (of ``zone`` only, when given)."""
    zone_condition = " AND pickup_zone = :zone" if zone is not None else ""
    rows = database.query(
        f"""SELECT pickup_zone AS zone, COUNT(DISTINCT entity_id) AS trips,
                   COUNT(DISTINCT CASE WHEN trip_status = 'completed' THEN entity_id END) AS completed_trips,
                   AVG(CASE WHEN trip_status = 'completed' THEN fare END) AS average_fare
            FROM taxi_trips WHERE observed_at >= :start AND observed_at < :end{zone_condition}
            GROUP BY pickup_zone ORDER BY pickup_zone""",
        {"start": sql_time(period.start), "end": sql_time(period.end), "zone": zone},
    )
    return TaxiDemand(start=period.start, end=period.end, zones=[ZoneDemand(**row) for row in rows])


def newest_index(database: Database, zone: str | None) -> MobilityIndexNow:
    """The newest mobility index window of every zone (or of ``zone``)."""
    zone_condition = " AND m.zone_id = :zone" if zone is not None else ""
    rows = database.query(
        f"""SELECT {INDEX_COLUMNS} FROM mobility_index_5min m
            WHERE m.window_start = (SELECT MAX(window_start) FROM mobility_index_5min n WHERE n.zone_id = m.zone_id)
            {zone_condition} ORDER BY m.zone_id""", {"zone": zone})
    return MobilityIndexNow(zones=[MobilityIndex(**row) for row in rows])


def index_windows(database: Database, zone: str, period: TimeRange, limit: int, cursor: str | None
                  ) -> Page[MobilityIndex]:
    """One zone's mobility index windows starting in ``period``, oldest first, a page of them."""
    filters = {"zone": zone, **period.cursor_filters}
    after = decode_cursor(cursor, filters, (str,))
    rows = database.query(
        f"""SELECT {INDEX_COLUMNS} FROM mobility_index_5min
            WHERE zone_id = :zone AND window_start >= :start AND window_start < :end
            {"AND window_start > :after" if after else ""} ORDER BY window_start LIMIT :fetch""",
        {"zone": zone, "start": sql_time(period.start), "end": sql_time(period.end),
         "after": sql_time(cursor_time(after[0])) if after else None, "fetch": limit + 1},
    )
    items, next_cursor = page_of([MobilityIndex(**row) for row in rows], limit,
                                 lambda w: [w.window_start.isoformat()], filters)
    return Page[MobilityIndex](items=items, next_cursor=next_cursor)
