"""Events the platform derives from the streams, for its own functions: closed 5-minute windows, forecasts and
hotspots.

They are not city readings (no ingest, no NGSI-LD entity of their own), so they are plain pydantic models beside
the eight streams' contracts:

- ``traffic-windows`` (``city.traffic.window.closed.v1``): a sensor's 5-minute window, published once by the
  streaming job when the watermark has passed its end. What the forecasting and anomaly functions trigger on.
- ``forecasts`` (``city.traffic.forecast.issued.v1``): one forecast of one target (``segment-speed`` ...) of one
  road segment or sensor, for one horizon, by one model version.
- ``hotspots`` (``city.traffic.hotspot.updated.v1``): a spatial hotspot of anomalies and incidents (DBSCAN in
  space and time, :mod:`models.anomaly.hotspots`) that appeared or changed (``active``), or that is over
  (``cleared``), published by the ``cluster-hotspots`` function.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class TrafficWindow(BaseModel):
    """A sensor's finished 5-minute aggregate (the columns of ``traffic_sensor_5min`` that describe it)."""

    model_config = ConfigDict(extra="ignore", frozen=True, allow_inf_nan=False)

    sensor_id: str = Field(min_length=1)
    segment_id: str = Field(min_length=1)
    zone_id: str = Field(min_length=1)
    lane_id: int = Field(ge=0)
    lon: float
    lat: float
    window_start: AwareDatetime
    window_end: AwareDatetime
    flow_per_hour: float = Field(ge=0)
    mean_speed_kmh: float | None = Field(None, ge=0)
    mean_occupancy: float = Field(ge=0, le=1)
    congestion_index: float


class TrafficForecast(BaseModel):
    """P10/P50/P90 of a target ``horizon_min`` minutes after the window that started at ``origin``."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    target: str = Field(description="What is forecast, e.g. segment-speed (models.targets)")
    entity_id: str = Field(description="The road segment or sensor (NGSI-LD id)")
    origin: AwareDatetime = Field(description="Start of the last observed 5-minute window")
    horizon_min: int = Field(gt=0)
    target_time: AwareDatetime = Field(description="Start of the forecast window: origin + horizon")
    p10: float
    p50: float
    p90: float
    model: str
    model_version: str
    issued_at: AwareDatetime


class TrafficHotspot(BaseModel):
    """A cluster of recent anomalies and incidents, close in space and in time."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    id: str = Field(description="Fixed by the hotspot's oldest member: the same while it grows")
    status: Literal["active", "cleared"] = Field(description="cleared: its members are no longer recent or close")
    computed_at: AwareDatetime = Field(description="When the clustering that found (or lost) it ran")
    lon: float = Field(description="Centroid longitude (WGS84): the mean of the members'")
    lat: float = Field(description="Centroid latitude (WGS84)")
    zone: str = Field(description="The city zone of the centroid")
    extent: dict[str, Any] = Field(description="GeoJSON Polygon around the members (convex hull, or a small box)")
    members: list[str] = Field(description="Ids of the member anomalies and incidents (Alert ids), oldest first")
    anomalies: int = Field(ge=0, description="How many members a detector flagged")
    incidents: int = Field(ge=0, description="How many members were reported incidents")
    size: int = Field(ge=1)
    since: AwareDatetime = Field(description="When its first member began")
    last_seen: AwareDatetime = Field(description="The newest moment a member was seen")


@dataclass(frozen=True)
class DerivedStream:
    topic: str
    ce_type: str
    model: type[BaseModel]


TRAFFIC_WINDOWS = DerivedStream("traffic-windows", "city.traffic.window.closed.v1", TrafficWindow)
FORECASTS = DerivedStream("forecasts", "city.traffic.forecast.issued.v1", TrafficForecast)
HOTSPOTS = DerivedStream("hotspots", "city.traffic.hotspot.updated.v1", TrafficHotspot)
DERIVED_STREAMS = {stream.topic: stream for stream in (TRAFFIC_WINDOWS, FORECASTS, HOTSPOTS)}
