"""The relational schema, once: SQLAlchemy Core tables from which the PostgreSQL and SQLite DDL are derived.

:func:`metadata_for` builds the tables for one dialect. They differ only where the engines do:

- the stream tables (one per stream, their columns worked out from the event models by
  :mod:`smartcity.storage.tables`) are range-partitioned by ``observed_at`` on PostgreSQL, one partition per UTC day
  (:mod:`smartcity.storage.partitions` creates them), so their key is ``(event_id, observed_at)`` as partitioning
  requires; on SQLite the key is ``event_id`` and an index on ``observed_at`` stands in for partition pruning;
- times are ``timestamptz`` on PostgreSQL and UTC ISO 8601 text on SQLite, booleans ``boolean`` and 0/1, floats
  ``double precision`` and ``REAL``.

JSON values (an alert's ``contributions``, a hotspot's ``extent`` and ``members``) are JSON text on both, as the
writers and readers expect. Keys are those the upserts name (:mod:`smartcity.storage.upsert`). No foreign keys
between events and reference rows: an event may name an entity before its reference row is loaded.

Changing a table: change it here, and add an Alembic revision under ``alembic/versions/`` that makes the same
change to existing databases (``smartcity db status`` lists any difference between a database and this module).
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, Column, DateTime, Double, ForeignKey, Index, Integer, MetaData,
    PrimaryKeyConstraint, Table, Text, func, text,
)
from sqlalchemy.dialects.sqlite import REAL
from sqlalchemy.types import TypeEngine

from smartcity.events import STREAMS
from smartcity.storage.tables import STREAM_TABLES, Column as StreamColumn
from smartcity.storage.traffic_hourly import MEASURES, ROLLUPS

DIALECTS = ("postgresql", "sqlite")
NAMING_CONVENTION = {  # PostgreSQL's own default names, so that databases made by the old SQL files match
    "ix": "%(table_name)s_%(column_0_N_name)s",
    "uq": "%(table_name)s_%(column_0_name)s_key",
    "ck": "%(table_name)s_%(constraint_name)s",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "pk": "%(table_name)s_pkey",
}

UTC_TIME = DateTime(timezone=True).with_variant(Text(), "sqlite")
DOUBLE = Double().with_variant(REAL(), "sqlite")
COUNT = BigInteger().with_variant(Integer(), "sqlite")
FLAG = Boolean().with_variant(Integer(), "sqlite")
TYPE_OF_KIND: dict[str, TypeEngine] = {
    "text": Text(), "integer": Integer(), "double": DOUBLE, "boolean": FLAG, "timestamp": UTC_TIME, "json": Text(),
}

# The columns each stream table is read by (its descriptor's ``indexes``), each indexed with observed_at
# (``<table>_<column>_time``).
STREAM_INDEXES = {STREAMS[topic].table: STREAMS[topic].indexes for topic in STREAM_TABLES}


def required(name: str, type_: TypeEngine, *constraints: ForeignKey, **options) -> Column:
    return Column(name, type_, *constraints, nullable=False, **options)


def optional(name: str, type_: TypeEngine) -> Column:
    return Column(name, type_, nullable=True)


@cache
def metadata_for(dialect: str) -> MetaData:
    """Every table of the platform as ``dialect`` (``postgresql`` or ``sqlite``) holds it."""
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; known: {', '.join(DIALECTS)}")
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    _reference_tables(metadata)
    for stream_table in STREAM_TABLES.values():
        _stream_table(metadata, stream_table.table, stream_table.columns, partitioned=dialect == "postgresql")
    _streaming_aggregates(metadata)
    _hourly_rollups(metadata)
    _incident_cases(metadata)
    _model_outputs(metadata)
    return metadata


def _stream_table(metadata: MetaData, name: str, columns: list[StreamColumn], partitioned: bool) -> Table:
    table = Table(
        name, metadata,
        *(Column(c.name, TYPE_OF_KIND[c.kind], nullable=c.nullable) for c in columns),
        required("stored_at", UTC_TIME, server_default=func.now()),
        PrimaryKeyConstraint("event_id", "observed_at") if partitioned else PrimaryKeyConstraint("event_id"),
        **({"postgresql_partition_by": "RANGE (observed_at)"} if partitioned else {}),
    )
    for column in STREAM_INDEXES[name]:
        Index(f"{name}_{column}_time", table.c[column], table.c.observed_at)
    if not partitioned:
        Index(f"{name}_time", table.c.observed_at)
    return table


def _position() -> list[Column]:
    return [required("lon", DOUBLE), required("lat", DOUBLE)]


def _reference_tables(metadata: MetaData) -> None:
    """The city's fixed things that events refer to (``smartcity db load-reference``); ids are the events'."""
    Table(
        "zones", metadata, Column("zone_id", Text(), primary_key=True),
        required("row_number", Integer()), required("col_number", Integer()),
        *(required(side, DOUBLE) for side in ("west", "south", "east", "north")),
    )
    segments = Table(
        "road_segments", metadata, Column("segment_id", Text(), primary_key=True), optional("name", Text()),
        required("zone_id", Text()), required("lanes", Integer()), required("length_m", DOUBLE),
        required("speed_limit_kmh", DOUBLE), *_position(),
    )
    sensors = Table(
        "sensors", metadata, Column("sensor_id", Text(), primary_key=True), required("segment_id", Text()),
        required("lane_id", Integer()), required("zone_id", Text()), *_position(),
    )
    Table(
        "routes", metadata, Column("route_id", Text(), primary_key=True), required("short_name", Text()),
        optional("long_name", Text()), required("route_type", Text()),
    )
    stops = Table(
        "stops", metadata, Column("stop_id", Text(), primary_key=True), required("name", Text()),
        required("zone_id", Text()), *_position(),
    )
    stations = Table(  # bike-share docks, weather and air-quality stations, told apart by kind (their stream)
        "stations", metadata, Column("station_id", Text(), primary_key=True), required("kind", Text()),
        required("name", Text()), required("zone_id", Text()), optional("capacity", Integer()), *_position(),
        CheckConstraint("kind IN ('bike-share', 'weather', 'air-quality')", name="kind_check"),
    )
    parkings = Table(
        "parkings", metadata, Column("parking_id", Text(), primary_key=True), required("name", Text()),
        required("zone_id", Text()), optional("segment_id", Text()), required("capacity", Integer()), *_position(),
    )
    Index("road_segments_zone", segments.c.zone_id)
    Index("sensors_segment", sensors.c.segment_id)
    Index("sensors_zone", sensors.c.zone_id)
    Index("stops_zone", stops.c.zone_id)
    Index("stations_kind_zone", stations.c.kind, stations.c.zone_id)
    Index("parkings_zone", parkings.c.zone_id)


def _window(*key: Column) -> list[Column]:
    """A 5-minute window's key columns: the entity, then window_start and window_end."""
    return [*key, required("window_start", UTC_TIME), required("window_end", UTC_TIME)]


def _speeds_and_occupancy() -> list[Column]:
    return [
        required("event_count", COUNT), required("flow", COUNT), required("flow_per_hour", DOUBLE),
        *(optional(name, DOUBLE) for name in ("mean_speed_kmh", "speed_p50_kmh", "speed_p85_kmh", "speed_p95_kmh")),
        required("mean_occupancy", DOUBLE), required("congestion_index", DOUBLE),
        required("last_event_at", UTC_TIME), required("updated_at", UTC_TIME),
    ]


def _streaming_aggregates(metadata: MetaData) -> None:
    """The streaming jobs' 5-minute windows and anomaly flags, upserted by (entity, window_start[, metric])."""
    sensor = Table(
        "traffic_sensor_5min", metadata, *_window(required("sensor_id", Text())),
        required("segment_id", Text()), required("zone_id", Text()), required("lane_id", Integer()), *_position(),
        *_speeds_and_occupancy(), PrimaryKeyConstraint("sensor_id", "window_start"),
    )
    segment = Table(
        "traffic_segment_5min", metadata, *_window(required("segment_id", Text())), required("zone_id", Text()),
        required("sensor_count", Integer()), *_speeds_and_occupancy(),
        PrimaryKeyConstraint("segment_id", "window_start"),
    )
    scores = ("mobility_index", "traffic_score", "transit_score", "bikes_score", "parking_score", "taxi_score",
              "air_score", "mean_speed_kmh", "mean_occupancy", "mean_bus_delay_s")
    mobility = Table(
        "mobility_index_5min", metadata, *_window(required("zone_id", Text())),
        *(optional(name, DOUBLE) for name in scores),
        *(optional(name, COUNT) for name in ("bikes_available", "bike_docks", "parking_occupied", "parking_spots")),
        optional("taxi_waiting_trips", Integer()), optional("mean_caqi", DOUBLE), required("event_count", COUNT),
        required("last_event_at", UTC_TIME), required("updated_at", UTC_TIME),
        PrimaryKeyConstraint("zone_id", "window_start"),
    )
    anomalies = Table(
        "traffic_anomalies", metadata, required("sensor_id", Text()), required("window_start", UTC_TIME),
        required("metric", Text()), required("window_end", UTC_TIME), required("segment_id", Text()),
        required("zone_id", Text()), required("value", DOUBLE), required("baseline_median", DOUBLE),
        required("baseline_mad", DOUBLE), required("baseline_samples", Integer()), required("robust_z", DOUBLE),
        required("severity", Text()), required("alert_id", Text()), required("detected_at", UTC_TIME),
        PrimaryKeyConstraint("sensor_id", "window_start", "metric"),
    )
    for table in (sensor, segment, mobility, anomalies):
        Index(f"{table.name}_window", table.c.window_start)
    Index("traffic_sensor_5min_segment", sensor.c.segment_id, sensor.c.window_start)
    Index("traffic_segment_5min_zone", segment.c.zone_id, segment.c.window_start)  # a zone's history (0002)


def _hourly_rollups(metadata: MetaData) -> None:
    """The traffic windows' hourly sums, per sensor and per segment (:mod:`smartcity.storage.traffic_hourly`)."""
    types = {"integer": Integer(), "count": COUNT, "double": DOUBLE}
    for rollup, key in ROLLUPS.values():
        Table(
            rollup, metadata, required(key, Text()), required("hour_start", UTC_TIME),
            *(Column(measure.name, types[measure.kind], nullable=measure.optional) for measure in MEASURES),
            PrimaryKeyConstraint(key, "hour_start"),
        )


def _incident_cases(metadata: MetaData) -> None:
    """The API's incident workflow (open -> acknowledged -> resolved): one case per incident, and its timeline."""
    cases = Table(
        "incident_cases", metadata, Column("incident_id", Text(), primary_key=True), required("source", Text()),
        required("state", Text()), required("version", Integer()), required("category", Text()),
        required("severity", Text()), required("description", Text()), required("zone_id", Text()),
        optional("segment_id", Text()), *_position(), required("reported_at", UTC_TIME),
        optional("cleared_at", UTC_TIME), required("updated_at", UTC_TIME), required("reported_by", Text()),
        CheckConstraint("source IN ('api', 'stream')", name="source_check"),
        CheckConstraint("state IN ('open', 'acknowledged', 'resolved')", name="state_check"),
    )
    Index("incident_cases_reported", cases.c.reported_at.desc(), cases.c.incident_id.desc())
    Index("incident_cases_state", cases.c.state, cases.c.reported_at.desc())
    Table(
        "incident_case_timeline", metadata,
        required("incident_id", Text(), ForeignKey("incident_cases.incident_id", ondelete="CASCADE")),
        required("seq", Integer()), required("at", UTC_TIME), required("action", Text()), required("state", Text()),
        required("actor", Text()), optional("note", Text()), PrimaryKeyConstraint("incident_id", "seq"),
    )


def _model_outputs(metadata: MetaData) -> None:
    """The models' forecasts (with their live error once the window closed), anomaly scores and hotspots."""
    forecasts = Table(
        "traffic_forecasts", metadata, required("target", Text()), required("entity_id", Text()),
        required("origin", UTC_TIME), required("horizon_min", Integer()), required("model", Text()),
        required("target_time", UTC_TIME), required("model_version", Text()),
        *(required(name, DOUBLE) for name in ("p10", "p50", "p90")), required("issued_at", UTC_TIME),
        optional("actual", DOUBLE), optional("abs_error", DOUBLE),
        PrimaryKeyConstraint("target", "entity_id", "origin", "horizon_min", "model"),
    )
    Index("traffic_forecasts_target_time", forecasts.c.target, forecasts.c.entity_id, forecasts.c.target_time)
    scored = text("abs_error IS NOT NULL")
    Index("traffic_forecasts_scored", forecasts.c.target_time, postgresql_where=scored, sqlite_where=scored)
    scores = Table(  # contributions: JSON text {feature: weight}
        "anomaly_scores", metadata, required("entity_id", Text()), required("window_start", UTC_TIME),
        required("model", Text()), required("target", Text()), required("window_end", UTC_TIME),
        required("model_version", Text()), required("score", DOUBLE), required("basis", Text()),
        required("contributions", Text()), required("flagged", FLAG), optional("alert_id", Text()),
        required("sensor_id", Text()), required("segment_id", Text()), required("zone_id", Text()), *_position(),
        required("scored_at", UTC_TIME), PrimaryKeyConstraint("entity_id", "window_start", "model"),
    )
    Index("anomaly_scores_time", scores.c.window_start)
    flagged = text("flagged")
    Index("anomaly_scores_flagged", scores.c.window_start, postgresql_where=flagged, sqlite_where=flagged)
    hotspots = Table(  # extent: a GeoJSON Polygon; members: a JSON array of Alert ids, oldest first
        "traffic_hotspots", metadata, Column("id", Text(), primary_key=True), required("active", FLAG),
        required("computed_at", UTC_TIME), *_position(), required("zone_id", Text()), required("extent", Text()),
        required("members", Text()), required("anomalies", Integer()), required("incidents", Integer()),
        required("size", Integer()), required("since", UTC_TIME), required("last_seen", UTC_TIME),
    )
    Index("traffic_hotspots_active", hotspots.c.active, hotspots.c.size)
