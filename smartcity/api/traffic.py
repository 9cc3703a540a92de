"""Road traffic for ``/v1/traffic``: the models of its answers and the reads behind them.

A sensor's state is its latest reading in the cache (``latest:traffic-sensors:<sensor id>``, written by the store
function); a road segment's state is made of its lanes' sensors; congestion over an area, of the sensors inside
it. Anomalies are the windows the streaming anomaly job flagged (``traffic_anomalies``), each with the incident it
reported. (History is :mod:`smartcity.api.traffic_history`, forecasts :mod:`smartcity.api.forecasts`.)
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from smartcity.api.geo import BoundingBox
from smartcity.api.latest_routes import Filters, LatestEntities, stream_entities
from smartcity.api.pagination import Page, decode_cursor, page_of
from smartcity.api.timeseries import TimeRange, city_time, cursor_time, sql_time
from smartcity.api.traffic_history import Scope, aggregate_column
from smartcity.backends.database import Database
from smartcity.events.common import Zone
from smartcity.storage.latest_state import LatestState

STREAM = "traffic-sensors"
ANOMALY_SELECT = """sensor_id, segment_id, zone_id, window_start, window_end, metric, value, baseline_median, baseline_mad,
    baseline_samples, robust_z, severity, alert_id, detected_at"""
AnomalyMetric = Literal["mean_speed_kmh", "mean_occupancy"]
AnomalySeverity = Literal["low", "medium", "high"]


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
        observed_at=city_time(data["dateObserved"]),
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


def all_sensors(latest: LatestState) -> list[SensorState]:
    return [sensor_state(state) for state in latest.read_all(STREAM)]


def one_segment(latest: LatestState, segment_id: str) -> SegmentState | None:
    lanes = [sensor for sensor in all_sensors(latest) if sensor.segment_id == segment_id]
    return segment_state(segment_id, lanes) if lanes else None


def sensor_filters(zone: Zone | None = None, segment_id: str | None = None, congested: bool | None = None) -> Filters:
    return Filters({"zone": zone, "segment_id": segment_id, "congested": congested})


def segment_filters(zone: Zone | None = None, congested: bool | None = None) -> Filters:
    return Filters({"zone": zone, "congested": congested})


def segments_after(latest: LatestState, after: str | None) -> list[SegmentState]:
    """The segments after ``after`` by id; made of every sensor's state (read from the index, a page at a time)."""
    return [segment for segment in segment_states(all_sensors(latest)) if after is None or segment.segment_id > after]


SENSORS = stream_entities(STREAM, SensorState, sensor_state, lambda sensor: sensor.sensor_id, "sensor {}")
SEGMENTS = LatestEntities(SegmentState, segments_after, one_segment,
                          lambda segment: segment.segment_id, "road segment {} (no sensor reports on it)")


def area_congestion(sensors: list[SensorState], bbox: BoundingBox) -> Congestion:
    """How congested ``bbox`` is, from the latest states of the sensors inside it."""
    inside = [sensor for sensor in sensors if bbox.contains(sensor.lon, sensor.lat)]
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


def flagged_windows(database: Database, scope: Scope, period: TimeRange, metric: AnomalyMetric | None,
                    severity: AnomalySeverity | None, limit: int, cursor: str | None) -> Page[TrafficAnomaly]:
    """The windows flagged in ``period`` (by window start) within ``scope``, newest first, a page of them."""
    filters = {"scope": scope.kind, "value": scope.value, "metric": metric, "severity": severity,
               **period.cursor_filters}
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
    rows = database.query(
        f"SELECT {ANOMALY_SELECT} FROM traffic_anomalies WHERE {' AND '.join(conditions)} "
        "ORDER BY window_start DESC, sensor_id DESC, metric DESC LIMIT :fetch", params)
    items, next_cursor = page_of([anomaly(row) for row in rows], limit,
                                 lambda a: [a.window_start.isoformat(), a.sensor_id, a.metric], filters)
    return Page[TrafficAnomaly](items=items, next_cursor=next_cursor)
