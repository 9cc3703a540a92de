"""api-transport: ``/v1/transport`` — lines, stops, vehicles' latest positions, delays per line and per stop.

The routes; what they read is :mod:`smartcity.api.transport` (the GTFS reference tables, the vehicles' latest
states, the positions' delays). Every route needs the viewer role.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response

from smartcity.api.app import READ_ERRORS, create_api_app, viewer
from smartcity.api.caching import NOT_MODIFIED_RESPONSE, cached_read
from smartcity.api.dependencies import DatabaseDep, ReadCacheDep
from smartcity.api.latest_routes import add_latest_routes
from smartcity.api.pagination import Cursor, Page, PageSize, page_by_key
from smartcity.api.timeseries import TimeRange, time_range
from smartcity.api.transport import (
    VEHICLES, Line, LineDelays, Stop, StopDelays, delays_by_line, delays_by_stop, lines, stops, vehicle_filters,
)
from smartcity.events.common import Zone
from smartcity.runtime import Context, http_function

REFERENCE_TTL_S = 300.0
STOPS_TTL_S = 60.0
DELAYS_TTL_S = 30.0

router = APIRouter(prefix="/v1/transport", dependencies=[Depends(viewer)], responses=READ_ERRORS)


@router.get("/lines", response_model=Page[Line], responses=NOT_MODIFIED_RESPONSE)
def list_lines(request: Request, database: DatabaseDep, read_cache: ReadCacheDep, limit: PageSize = 100,
               cursor: Cursor = None) -> Response:
    """The network's lines (GTFS routes), by id."""
    return cached_read(
        request, read_cache, lambda: page_by_key(Page[Line], lines(database), lambda line: line.line_id, limit, cursor, {}),
        tags=["reference"], ttl_s=REFERENCE_TTL_S, max_age_s=60)


@router.get("/stops", response_model=Page[Stop], responses=NOT_MODIFIED_RESPONSE)
def list_stops(
    request: Request, database: DatabaseDep, read_cache: ReadCacheDep, limit: PageSize = 100, cursor: Cursor = None,
    zone: Zone | None = None, line_id: str | None = None,
) -> Response:
    """The network's stops (GTFS stops), by id; ``line_id`` keeps those the line served in the last day."""
    def produce() -> Page[Stop]:
        return page_by_key(Page[Stop], stops(database, zone, line_id), lambda stop: stop.stop_id, limit, cursor,
                           {"zone": zone, "line_id": line_id})

    return cached_read(request, read_cache, produce, tags=["reference"], ttl_s=STOPS_TTL_S, max_age_s=60)


add_latest_routes(router, "/vehicles", "vehicle_id", VEHICLES, vehicle_filters, ("list_vehicles", "get_vehicle"),
                  ("Every vehicle's latest position, by vehicle id.", "One vehicle's latest position."))


@router.get("/delays/lines", response_model=LineDelays, responses=NOT_MODIFIED_RESPONSE)
def line_delays(request: Request, database: DatabaseDep, read_cache: ReadCacheDep,
                period: Annotated[TimeRange, Depends(time_range)]) -> Response:
    """Delay per line over ``from``..``to`` (default: the last hour)."""
    return cached_read(request, read_cache, lambda: delays_by_line(database, period), ttl_s=DELAYS_TTL_S, max_age_s=30)


@router.get("/delays/stops", response_model=StopDelays, responses=NOT_MODIFIED_RESPONSE)
def stop_delays(request: Request, database: DatabaseDep, read_cache: ReadCacheDep,
                period: Annotated[TimeRange, Depends(time_range)], line_id: str | None = None) -> Response:
    """Delay of the vehicles at or approaching each stop, per line, over ``from``..``to``."""
    return cached_read(request, read_cache, lambda: delays_by_stop(database, period, line_id), ttl_s=DELAYS_TTL_S,
                       max_age_s=30)


@http_function
def create_app(context: Context) -> FastAPI:
    app = create_api_app("transport", "Public transport: lines, stops, vehicles, delays.", context)
    app.include_router(router)
    return app
