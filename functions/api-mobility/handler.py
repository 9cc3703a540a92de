"""api-mobility: ``/v1/mobility`` — bike-station and parking availability, taxi demand by zone.

Availability is each station's and car park's latest state in the cache (``latest:bike-share:<id>``,
``latest:parking:<id>``); taxi demand counts the trips of the ``taxi_trips`` table by pickup zone over a time
range. Every route needs the viewer role.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel, Field

from smartcity.api.app import READ_ERRORS, create_api_app, read_cache_of, viewer
from smartcity.api.caching import NOT_MODIFIED_RESPONSE, cached_read, uncached_read
from smartcity.api.pagination import Cursor, Page, PageSize, page_by_key
from smartcity.api.problems import not_found, problem_responses
from smartcity.api.timeseries import TimeRange, sql_time, time_range
from smartcity.events.common import Zone
from smartcity.runtime import Context, http_function
from smartcity.storage.latest_state import LatestState

LATEST_TTL_S = 5.0
DEMAND_TTL_S = 30.0


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


def bike_station(state: dict[str, Any]) -> BikeStation:
    data = state["data"]
    lon, lat = data["location"]["coordinates"]
    return BikeStation(
        station_id=data["id"], name=data["name"], zone=data["zone"], lon=lon, lat=lat,
        capacity=data["totalSlotNumber"], bikes_available=data["availableBikeNumber"],
        docks_available=data["freeSlotNumber"], docks_out_of_service=data["outOfServiceSlotNumber"],
        is_renting=data["isRenting"], is_returning=data["isReturning"], status=data["status"],
        observed_at=data["dateObserved"],
    )


def parking(state: dict[str, Any]) -> Parking:
    data = state["data"]
    lon, lat = data["location"]["coordinates"]
    return Parking(
        parking_id=data["id"], name=data["name"], zone=data["zone"], lon=lon, lat=lat,
        capacity=data["totalSpotNumber"], spots_available=data["availableSpotNumber"], occupancy=data["occupancy"],
        status=data["status"], observed_at=data["dateObserved"],
    )


@http_function
def create_app(context: Context) -> FastAPI:
    app = create_api_app("mobility", "Shared and individual mobility: bikes, parking, taxis.", context)
    router = APIRouter(prefix="/v1/mobility", dependencies=[Depends(viewer)], responses=READ_ERRORS)
    latest = LatestState(context.cache, context.settings.latest_state_ttl_s)

    @router.get("/bike-stations", response_model=Page[BikeStation], responses=NOT_MODIFIED_RESPONSE)
    def list_bike_stations(
        request: Request, limit: PageSize = 100, cursor: Cursor = None, zone: Zone | None = None,
        min_bikes: Annotated[int | None, Query(ge=0, description="Only stations with at least this many bikes")] = None,
    ) -> Response:
        """Every bike-share station's latest availability, by station id."""
        def produce() -> Page[BikeStation]:
            stations = (
                station for station in map(bike_station, latest.read_all("bike-share"))
                if (zone is None or station.zone == zone)
                and (min_bikes is None or station.bikes_available >= min_bikes)
            )
            return page_by_key(Page[BikeStation], stations, lambda s: s.station_id, limit, cursor,
                               {"zone": zone, "min_bikes": min_bikes})

        return cached_read(request, read_cache_of(request), produce, ttl_s=LATEST_TTL_S)

    @router.get("/bike-stations/{station_id}", response_model=BikeStation,
                responses={**NOT_MODIFIED_RESPONSE, **problem_responses(404)})
    def get_bike_station(request: Request, station_id: str) -> Response:
        state = latest.read("bike-share", station_id)
        if state is None:
            raise not_found(f"bike station {station_id}")
        return uncached_read(request, lambda: bike_station(state), max_age_s=int(LATEST_TTL_S))

    @router.get("/parking", response_model=Page[Parking], responses=NOT_MODIFIED_RESPONSE)
    def list_parking(
        request: Request, limit: PageSize = 100, cursor: Cursor = None, zone: Zone | None = None,
        min_spots: Annotated[int | None, Query(ge=0, description="Only car parks with at least this many free spots")] = None,
    ) -> Response:
        """Every car park's latest availability, by id."""
        def produce() -> Page[Parking]:
            parkings = (
                item for item in map(parking, latest.read_all("parking"))
                if (zone is None or item.zone == zone) and (min_spots is None or item.spots_available >= min_spots)
            )
            return page_by_key(Page[Parking], parkings, lambda p: p.parking_id, limit, cursor,
                               {"zone": zone, "min_spots": min_spots})

        return cached_read(request, read_cache_of(request), produce, ttl_s=LATEST_TTL_S)

    @router.get("/parking/{parking_id}", response_model=Parking,
                responses={**NOT_MODIFIED_RESPONSE, **problem_responses(404)})
    def get_parking(request: Request, parking_id: str) -> Response:
        state = latest.read("parking", parking_id)
        if state is None:
            raise not_found(f"car park {parking_id}")
        return uncached_read(request, lambda: parking(state), max_age_s=int(LATEST_TTL_S))

    @router.get("/taxi-demand", response_model=TaxiDemand, responses=NOT_MODIFIED_RESPONSE)
    def taxi_demand(
        request: Request, period: Annotated[TimeRange, Depends(time_range)], zone: Zone | None = None
    ) -> Response:
        """Taxi and VTC trips by pickup zone over ``from``..``to`` (default: the last hour)."""
        def produce() -> TaxiDemand:
            database = context.database
            zone_condition = " AND pickup_zone = :zone" if zone is not None else ""
            rows = database.query(
                f"""SELECT pickup_zone AS zone, COUNT(DISTINCT entity_id) AS trips,
                           COUNT(DISTINCT CASE WHEN trip_status = 'completed' THEN entity_id END) AS completed_trips,
                           AVG(CASE WHEN trip_status = 'completed' THEN fare END) AS average_fare
                    FROM taxi_trips WHERE observed_at >= :start AND observed_at < :end{zone_condition}
                    GROUP BY pickup_zone ORDER BY pickup_zone""",
                {"start": sql_time(period.start), "end": sql_time(period.end),
                 "zone": zone},
            )
            return TaxiDemand(start=period.start, end=period.end, zones=[ZoneDemand(**row) for row in rows])

        return cached_read(request, read_cache_of(request), produce, ttl_s=DEMAND_TTL_S, max_age_s=30)

    app.include_router(router)
    return app
