"""api-mobility: ``/v1/mobility`` — bike-station and parking availability, taxi demand, the mobility index.

The routes; what they read is :mod:`smartcity.api.mobility` (the stations' and car parks' latest states, the taxi
trips, the streaming job's mobility index). Every route needs the viewer role.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Request, Response

from smartcity.api.app import READ_ERRORS, create_api_app, viewer
from smartcity.api.caching import NOT_MODIFIED_RESPONSE, cached_read, uncached_read
from smartcity.api.dependencies import DatabaseDep, ReadCacheDep
from smartcity.api.latest_routes import add_latest_routes
from smartcity.api.mobility import (
    BIKE_STATIONS, CAR_PARKS, MobilityIndex, MobilityIndexNow, TaxiDemand, car_park_filters, index_windows,
    newest_index, station_filters, zone_taxi_demand,
)
from smartcity.api.pagination import Cursor, Page, PageSize
from smartcity.api.timeseries import TimeRange, time_range
from smartcity.events.common import Zone
from smartcity.runtime import Context, http_function

DEMAND_TTL_S = 30.0

router = APIRouter(prefix="/v1/mobility", dependencies=[Depends(viewer)], responses=READ_ERRORS)


add_latest_routes(router, "/bike-stations", "station_id", BIKE_STATIONS, station_filters,
                  ("list_bike_stations", "get_bike_station"),
                  ("Every bike-share station's latest availability, by station id.", None))
add_latest_routes(router, "/parking", "parking_id", CAR_PARKS, car_park_filters, ("list_parking", "get_parking"),
                  ("Every car park's latest availability, by id.", None))


@router.get("/taxi-demand", response_model=TaxiDemand, responses=NOT_MODIFIED_RESPONSE)
def taxi_demand(request: Request, database: DatabaseDep, read_cache: ReadCacheDep,
                period: Annotated[TimeRange, Depends(time_range)], zone: Zone | None = None) -> Response:
    """Taxi and VTC trips by pickup zone over ``from``..``to`` (default: the last hour)."""
    return cached_read(request, read_cache, lambda: zone_taxi_demand(database, period, zone), ttl_s=DEMAND_TTL_S,
                       max_age_s=30)


@router.get("/index", response_model=MobilityIndexNow, responses=NOT_MODIFIED_RESPONSE)
def mobility_index(request: Request, database: DatabaseDep, read_cache: ReadCacheDep,
                   zone: Zone | None = None) -> Response:
    """The newest mobility index of every zone (or of one)."""
    return cached_read(request, read_cache, lambda: newest_index(database, zone), ttl_s=DEMAND_TTL_S, max_age_s=30)


@router.get("/index/history", response_model=Page[MobilityIndex], responses=NOT_MODIFIED_RESPONSE)
def mobility_index_history(
    request: Request, database: DatabaseDep, zone: Zone, period: Annotated[TimeRange, Depends(time_range)],
    limit: PageSize = 100, cursor: Cursor = None,
) -> Response:
    """One zone's mobility index window by window over ``from``..``to``, oldest first."""
    return uncached_read(request, lambda: index_windows(database, zone, period, limit, cursor))


@http_function
def create_app(context: Context) -> FastAPI:
    app = create_api_app("mobility", "Shared and individual mobility: bikes, parking, taxis.", context)
    app.include_router(router)
    return app
