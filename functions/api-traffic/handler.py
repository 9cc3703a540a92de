"""api-traffic: ``/v1/traffic`` — latest state per sensor and road segment, history, congestion, anomalies,
forecasts and their live accuracy.

Latest states come from the cache (``latest:traffic-sensors:<sensor id>``, written by the store function); a road
segment's state is made of its lanes' sensors. History comes from the streaming job's 5-minute aggregates, or
for 1-minute buckets from the raw ``traffic_flow`` table (:mod:`smartcity.api.traffic_history`). Anomalies are the
windows the streaming anomaly job flagged (``traffic_anomalies``), each with the incident it reported. Forecasts
are what the ``forecast-traffic`` function issued (:mod:`smartcity.api.forecasts`). Every route needs the viewer
role.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Response
from pydantic import BaseModel, Field

from smartcity.api.app import READ_ERRORS, create_api_app, database_work, read_cache_of, viewer
from smartcity.api.caching import NOT_MODIFIED_RESPONSE, cached_read, document_body, latest_state_read, uncached_body
from smartcity.api.forecasts import EntityForecast, ForecastAccuracy, forecast_accuracy, latest_forecast
from smartcity.api.geo import BoundingBox, bounding_box
from smartcity.api.pagination import Cursor, Page, PageSize, decode_cursor, page_by_key, page_of
from smartcity.api.problems import bad_request, not_found, problem_responses
from smartcity.api.timeseries import Bucket, TimeRange, cursor_time, sql_time, time_range
from smartcity.api.traffic_history import (
    History, aggregate_column, check_bucket_count, history_scope, is_small, traffic_history,
)
from smartcity.events.common import Zone
from smartcity.runtime import Context, http_function
from smartcity.storage.latest_state import LatestState

STREAM = "traffic-sensors"
LATEST_TTL_S = 5.0
ANOMALY_SELECT = """sensor_id, segment_id, zone_id, window_start, window_end, metric, value, baseline_median, baseline_mad,
    baseline_samples, robust_z, severity, alert_id, detected_at"""


class SensorState(BaseModel):
    """One lane sensor's latest interval."""

    sensor_id: str
    segment_id: str
    lane_id: int
    zone: str
    lon: float
    lat: float
    observed_at: datetime
    intensity_per_hour: float = Field(description="Vehicles per hour over the last interval")
    occupancy: float = Field(description="Fraction of the interval the loop was covered, 0..1")
    average_speed_kmh: float | None = Field(description="Mean speed; null when no vehicle passed")
    congested: bool


class SegmentState(BaseModel):
    """A road segment's latest state, from its lanes' sensors."""

    segment_id: str
    zone: str
    sensors: int
    congested_lanes: int
    congested: bool = Field(description="True when at least one lane is congested")
    observed_at: datetime = Field(description="The newest of its sensors' observations")
    intensity_per_hour: float = Field(description="Sum over the lanes")
    occupancy: float = Field(description="Mean over the lanes")
    average_speed_kmh: float | None = Field(description="Flow-weighted mean over the lanes; null when none moved")


class Congestion(BaseModel):
    """Congestion over a bounding box, from the latest state of the sensors inside it."""

    bbox: BoundingBox
    sensors: int
    congested_sensors: int
    congested_share: float = Field(description="congested_sensors / sensors; 0 when there are none")
    average_speed_kmh: float | None
    congested_segments: list[SegmentState] = Field(description="The congested segments, most congested lanes first")


class TrafficAnomaly(BaseModel):
    """A sensor's finished 5-minute window that the streaming anomaly job found far off its usual, on one metric."""

    sensor_id: str
    segment_id: str
    zone: str
    window_start: datetime
    window_end: datetime
    metric: Literal["mean_speed_kmh", "mean_occupancy"] = Field(
        description="mean_speed_kmh: unusually slow; mean_occupancy: unusually occupied (both mean congestion)")
    value: float = Field(description="The window's value of the metric")
    baseline_median: float = Field(
        description="Median of the sensor's windows in the same hour of the day (city time) over the 28 days before")
    baseline_mad: float = Field(description="Median absolute deviation of those windows")
    baseline_samples: int = Field(description="How many windows the baseline had")
    robust_z: float = Field(description="0.6745 (value - median) / MAD; flagged beyond 3.5 on the congestion side")
    severity: Literal["low", "medium", "high"] = Field(description="|z| up to 5 low, up to 8 medium, beyond high")
    incident_id: str = Field(
        description="The incident the job reported for the window (one per window, whatever its metrics): "
                    "/v1/incidents/{incident_id} is its case, once the incident has reached the incidents store")
    detected_at: datetime


def anomaly(row: dict[str, Any]) -> TrafficAnomaly:
    return TrafficAnomaly(**row, zone=row["zone_id"], incident_id=row["alert_id"])


def sensor_state(state: dict[str, Any]) -> SensorState:
    data = state["data"]
    lon, lat = data["location"]["coordinates"]
    return SensorState(
        sensor_id=state["entity_id"],
        segment_id=data["refRoadSegment"],
        lane_id=data["laneId"],
        zone=data["zone"],
        lon=lon,
        lat=lat,
        observed_at=data["dateObserved"],
        intensity_per_hour=data["intensityPerHour"],
        occupancy=data["occupancy"],
        average_speed_kmh=data.get("averageVehicleSpeed"),
        congested=data["congested"],
    )


def segment_states(sensors: list[SensorState]) -> list[SegmentState]:
    """Each segment's state from its sensors, sorted by segment id."""
    by_segment: dict[str, list[SensorState]] = {}
    for sensor in sensors:
        by_segment.setdefault(sensor.segment_id, []).append(sensor)
    return [segment_state(segment_id, lanes) for segment_id, lanes in sorted(by_segment.items())]


def segment_state(segment_id: str, lanes: list[SensorState]) -> SegmentState:
    moving = [lane for lane in lanes if lane.average_speed_kmh is not None and lane.intensity_per_hour > 0]
    flow = sum(lane.intensity_per_hour for lane in moving)
    speed = sum(lane.average_speed_kmh * lane.intensity_per_hour for lane in moving) / flow if flow else None
    congested = sum(lane.congested for lane in lanes)
    return SegmentState(
        segment_id=segment_id,
        zone=lanes[0].zone,
        sensors=len(lanes),
        congested_lanes=congested,
        congested=congested > 0,
        observed_at=max(lane.observed_at for lane in lanes),
        intensity_per_hour=sum(lane.intensity_per_hour for lane in lanes),
        occupancy=sum(lane.occupancy for lane in lanes) / len(lanes),
        average_speed_kmh=speed,
    )


@http_function
def create_app(context: Context) -> FastAPI:
    app = create_api_app("traffic", "Road traffic: sensors, road segments, history, congestion.", context)
    router = APIRouter(prefix="/v1/traffic", dependencies=[Depends(viewer)], responses=READ_ERRORS)
    latest = LatestState(context.cache, context.settings.latest_state_ttl_s)

    def all_sensors() -> list[SensorState]:
        return [sensor_state(state) for state in latest.read_all(STREAM)]

    @router.get("/sensors", response_model=Page[SensorState], responses=NOT_MODIFIED_RESPONSE)
    def list_sensors(
        request: Request,
        limit: PageSize = 100,
        cursor: Cursor = None,
        zone: Zone | None = None,
        segment_id: str | None = None,
        congested: bool | None = None,
    ) -> Response:
        """The latest state of every sensor, by sensor id."""
        filters = {"zone": zone, "segment_id": segment_id, "congested": congested}

        def produce() -> Page[SensorState]:
            rows = (
                sensor for sensor in all_sensors()
                if (zone is None or sensor.zone == zone)
                and (segment_id is None or sensor.segment_id == segment_id)
                and (congested is None or sensor.congested == congested)
            )
            return page_by_key(Page[SensorState], rows, lambda s: s.sensor_id, limit, cursor, filters)

        return cached_read(request, read_cache_of(request), produce, ttl_s=LATEST_TTL_S)

    @router.get("/sensors/{sensor_id}", response_model=SensorState,
                responses={**NOT_MODIFIED_RESPONSE, **problem_responses(404)})
    def get_sensor(request: Request, sensor_id: str) -> Response:
        """The latest state of one sensor (its NGSI-LD id)."""
        return latest_state_read(request, latest.read(STREAM, sensor_id), sensor_state, f"sensor {sensor_id}")

    @router.get("/segments", response_model=Page[SegmentState], responses=NOT_MODIFIED_RESPONSE)
    def list_segments(
        request: Request,
        limit: PageSize = 100,
        cursor: Cursor = None,
        zone: Zone | None = None,
        congested: bool | None = None,
    ) -> Response:
        """The latest state of every road segment that has sensors, by segment id."""
        filters = {"zone": zone, "congested": congested}

        def produce() -> Page[SegmentState]:
            rows = (
                segment for segment in segment_states(all_sensors())
                if (zone is None or segment.zone == zone) and (congested is None or segment.congested == congested)
            )
            return page_by_key(Page[SegmentState], rows, lambda s: s.segment_id, limit, cursor, filters)

        return cached_read(request, read_cache_of(request), produce, ttl_s=LATEST_TTL_S)

    @router.get("/segments/{segment_id}", response_model=SegmentState,
                responses={**NOT_MODIFIED_RESPONSE, **problem_responses(404)})
    def get_segment(request: Request, segment_id: str) -> Response:
        """The latest state of one road segment (its NGSI-LD id), from its lanes' sensors."""
        def produce() -> SegmentState:
            lanes = [sensor for sensor in all_sensors() if sensor.segment_id == segment_id]
            if not lanes:
                raise not_found(f"road segment {segment_id} (no sensor reports on it)")
            return segment_state(segment_id, lanes)

        return cached_read(request, read_cache_of(request), produce, ttl_s=LATEST_TTL_S)

    @router.get("/history", response_model=History, responses=NOT_MODIFIED_RESPONSE)
    async def history(
        request: Request,
        period: Annotated[TimeRange, Depends(time_range)],
        bucket: Bucket = Bucket.fifteen_minutes,
        sensor_id: str | None = None,
        segment_id: str | None = None,
        zone: Zone | None = None,
        limit: PageSize = 100,
        cursor: Cursor = None,
    ) -> Response:
        """Traffic over ``from``..``to`` in buckets, for one sensor, one segment, one zone, or the whole city.

        Buckets of 5 minutes or more (`5m`, `15m`, `1h`, `1d`) read the streaming job's 5-minute aggregates
        (`source: aggregates`): a sensor's from `traffic_sensor_5min`, a segment's, a zone's or the city's from
        `traffic_segment_5min`, re-aggregated into the bucket (vehicle-weighted speeds). They cover what the
        streaming job has written: the newest minutes, its lag, come with its next micro-batch, and
        `aggregated_until` says how far they reach. Speed percentiles are given for one sensor or segment at `5m`
        only. A window is in the range when it starts in it. `1m` buckets read the raw readings
        (`source: raw`, table `traffic_flow`), up to the last one stored.
        """
        scope = history_scope(sensor_id, segment_id, zone)
        check_bucket_count(period, bucket)
        database = context.database
        document = await database_work(
            database, lambda: traffic_history(database, scope, bucket, period, limit, cursor),
            small=is_small(scope, period, bucket))
        return uncached_body(request, document_body(document))

    @router.get("/anomalies", response_model=Page[TrafficAnomaly], responses=NOT_MODIFIED_RESPONSE)
    def anomalies(
        request: Request,
        period: Annotated[TimeRange, Depends(time_range)],
        sensor_id: str | None = None,
        segment_id: str | None = None,
        zone: Zone | None = None,
        metric: Literal["mean_speed_kmh", "mean_occupancy"] | None = None,
        severity: Literal["low", "medium", "high"] | None = None,
        limit: PageSize = 100,
        cursor: Cursor = None,
    ) -> Response:
        """The windows the streaming anomaly job flagged in ``from``..``to`` (by window start), newest first.

        One item per window and metric, with the baseline it was judged against. The job also reported each
        flagged window as an incident (`incident_id`), which `/v1/incidents` serves with its workflow; this route
        gives the measurements behind it. At most one of `sensor_id`, `segment_id`, `zone`.
        """
        scope = history_scope(sensor_id, segment_id, zone)
        filters = {"scope": scope.kind, "value": scope.value, "metric": metric, "severity": severity,
                   **period.cursor_filters}

        def produce() -> Page[TrafficAnomaly]:
            after = decode_cursor(cursor, filters, (str, str, str))
            params = {"start": sql_time(period.start), "end": sql_time(period.end), "scope": scope.value,
                      "metric": metric, "severity": severity, "fetch": limit + 1}
            conditions = ["window_start >= :start", "window_start < :end"]
            if scope.value is not None:
                conditions.append(f"{aggregate_column(scope.kind)} = :scope")
            conditions += [f"{name} = :{name}" for name in ("metric", "severity") if params[name] is not None]
            if after:
                conditions.append("(window_start, sensor_id, metric) < (:after_start, :after_sensor, :after_metric)")
                params.update(after_start=sql_time(cursor_time(after[0])), after_sensor=after[1], after_metric=after[2])
            rows = context.database.query(
                f"SELECT {ANOMALY_SELECT} FROM traffic_anomalies WHERE {' AND '.join(conditions)} "
                "ORDER BY window_start DESC, sensor_id DESC, metric DESC LIMIT :fetch", params)
            items, next_cursor = page_of([anomaly(row) for row in rows], limit,
                                         lambda a: [a.window_start.isoformat(), a.sensor_id, a.metric], filters)
            return Page[TrafficAnomaly](items=items, next_cursor=next_cursor)

        return cached_read(request, read_cache_of(request), produce, ttl_s=LATEST_TTL_S)

    @router.get("/congestion", response_model=Congestion, responses=NOT_MODIFIED_RESPONSE)
    def congestion(request: Request, bbox: Annotated[BoundingBox, Depends(bounding_box)]) -> Response:
        """How congested the area is now: its sensors' latest states, and its congested segments."""
        def produce() -> Congestion:
            inside = [sensor for sensor in all_sensors() if bbox.contains(sensor.lon, sensor.lat)]
            congested = [sensor for sensor in inside if sensor.congested]
            speeds = [sensor.average_speed_kmh for sensor in inside if sensor.average_speed_kmh is not None]
            segments = [segment for segment in segment_states(inside) if segment.congested]
            return Congestion(
                bbox=bbox,
                sensors=len(inside),
                congested_sensors=len(congested),
                congested_share=len(congested) / len(inside) if inside else 0.0,
                average_speed_kmh=sum(speeds) / len(speeds) if speeds else None,
                congested_segments=sorted(segments, key=lambda s: (-s.congested_lanes, s.segment_id)),
            )

        return cached_read(request, read_cache_of(request), produce, ttl_s=LATEST_TTL_S)

    @router.get("/forecast", response_model=EntityForecast,
                responses={**NOT_MODIFIED_RESPONSE, **problem_responses(400, 404)})
    def forecast(
        request: Request,
        segment_id: str | None = None,
        sensor_id: str | None = None,
        metric: Literal["speed", "flow"] = "speed",
    ) -> Response:
        """The newest forecasts of one road segment or one sensor: P10/P50/P90 of its mean speed (km/h) or flow
        (vehicles/h) 15, 30 and 60 minutes after its last closed 5-minute window, by the promoted model (name and
        version), beside the historical average for the same origin. Give exactly one of `segment_id`, `sensor_id`.
        """
        if (segment_id is None) == (sensor_id is None):
            raise bad_request("query.segment_id", "give exactly one of segment_id and sensor_id")
        target = f"{'segment' if segment_id else 'sensor'}-{metric}"
        entity = segment_id or sensor_id
        return cached_read(request, read_cache_of(request), lambda: latest_forecast(context.database, target, entity),
                           ttl_s=LATEST_TTL_S)

    @router.get("/forecast/accuracy", response_model=ForecastAccuracy, responses=NOT_MODIFIED_RESPONSE)
    def forecast_accuracy_route(
        request: Request,
        target: Literal["segment-speed", "segment-flow", "sensor-speed", "sensor-flow"] = "segment-speed",
        hours: Annotated[float, Query(gt=0, le=24 * 28)] = 24.0,
    ) -> Response:
        """Live accuracy: the mean absolute error and P10-P90 coverage, per horizon, of the forecasts whose window
        has closed in the last `hours`, for the served model and for the historical average on the same windows."""
        return cached_read(request, read_cache_of(request),
                           lambda: forecast_accuracy(context.database, target, hours), ttl_s=LATEST_TTL_S)

    app.include_router(router)
    return app
