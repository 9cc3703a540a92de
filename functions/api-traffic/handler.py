"""api-traffic: ``/v1/traffic`` — latest state per sensor and road segment, history, congestion, anomalies,
forecasts and their live accuracy.

The routes; what they read is :mod:`smartcity.api.traffic` (latest states, congestion, flagged windows),
:mod:`smartcity.api.traffic_history` (5-minute aggregates, raw 1-minute buckets) and :mod:`smartcity.api.forecasts`.
Every route needs the viewer role.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response

from smartcity.api.app import READ_ERRORS, create_api_app, viewer
from smartcity.api.caching import NOT_MODIFIED_RESPONSE, cached_read
from smartcity.api.dependencies import DatabaseDep, LatestStatesDep, ReadCacheDep
from smartcity.api.forecasts import EntityForecast, ForecastAccuracy, forecast_accuracy, latest_forecast
from smartcity.api.geo import BoundingBox, bounding_box
from smartcity.api.latest_routes import LATEST_TTL_S, add_latest_routes
from smartcity.api.pagination import Cursor, Page, PageSize
from smartcity.api.problems import bad_request, problem_responses
from smartcity.api.timeseries import Bucket, TimeRange, time_range
from smartcity.api.traffic import (
    SEGMENTS, SENSORS, AnomalyMetric, AnomalySeverity, Congestion, TrafficAnomaly, all_sensors, area_congestion,
    flagged_windows, segment_filters, sensor_filters,
)
from smartcity.api.early_history import PATH as HISTORY_PATH, early_history
from smartcity.api.traffic_history import History, history_response, history_scope
from smartcity.events.common import Zone
from smartcity.runtime import Context, http_function

router = APIRouter(prefix="/v1/traffic", dependencies=[Depends(viewer)], responses=READ_ERRORS)


add_latest_routes(router, "/sensors", "sensor_id", SENSORS, sensor_filters, ("list_sensors", "get_sensor"),
                  ("The latest state of every sensor, by sensor id.", "The latest state of one sensor (its NGSI-LD id)."))
add_latest_routes(router, "/segments", "segment_id", SEGMENTS, segment_filters, ("list_segments", "get_segment"), (
    "The latest state of every road segment that has sensors, by segment id.",
    "The latest state of one road segment (its NGSI-LD id), from its lanes' sensors."), one_ttl_s=LATEST_TTL_S)


@router.get("/history", response_model=History, responses=NOT_MODIFIED_RESPONSE)
async def history(
    request: Request, database: DatabaseDep, period: Annotated[TimeRange, Depends(time_range)],
    bucket: Bucket = Bucket.fifteen_minutes, sensor_id: str | None = None, segment_id: str | None = None,
    zone: Zone | None = None, limit: PageSize = 100, cursor: Cursor = None,
) -> Response:
    """Traffic over ``from``..``to`` in buckets, for one sensor, one segment, one zone, or the whole city.

    Buckets of 5 minutes or more (`5m`, `15m`, `1h`, `1d`) read the streaming job's 5-minute aggregates
    (`source: aggregates`): a sensor's from `traffic_sensor_5min`, a segment's, a zone's or the city's from
    `traffic_segment_5min`, re-aggregated into the bucket (vehicle-weighted speeds). They cover what the
    streaming job has written: the newest minutes, its lag, come with its next micro-batch, and
    `aggregated_until` says how far they reach. Speed percentiles are exact for one sensor or segment at `5m`;
    for wider buckets, zones and the city they are the vehicle-weighted mean of the windows' percentiles (an
    approximation). A sensor's or segment's whole-hour buckets (`1h`, `1d`) read the hourly rollup of those windows
    (the same sums). A window is in the range when it starts in it. `1m` buckets read the raw readings
    (`source: raw`, table `traffic_flow`), up to the last one stored.
    """
    scope = history_scope(sensor_id, segment_id, zone)
    return await history_response(request, database, scope, bucket, period, limit, cursor)


@router.get("/anomalies", response_model=Page[TrafficAnomaly], responses=NOT_MODIFIED_RESPONSE)
def anomalies(
    request: Request, database: DatabaseDep, read_cache: ReadCacheDep, period: Annotated[TimeRange, Depends(time_range)],
    sensor_id: str | None = None, segment_id: str | None = None, zone: Zone | None = None,
    metric: AnomalyMetric | None = None, severity: AnomalySeverity | None = None, limit: PageSize = 100,
    cursor: Cursor = None,
) -> Response:
    """The windows the streaming anomaly job flagged in ``from``..``to`` (by window start), newest first.

    One item per window and metric, with the baseline it was judged against. The job also reported each
    flagged window as an incident (`incident_id`), which `/v1/incidents` serves with its workflow; this route
    gives the measurements behind it. At most one of `sensor_id`, `segment_id`, `zone`.
    """
    scope = history_scope(sensor_id, segment_id, zone)
    return cached_read(request, read_cache, lambda: flagged_windows(
        database, scope, period, metric, severity, limit, cursor), ttl_s=LATEST_TTL_S)


@router.get("/congestion", response_model=Congestion, responses=NOT_MODIFIED_RESPONSE)
def congestion(request: Request, latest: LatestStatesDep, read_cache: ReadCacheDep,
               bbox: Annotated[BoundingBox, Depends(bounding_box)]) -> Response:
    """How congested the area is now: its sensors' latest states, and its congested segments."""
    return cached_read(request, read_cache, lambda: area_congestion(all_sensors(latest), bbox), ttl_s=LATEST_TTL_S)


@router.get("/forecast", response_model=EntityForecast,
            responses={**NOT_MODIFIED_RESPONSE, **problem_responses(400, 404)})
def forecast(
    request: Request, database: DatabaseDep, read_cache: ReadCacheDep, segment_id: str | None = None,
    sensor_id: str | None = None, metric: Literal["speed", "flow"] = "speed",
) -> Response:
    """The newest forecasts of one road segment or one sensor: P10/P50/P90 of its mean speed (km/h) or flow
    (vehicles/h) 15, 30 and 60 minutes after its last closed 5-minute window, by the promoted model (name and
    version), beside the historical average for the same origin. Give exactly one of `segment_id`, `sensor_id`.
    """
    if (segment_id is None) == (sensor_id is None):
        raise bad_request("query.segment_id", "give exactly one of segment_id and sensor_id")
    target = f"{'segment' if segment_id else 'sensor'}-{metric}"
    entity = segment_id or sensor_id
    return cached_read(request, read_cache, lambda: latest_forecast(database, target, entity), ttl_s=LATEST_TTL_S)


@router.get("/forecast/accuracy", response_model=ForecastAccuracy, responses=NOT_MODIFIED_RESPONSE)
def forecast_accuracy_route(
    request: Request, database: DatabaseDep, read_cache: ReadCacheDep,
    target: Literal["segment-speed", "segment-flow", "sensor-speed", "sensor-flow"] = "segment-speed",
    hours: Annotated[float, Query(gt=0, le=24 * 28)] = 24.0,
) -> Response:
    """Live accuracy: the mean absolute error and P10-P90 coverage, per horizon, of the forecasts whose window
    has closed in the last `hours`, for the served model and for the historical average on the same windows."""
    return cached_read(request, read_cache, lambda: forecast_accuracy(database, target, hours), ttl_s=LATEST_TTL_S)


@http_function
def create_app(context: Context) -> FastAPI:
    app = create_api_app("traffic", "Road traffic: sensors, road segments, history, congestion.", context)
    app.include_router(router)
    app.add_early_route(HISTORY_PATH, early_history)  # the busiest uncached read: its plain queries before FastAPI
    return app
