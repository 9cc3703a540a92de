"""api-mobility: ``/v1/mobility`` — bike-station and parking availability, taxi demand, the mobility index.

Availability is each station's and car park's latest state in the cache (``latest:bike-share:<id>``,
``latest:parking:<id>``); taxi demand counts the trips of the ``taxi_trips`` table by pickup zone over a time
range; the mobility index per zone is the streaming job's ``mobility_index_5min`` table (its newest window, or
its windows over a range). Every route needs the viewer role.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel, Field

from smartcity.api.app import READ_ERRORS, create_api_app, read_cache_of, viewer
from smartcity.api.caching import NOT_MODIFIED_RESPONSE, cached_read, latest_state_read, uncached_read
from smartcity.api.pagination import Cursor, Page, PageSize, decode_cursor, page_by_key, page_of
from smartcity.api.problems import problem_responses
from smartcity.api.timeseries import TimeRange, cursor_time, sql_time, time_range
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
        return latest_state_read(request, latest.read("bike-share", station_id), bike_station, f"bike station {station_id}")

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
        return latest_state_read(request, latest.read("parking", parking_id), parking, f"car park {parking_id}")

    @router.get("/taxi-demand", response_model=TaxiDemand, responses=NOT_MODIFIED_RESPONSE)
    def taxi_demand(
        request: Request, period: Annotated[TimeRange, Depends(time_range)], zone: Zone | None = None
    ) -> Response:
        """Taxi and VTC trips by pickup zone over ``from``..``to`` (default: the last hour)."""
        def produce() -> TaxiDemand:
            zone_condition = " AND pickup_zone = :zone" if zone is not None else ""
            rows = context.database.query(
                f"""SELECT pickup_zone AS zone, COUNT(DISTINCT entity_id) AS trips,
                           COUNT(DISTINCT CASE WHEN trip_status = 'completed' THEN entity_id END) AS completed_trips,
                           AVG(CASE WHEN trip_status = 'completed' THEN fare END) AS average_fare
                    FROM taxi_trips WHERE observed_at >= :start AND observed_at < :end{zone_condition}
                    GROUP BY pickup_zone ORDER BY pickup_zone""",
                {"start": sql_time(period.start), "end": sql_time(period.end), "zone": zone},
            )
            return TaxiDemand(start=period.start, end=period.end, zones=[ZoneDemand(**row) for row in rows])

        return cached_read(request, read_cache_of(request), produce, ttl_s=DEMAND_TTL_S, max_age_s=30)

    @router.get("/index", response_model=MobilityIndexNow, responses=NOT_MODIFIED_RESPONSE)
    def mobility_index(request: Request, zone: Zone | None = None) -> Response:
        """The newest mobility index of every zone (or of one)."""
        def produce() -> MobilityIndexNow:
            zone_condition = " AND m.zone_id = :zone" if zone is not None else ""
            rows = context.database.query(
                f"""SELECT {INDEX_COLUMNS} FROM mobility_index_5min m
                    WHERE m.window_start = (SELECT MAX(window_start) FROM mobility_index_5min n WHERE n.zone_id = m.zone_id)
                    {zone_condition} ORDER BY m.zone_id""", {"zone": zone})
            return MobilityIndexNow(zones=[MobilityIndex(**row) for row in rows])

        return cached_read(request, read_cache_of(request), produce, ttl_s=DEMAND_TTL_S, max_age_s=30)

    @router.get("/index/history", response_model=Page[MobilityIndex], responses=NOT_MODIFIED_RESPONSE)
    def mobility_index_history(
        request: Request, zone: Zone, period: Annotated[TimeRange, Depends(time_range)],
        limit: PageSize = 100, cursor: Cursor = None,
    ) -> Response:
        """One zone's mobility index window by window over ``from``..``to``, oldest first."""
        filters = {"zone": zone, **period.cursor_filters}
        after = decode_cursor(cursor, filters, (str,))
        rows = context.database.query(
            f"""SELECT {INDEX_COLUMNS} FROM mobility_index_5min
                WHERE zone_id = :zone AND window_start >= :start AND window_start < :end
                {"AND window_start > :after" if after else ""} ORDER BY window_start LIMIT :fetch""",
            {"zone": zone, "start": sql_time(period.start), "end": sql_time(period.end),
             "after": sql_time(cursor_time(after[0])) if after else None, "fetch": limit + 1},
        )
        windows = [MobilityIndex(**row) for row in rows]
        items, next_cursor = page_of(windows, limit, lambda w: [w.window_start.isoformat()], filters)
        return uncached_read(request, lambda: Page[MobilityIndex](items=items, next_cursor=next_cursor))

    app.include_router(router)
    return app

