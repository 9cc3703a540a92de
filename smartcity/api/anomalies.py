"""``/v1/incidents/anomalies`` and ``/v1/incidents/hotspots``: what the anomaly models found, and where it clusters.

Anomalies are the windows the ``detect-anomalies`` function scored (``anomaly_scores``, migration 0310): by
default those at or above the alert threshold (each reported as an incident, ``incident_id``), or every score
from ``min_score`` on; with the model, its version, the calibrated score and the features that weighed most.
(The streaming job's robust z-score flags are ``/v1/traffic/anomalies``.) Hotspots are the active clusters of
``traffic_hotspots`` (``cluster-hotspots``), as a GeoJSON FeatureCollection.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from smartcity.api.pagination import Page, decode_cursor, page_of
from smartcity.api.timeseries import TimeRange, cursor_time, sql_time
from smartcity.backends.database import Database

ANOMALY_COLUMNS = """entity_id, target, sensor_id, segment_id, zone_id, lon, lat, window_start, window_end, model,
    model_version, score, basis, contributions, flagged, alert_id, scored_at"""


class ModelAnomaly(BaseModel):
    """A 5-minute window an anomaly model scored."""

    entity_id: str = Field(description="The sensor or road segment scored (see target)")
    target: str = Field(description="anomaly-sensor or anomaly-segment")
    sensor_id: str = Field(description="The sensor whose closed window triggered the scoring")
    segment_id: str
    zone: str
    lon: float
    lat: float
    window_start: datetime
    window_end: datetime
    model: str = Field(description="The detector: isolation-forest, autoencoder, zscore ...")
    model_version: str = Field(description="Its version in the model registry")
    score: float = Field(description="Calibrated anomaly score, 0 usual .. 1 rarer than every normal training window")
    basis: Literal["series", "road-class", "global"] = Field(
        description="series: the entity's own model; road-class or global: a cold start (a new sensor)")
    contributions: dict[str, float] = Field(description="The features that weighed most, weights summing to 1")
    flagged: bool = Field(description="The score reached the alert threshold (SMARTCITY_ANOMALY_THRESHOLD)")
    incident_id: str | None = Field(
        description="The incident reported for a flagged window: /v1/incidents/{incident_id} is its case")
    scored_at: datetime


def model_anomaly(row: dict[str, Any]) -> ModelAnomaly:
    return ModelAnomaly(**{**row, "zone": row["zone_id"], "incident_id": row["alert_id"],
                           "flagged": bool(row["flagged"]), "contributions": json.loads(row["contributions"])})


def anomaly_page(database: Database, period: TimeRange, filters: dict[str, Any], limit: int, cursor: str | None
                 ) -> Page[ModelAnomaly]:
    """Scores of windows starting in ``period``, newest first, filtered by ``entity_id``, ``segment_id``,
    ``zone``, ``model`` and ``min_score`` (default: the flagged ones)."""
    after = decode_cursor(cursor, filters, (str, str, str))
    params: dict[str, Any] = {"start": sql_time(period.start), "end": sql_time(period.end), "fetch": limit + 1}
    conditions = ["window_start >= :start", "window_start < :end"]
    for name, column in (("entity_id", "entity_id"), ("segment_id", "segment_id"), ("zone", "zone_id"),
                         ("model", "model")):
        if filters.get(name) is not None:
            conditions.append(f"{column} = :{name}")
            params[name] = filters[name]
    if filters.get("min_score") is None:
        conditions.append("flagged")
    else:
        conditions.append("score >= :min_score")
        params["min_score"] = filters["min_score"]
    if after:
        conditions.append("(window_start, entity_id, model) < (:after_start, :after_entity, :after_model)")
        params.update(after_start=sql_time(cursor_time(after[0])), after_entity=after[1], after_model=after[2])
    rows = database.query(f"SELECT {ANOMALY_COLUMNS} FROM anomaly_scores WHERE {' AND '.join(conditions)} "
                          "ORDER BY window_start DESC, entity_id DESC, model DESC LIMIT :fetch", params)
    items, next_cursor = page_of([model_anomaly(row) for row in rows], limit,
                                 lambda a: [a.window_start.isoformat(), a.entity_id, a.model], filters)
    return Page[ModelAnomaly](items=items, next_cursor=next_cursor)


class Geometry(BaseModel):
    type: Literal["Point", "Polygon"]
    coordinates: list[Any] = Field(description="GeoJSON coordinates: [lon, lat], or rings of [lon, lat]")


class HotspotProperties(BaseModel):
    id: str = Field(description="Fixed by the oldest member: the same while the hotspot grows")
    size: int = Field(description="How many anomalies and incidents it holds")
    anomalies: int = Field(description="Members a detector flagged")
    incidents: int = Field(description="Members reported as incidents")
    members: list[str] = Field(description="Incident ids (the alerts of flagged windows included), oldest first: "
                                           "/v1/incidents/{id}")
    since: datetime = Field(description="When its first member began")
    last_seen: datetime = Field(description="The newest moment a member was seen")
    zone: str
    centroid: tuple[float, float] = Field(description="[lon, lat]: the mean of the members' places")
    computed_at: datetime = Field(description="When the clustering that found it ran")


class HotspotFeature(BaseModel):
    type: Literal["Feature"] = "Feature"
    id: str
    geometry: Geometry
    properties: HotspotProperties


class HotspotCollection(BaseModel):
    """The current hotspots, largest first, as GeoJSON."""

    type: Literal["FeatureCollection"] = "FeatureCollection"
    features: list[HotspotFeature]


def current_hotspots(database: Database, geometry: Literal["extent", "centroid"], zone: str | None = None
                     ) -> HotspotCollection:
    """The active hotspots (of ``zone``, when given): their extent polygon or their centroid point."""
    where, params = ("active AND zone_id = :zone", {"zone": zone}) if zone else ("active", {})
    rows = database.query(f"SELECT * FROM traffic_hotspots WHERE {where} ORDER BY size DESC, since, id", params)
    return HotspotCollection(features=[hotspot_feature(row, geometry) for row in rows])


def hotspot_feature(row: dict[str, Any], geometry: Literal["extent", "centroid"]) -> HotspotFeature:
    shape = (json.loads(row["extent"]) if geometry == "extent"
             else {"type": "Point", "coordinates": [row["lon"], row["lat"]]})
    properties = HotspotProperties(**{**row, "zone": row["zone_id"], "members": json.loads(row["members"]),
                                      "centroid": (row["lon"], row["lat"])})
    return HotspotFeature(id=row["id"], geometry=Geometry(**shape), properties=properties)
