"""api-traffic: ``/v1/traffic`` — latest state per sensor and road segment, history, congestion over an area.

Latest states come from the cache (``latest:traffic-sensors:<sensor id>``, written by the store function); a road
segment's state is made of its lanes' sensors. History comes from the ``traffic_flow`` table, grouped into
buckets. Every route needs the viewer role.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from pydantic import BaseModel, Field

from smartcity.api.app import READ_ERRORS, create_api_app, read_cache_of, viewer
from smartcity.api.caching import NOT_MODIFIED_RESPONSE, cached_read, latest_state_read, uncached_read
from smartcity.api.geo import BoundingBox, bounding_box
from smartcity.api.pagination import Cursor, Page, PageSize, decode_cursor, page_by_key, page_of
from smartcity.api.problems import bad_request, not_found, problem_responses
from smartcity.api.timeseries import Bucket, TimeRange, bucket_sql, from_epoch, sql_time, time_range
from smartcity.events.common import Zone
from smartcity.runtime import Context, http_function
from smartcity.storage.latest_state import LatestState

STREAM = "traffic-sensors"
LATEST_TTL_S = 5.0
MAX_BUCKETS = 2000


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


class HistoryBucket(BaseModel):
    bucket_start: datetime
    samples: int = Field(description="Sensor intervals in the bucket")
    vehicles: int = Field(description="Vehicles counted in the bucket")
    intensity_per_hour: float = Field(description="Mean hourly rate per sensor interval")
    occupancy: float
    average_speed_kmh: float | None
    congested_share: float = Field(description="Fraction of the intervals that were congested, 0..1")


class History(Page[HistoryBucket]):
    bucket: Bucket
    start: datetime = Field(description="The query's `from`")
    end: datetime = Field(description="The query's `to`")


class Congestion(BaseModel):
    """Congestion over a bounding box, from the latest state of the sensors inside it."""

    bbox: BoundingBox
    sensors: int
    congested_sensors: int
    congested_share: float = Field(description="congested_sensors / sensors; 0 when there are none")
    average_speed_kmh: float | None
    congested_segments: list[SegmentState] = Field(description="The congested segments, most congested lanes first")


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


def history_filter(sensor_id: str | None, segment_id: str | None, zone: str | None) -> tuple[str, dict[str, Any]]:
    """The SQL condition of at most one of the history filters."""
    given = {name: value for name, value in
             (("entity_id", sensor_id), ("segment_id", segment_id), ("zone_id", zone)) if value is not None}
    if len(given) > 1:
        raise bad_request("query.sensor_id", "give at most one of sensor_id, segment_id and zone")
    if not given:
        return "", {}
    ((column, value),) = given.items()
    return f" AND {column} = :{column}", {column: value}


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
    def history(
        request: Request,
        period: Annotated[TimeRange, Depends(time_range)],
        bucket: Bucket = Bucket.fifteen_minutes,
        sensor_id: str | None = None,
        segment_id: str | None = None,
        zone: Zone | None = None,
        limit: PageSize = 100,
        cursor: Cursor = None,
    ) -> Response:
        """Traffic over ``from``..``to`` in buckets, for one sensor, one segment, one zone, or the whole city."""
        if period.seconds / bucket.seconds > MAX_BUCKETS:
            raise bad_request("query.bucket", f"{bucket.value} buckets over this range exceed {MAX_BUCKETS}")
        condition, params = history_filter(sensor_id, segment_id, zone)
        filters = {**params, "from": period.start, "to": period.end, "bucket": bucket.value}
        after = decode_cursor(cursor, filters, (int,))
        start = max(period.start, from_epoch(after[0] + bucket.seconds)) if after else period.start
        database = context.database
        bucket_start = bucket_sql(database.dialect, "observed_at", bucket.seconds)
        rows = database.query(
            f"""SELECT {bucket_start} AS bucket_start, COUNT(*) AS samples, SUM(intensity) AS vehicles,
                       AVG(intensity_per_hour) AS intensity_per_hour, AVG(occupancy) AS occupancy,
                       AVG(average_vehicle_speed) AS average_speed_kmh,
                       AVG(CASE WHEN congested THEN 1.0 ELSE 0.0 END) AS congested_share
                FROM traffic_flow
                WHERE observed_at >= :start AND observed_at < :end{condition}
                GROUP BY 1 ORDER BY 1 LIMIT :fetch""",
            {**params, "start": sql_time(start), "end": sql_time(period.end),
             "fetch": limit + 1},
        )
        items, next_cursor = page_of(rows, limit, lambda row: [int(row["bucket_start"])], filters)
        return uncached_read(request, lambda: History.model_validate({
            "items": [HistoryBucket(**{**row, "bucket_start": from_epoch(row["bucket_start"])}) for row in items],
            "next_cursor": next_cursor, "bucket": bucket, "start": period.start, "end": period.end,
        }))

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

    app.include_router(router)
    return app
