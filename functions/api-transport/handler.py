"""api-transport: ``/v1/transport`` — lines, stops, vehicles' latest positions, delays per line and per stop.

Lines and stops are the GTFS reference tables ``routes`` and ``stops``; a stop's lines are those whose vehicles
served it in the last day. Vehicles' positions are their latest states in the cache
(``latest:public-transport:<vehicle id>``). Delays come from the ``transport_positions`` table over a time range.
Every route needs the viewer role.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel, Field

from smartcity.api.app import READ_ERRORS, create_api_app, read_cache_of, viewer
from smartcity.api.caching import NOT_MODIFIED_RESPONSE, cached_read, latest_state_read
from smartcity.api.pagination import Cursor, Page, PageSize, page_by_key
from smartcity.api.problems import problem_responses
from smartcity.api.timeseries import TimeRange, sql_time, time_range
from smartcity.events.common import Zone
from smartcity.runtime import Context, http_function
from smartcity.storage.latest_state import LatestState

STREAM = "public-transport"
LATEST_TTL_S = 5.0
REFERENCE_TTL_S = 300.0
DELAYS_TTL_S = 30.0
SERVED_WINDOW = timedelta(days=1)
# The usual punctuality window of public transport: at most 1 minute early, at most 5 minutes late.
ON_TIME_EARLIEST_S, ON_TIME_LATEST_S = -60, 300


class Line(BaseModel):
    """A GTFS route."""

    line_id: str = Field(description="GTFS route_id")
    short_name: str
    long_name: str | None
    route_type: str


class Stop(BaseModel):
    stop_id: str = Field(description="GTFS stop_id")
    name: str
    zone: str
    lon: float
    lat: float
    lines: list[str] = Field(description="Lines whose vehicles served the stop in the last day")


class VehiclePosition(BaseModel):
    vehicle_id: str
    vehicle_type: str
    line_id: str
    trip_id: str
    stop_id: str = Field(description="The current or next stop")
    current_status: Literal["INCOMING_AT", "STOPPED_AT", "IN_TRANSIT_TO"]
    delay_s: int = Field(description="Seconds behind the timetable; negative when early")
    lon: float
    lat: float
    zone: str
    speed_kmh: float
    heading: float
    occupancy_status: str
    observed_at: datetime


class Delay(BaseModel):
    """Delays of the positions reported over the range (one per vehicle every few seconds)."""

    positions: int
    vehicles: int
    average_delay_s: float
    max_delay_s: int
    on_time_share: float = Field(description=f"Share of positions between {ON_TIME_EARLIEST_S} s and {ON_TIME_LATEST_S} s of delay")


class LineDelay(Delay):
    line_id: str


class StopDelay(Delay):
    stop_id: str
    line_id: str


class Delays(BaseModel):
    start: datetime
    end: datetime
    items: list[Any]


class LineDelays(Delays):
    items: list[LineDelay]


class StopDelays(Delays):
    items: list[StopDelay]


def vehicle_position(state: dict[str, Any]) -> VehiclePosition:
    data = state["data"]
    lon, lat = data["location"]["coordinates"]
    return VehiclePosition(
        vehicle_id=data["vehicleId"], vehicle_type=data["vehicleType"], line_id=data["routeId"],
        trip_id=data["tripId"], stop_id=data["stopId"], current_status=data["currentStatus"], delay_s=data["delay"],
        lon=lon, lat=lat, zone=data["zone"], speed_kmh=data["speed"], heading=data["heading"],
        occupancy_status=data["occupancyStatus"], observed_at=data["dateObserved"],
    )


DELAY_COLUMNS = f"""COUNT(*) AS positions, COUNT(DISTINCT vehicle_id) AS vehicles,
    AVG(delay) AS average_delay_s, MAX(delay) AS max_delay_s,
    AVG(CASE WHEN delay BETWEEN {ON_TIME_EARLIEST_S} AND {ON_TIME_LATEST_S} THEN 1.0 ELSE 0.0 END) AS on_time_share"""


@http_function
def create_app(context: Context) -> FastAPI:
    app = create_api_app("transport", "Public transport: lines, stops, vehicles, delays.", context)
    router = APIRouter(prefix="/v1/transport", dependencies=[Depends(viewer)], responses=READ_ERRORS)
    latest = LatestState(context.cache, context.settings.latest_state_ttl_s)

    def range_params(period: TimeRange) -> dict[str, Any]:
        return {"start": sql_time(period.start), "end": sql_time(period.end)}

    @router.get("/lines", response_model=Page[Line], responses=NOT_MODIFIED_RESPONSE)
    def list_lines(request: Request, limit: PageSize = 100, cursor: Cursor = None) -> Response:
        """The network's lines (GTFS routes), by id."""
        def produce() -> Page[Line]:
            rows = context.database.query("SELECT route_id, short_name, long_name, route_type FROM routes")
            lines = (Line(line_id=row.pop("route_id"), **row) for row in rows)
            return page_by_key(Page[Line], lines, lambda line: line.line_id, limit, cursor, {})

        return cached_read(request, read_cache_of(request), produce, tags=["reference"], ttl_s=REFERENCE_TTL_S, max_age_s=60)

    @router.get("/stops", response_model=Page[Stop], responses=NOT_MODIFIED_RESPONSE)
    def list_stops(
        request: Request, limit: PageSize = 100, cursor: Cursor = None, zone: Zone | None = None,
        line_id: str | None = None,
    ) -> Response:
        """The network's stops (GTFS stops), by id; ``line_id`` keeps those the line served in the last day."""
        def produce() -> Page[Stop]:
            database = context.database
            since = sql_time(datetime.now(timezone.utc) - SERVED_WINDOW)
            served: dict[str, set[str]] = {}
            for row in database.query(
                "SELECT DISTINCT stop_id, route_id FROM transport_positions WHERE observed_at >= :since", {"since": since}
            ):
                served.setdefault(row["stop_id"], set()).add(row["route_id"])
            rows = database.query("SELECT stop_id, name, zone_id, lon, lat FROM stops")
            stops = (
                Stop(stop_id=row["stop_id"], name=row["name"], zone=row["zone_id"], lon=row["lon"], lat=row["lat"],
                     lines=sorted(served.get(row["stop_id"], ())))
                for row in rows
                if (zone is None or row["zone_id"] == zone)
                and (line_id is None or line_id in served.get(row["stop_id"], ()))
            )
            return page_by_key(Page[Stop], stops, lambda stop: stop.stop_id, limit, cursor,
                               {"zone": zone, "line_id": line_id})

        return cached_read(request, read_cache_of(request), produce, tags=["reference"], ttl_s=60.0, max_age_s=60)

    @router.get("/vehicles", response_model=Page[VehiclePosition], responses=NOT_MODIFIED_RESPONSE)
    def list_vehicles(
        request: Request, limit: PageSize = 100, cursor: Cursor = None, line_id: str | None = None,
        zone: Zone | None = None,
    ) -> Response:
        """Every vehicle's latest position, by vehicle id."""
        def produce() -> Page[VehiclePosition]:
            vehicles = (
                vehicle for vehicle in map(vehicle_position, latest.read_all(STREAM))
                if (line_id is None or vehicle.line_id == line_id) and (zone is None or vehicle.zone == zone)
            )
            return page_by_key(Page[VehiclePosition], vehicles, lambda v: v.vehicle_id, limit, cursor,
                               {"line_id": line_id, "zone": zone})

        return cached_read(request, read_cache_of(request), produce, ttl_s=LATEST_TTL_S)

    @router.get("/vehicles/{vehicle_id}", response_model=VehiclePosition,
                responses={**NOT_MODIFIED_RESPONSE, **problem_responses(404)})
    def get_vehicle(request: Request, vehicle_id: str) -> Response:
        """One vehicle's latest position."""
        return latest_state_read(request, latest.read(STREAM, vehicle_id), vehicle_position, f"vehicle {vehicle_id}")

    @router.get("/delays/lines", response_model=LineDelays, responses=NOT_MODIFIED_RESPONSE)
    def line_delays(request: Request, period: Annotated[TimeRange, Depends(time_range)]) -> Response:
        """Delay per line over ``from``..``to`` (default: the last hour)."""
        def produce() -> LineDelays:
            rows = context.database.query(
                f"""SELECT route_id AS line_id, {DELAY_COLUMNS} FROM transport_positions
                    WHERE observed_at >= :start AND observed_at < :end GROUP BY route_id ORDER BY route_id""",
                range_params(period),
            )
            return LineDelays(start=period.start, end=period.end, items=[LineDelay(**row) for row in rows])

        return cached_read(request, read_cache_of(request), produce, ttl_s=DELAYS_TTL_S, max_age_s=30)

    @router.get("/delays/stops", response_model=StopDelays, responses=NOT_MODIFIED_RESPONSE)
    def stop_delays(
        request: Request, period: Annotated[TimeRange, Depends(time_range)], line_id: str | None = None
    ) -> Response:
        """Delay of the vehicles at or approaching each stop, per line, over ``from``..``to``."""
        def produce() -> StopDelays:
            line_condition = " AND route_id = :line_id" if line_id is not None else ""
            rows = context.database.query(
                f"""SELECT stop_id, route_id AS line_id, {DELAY_COLUMNS} FROM transport_positions
                    WHERE observed_at >= :start AND observed_at < :end{line_condition}
                    GROUP BY stop_id, route_id ORDER BY stop_id, route_id""",
                {**range_params(period), "line_id": line_id},
            )
            return StopDelays(start=period.start, end=period.end, items=[StopDelay(**row) for row in rows])

        return cached_read(request, read_cache_of(request), produce, ttl_s=DELAYS_TTL_S, max_age_s=30)

    app.include_router(router)
    return app
