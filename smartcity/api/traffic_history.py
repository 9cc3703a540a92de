"""Traffic history in time buckets, from the streaming job's 5-minute aggregates or from the raw readings.

A bucket that is a whole number of 5-minute windows (``5m``, ``15m``, ``1h``, ``1d``) reads the traffic job's
aggregates (``streaming/traffic_windows.py``): one sensor's from ``traffic_sensor_5min``; a road segment's, a zone's
or the whole city's from ``traffic_segment_5min``. The windows are re-aggregated into the bucket where their rows
allow it exactly: readings and vehicles are sums, the mean occupancy is weighted by each window's readings and the
mean speed by its vehicles. A bucket's congestion index is its windows' mean (and worst), as the index of a whole
bucket cannot be made from theirs. Speed percentiles are exact where a bucket is one window of one sensor or
segment; otherwise they are an approximation, the mean of the windows' percentiles weighted by their vehicles
(a percentile of several windows cannot be made from theirs, and the raw readings are too many to rank for the
API's busiest query): it is exact when the windows' speeds are alike, and lies between their lowest and highest
percentile always. The aggregates hold what the streaming job has written so far: the newest minutes are missing until
its next micro-batch, and ``aggregated_until`` says where they end. A window is in the range when it starts in it.
A sensor's or segment's whole-hour buckets (``1h``, ``1d``) read the same sums from the windows' hourly rollup
(:mod:`smartcity.api.history_rollup`): the same answer from a twelfth of the rows.

A shorter bucket (``1m``) reads the raw readings (``traffic_flow``).

This is the API's busiest uncached query, so the answer is JSON made straight from the rows (orjson, in the
SQL's column order, types fixed by the SQL's casts): no pydantic model on the way. The models below describe it
in the OpenAPI document; the tests check answers against them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response

from smartcity.api.app import database_query
from smartcity.api.caching import rounded_body, uncached_body
from smartcity.api.history_rollup import reads_rollup, rollup_bounds, rollup_history_sql
from smartcity.api.pagination import Page, decode_cursor, page_of
from smartcity.api.problems import bad_request
from smartcity.api.rounding import rounded_rows
from smartcity.api.timeseries import Bucket, TimeRange, bucket_sql, from_epoch, sql_time, stored_time
from smartcity.backends.database import Database

# The streaming jobs' window (streaming.runner.WINDOW_S; not imported, so the API does not load pyspark).
WINDOW_S = 300
MAX_BUCKETS = 2000
# One sensor's or segment's windows over this many seconds are read in well under a millisecond with SQLite.
SMALL_RANGE_S = 2 * 86400
PERCENTILES = ("speed_p50_kmh", "speed_p85_kmh", "speed_p95_kmh")
# The newest window's start, read by the buckets' query itself: one round trip per history, not two.
NEWEST = "newest_window_start"
ONE_ENTITY = ("sensor", "segment")


class HistoryBucket(BaseModel):
    bucket_start: datetime
    samples: int = Field(description="Sensor readings in the bucket")
    vehicles: int = Field(description="Vehicles counted in the bucket")
    occupancy: float = Field(description="Mean occupancy of the readings, 0..1")
    average_speed_kmh: float | None = Field(
        description="Mean speed of the vehicles (each reading's, or window's, speed weighted by its vehicles); "
                    "null when none moved")


class RawBucket(HistoryBucket):
    """A bucket of raw readings."""

    intensity_per_hour: float = Field(description="Mean hourly rate of the readings (each one sensor's)")
    congested_share: float = Field(description="Fraction of the readings flagged congested, 0..1")


class AggregateBucket(HistoryBucket):
    """A bucket of the streaming job's 5-minute windows."""

    windows: int = Field(description="5-minute windows with data in the bucket")
    flow_per_hour: float = Field(
        description="Vehicles per hour over the 5-minute windows that have data (a zone's or the city's: "
                    "its segments' flows added up)")
    congestion_index: float = Field(
        description="0 (free flow) .. 1 (jammed), from mean speed and occupancy. For one sensor or segment at 5m: "
                    "its window's index; otherwise the mean of the bucket's windows' indexes (of every segment, "
                    "for a zone or the city)")
    congestion_index_max: float = Field(description="The worst of those windows' congestion indexes")
    speed_p50_kmh: float | None = Field(
        description="Median speed of the vehicles. Exact for one sensor or segment at 5m; for a wider bucket, a "
                    "zone or the city, an approximation: the mean of the windows' medians weighted by their "
                    "vehicles (a percentile of several windows cannot be made from theirs). Null when no vehicle "
                    "moved")
    speed_p85_kmh: float | None = Field(description="85th percentile of the speeds, as speed_p50_kmh")
    speed_p95_kmh: float | None = Field(description="95th percentile of the speeds, as speed_p50_kmh")


class HistoryRange(BaseModel):
    bucket: Bucket
    start: datetime = Field(description="The query's `from`")
    end: datetime = Field(description="The query's `to`")


class RawHistory(Page[RawBucket], HistoryRange):
    source: Literal["raw"] = Field(description="The buckets come from the raw readings (`traffic_flow`)")


class AggregateHistory(Page[AggregateBucket], HistoryRange):
    source: Literal["aggregates"] = Field(
        description="The buckets come from the streaming job's 5-minute aggregates")
    aggregated_until: datetime | None = Field(
        description="End of the newest window the streaming job has written; later buckets are missing or partial "
                    "until it writes them (its lag). Null when it has written none")


History = Annotated[RawHistory | AggregateHistory, Field(discriminator="source")]


@dataclass(frozen=True)
class Scope:
    """What a history is of: a sensor, a road segment, a zone, or the whole city (``value`` None)."""

    kind: Literal["sensor", "segment", "zone", "city"]
    value: str | None = None

    @property
    def one_entity(self) -> bool:
        return self.kind in ONE_ENTITY


def history_scope(sensor_id: str | None, segment_id: str | None, zone: str | None) -> Scope:
    """The scope at most one of the history filters names; a 400 when several are given."""
    given = [(kind, value) for kind, value in (("sensor", sensor_id), ("segment", segment_id), ("zone", zone))
             if value is not None]
    if len(given) > 1:
        raise bad_request("query.sensor_id", "give at most one of sensor_id, segment_id and zone")
    return Scope(*given[0]) if given else Scope("city")


def reads_aggregates(bucket: Bucket) -> bool:
    return bucket.seconds % WINDOW_S == 0


def aggregate_table(scope_kind: str) -> str:
    return "traffic_sensor_5min" if scope_kind == "sensor" else "traffic_segment_5min"


def _condition(column: str | None) -> str:
    return f" AND {column} = :scope" if column else ""


def aggregate_column(scope_kind: str) -> str | None:
    """The column the aggregate and anomaly tables name a scope's entity in: sensor_id, segment_id, zone_id."""
    return None if scope_kind == "city" else f"{scope_kind}_id"


def raw_column(scope_kind: str) -> str | None:
    return "entity_id" if scope_kind == "sensor" else aggregate_column(scope_kind)


@lru_cache(maxsize=64)
def raw_sql(dialect: str, scope_kind: str, bucket_s: int) -> str:
    """Buckets of raw readings (the columns of :class:`RawBucket`)."""
    return f"""SELECT {bucket_sql(dialect, 'observed_at', bucket_s)} AS bucket_start, COUNT(*) AS samples,
        CAST(SUM(intensity) AS bigint) AS vehicles, AVG(occupancy) AS occupancy,
        SUM(average_vehicle_speed * intensity)
            / NULLIF(SUM(CASE WHEN average_vehicle_speed IS NOT NULL THEN intensity END), 0) AS average_speed_kmh,
        AVG(intensity_per_hour) AS intensity_per_hour,
        CAST(AVG(CASE WHEN congested THEN 1.0 ELSE 0.0 END) AS double precision) AS congested_share
    FROM traffic_flow
    WHERE observed_at >= :start AND observed_at < :end{_condition(raw_column(scope_kind))}
    GROUP BY 1 ORDER BY 1 LIMIT :fetch"""


@lru_cache(maxsize=64)
def aggregate_sql(dialect: str, scope_kind: str, bucket_s: int) -> str:
    """Buckets of 5-minute windows (the columns of :class:`AggregateBucket`)."""
    one_entity = scope_kind in ONE_ENTITY
    # A sensor or segment has one row per window; a zone or the city one per segment and window.
    windows = "COUNT(*)" if one_entity else "COUNT(DISTINCT window_start)"
    exact = one_entity and bucket_s == WINDOW_S
    percentiles = ", ".join(f"{f'MAX({name})' if exact else vehicle_weighted_mean(name)} AS {name}"
                            for name in PERCENTILES)
    return f"""SELECT {bucket_sql(dialect, 'window_start', bucket_s)} AS bucket_start,
        CAST(SUM(event_count) AS bigint) AS samples, CAST(SUM(flow) AS bigint) AS vehicles,
        CAST(SUM(mean_occupancy * event_count) AS double precision) / SUM(event_count) AS occupancy,
        {vehicle_weighted_mean('mean_speed_kmh')} AS average_speed_kmh, {windows} AS windows,
        CAST(SUM(flow) AS double precision) * {3600 // WINDOW_S} / {windows} AS flow_per_hour,
        CAST(AVG(congestion_index) AS double precision) AS congestion_index,
        MAX(congestion_index) AS congestion_index_max, {percentiles},
        (SELECT MAX(window_start) FROM {aggregate_table(scope_kind)}) AS {NEWEST}
    FROM {aggregate_table(scope_kind)}
    WHERE window_start >= :start AND window_start < :end{_condition(aggregate_column(scope_kind))}
    GROUP BY 1 ORDER BY 1 LIMIT :fetch"""


def vehicle_weighted_mean(column: str) -> str:
    """SQL for the mean of the windows' ``column`` weighted by their vehicles (null when none of them has it)."""
    return (f"CAST(SUM({column} * flow) AS double precision) "
            f"/ NULLIF(SUM(CASE WHEN {column} IS NOT NULL THEN flow END), 0)")


async def aggregated_until(database: Database, scope: Scope, rows: list[dict[str, Any]]) -> datetime | None:
    """End of the newest window in the scope's table: the rows of :func:`aggregate_sql` carry it (taken out of
    them here); without rows, asked (the window-start index answers it at once)."""
    newest = [row.pop(NEWEST) for row in rows][:1]
    if not newest:
        sql = f"SELECT MAX(window_start) AS newest FROM {aggregate_table(scope.kind)}"
        newest = [(await database_query(database, sql, None, small=True))[0]["newest"]]
    return stored_time(newest[0]) + timedelta(seconds=WINDOW_S) if newest[0] is not None else None


def check_bucket_count(period: TimeRange, bucket: Bucket) -> None:
    if period.seconds / bucket.seconds > MAX_BUCKETS:
        raise bad_request("query.bucket", f"{bucket.value} buckets over this range exceed {MAX_BUCKETS}")


def is_small(scope: Scope, period: TimeRange, bucket: Bucket) -> bool:
    """Whether an SQLite query reads few enough rows to run on the event loop (:func:`smartcity.api.app.database_query`)."""
    return scope.one_entity and reads_aggregates(bucket) and period.seconds <= SMALL_RANGE_S


async def traffic_history(database: Database, scope: Scope, bucket: Bucket, period: TimeRange, limit: int,
                          cursor: str | None) -> dict[str, Any]:
    """One page of the history, as the JSON document of :class:`RawHistory` or :class:`AggregateHistory`, its rows
    rounded (:func:`~smartcity.api.rounding.rounded_rows`)."""
    check_bucket_count(period, bucket)
    filters = {"scope": scope.kind, "value": scope.value, **period.cursor_filters,
               "bucket": bucket.value}
    after = decode_cursor(cursor, filters, (int,))
    start = max(period.start, from_epoch(after[0] + bucket.seconds)) if after else period.start
    aggregates = reads_aggregates(bucket)
    params = {"scope": scope.value, "start": sql_time(start), "end": sql_time(period.end), "fetch": limit + 1}
    if reads_rollup(scope.kind, bucket.seconds):
        sql = rollup_history_sql(database.dialect, aggregate_table(scope.kind), bucket.seconds, WINDOW_S, PERCENTILES,
                                 NEWEST)
        params.update(rollup_bounds(start, period.end))
    elif aggregates:
        sql = aggregate_sql(database.dialect, scope.kind, bucket.seconds)
    else:
        sql = raw_sql(database.dialect, scope.kind, bucket.seconds)
    rows = await database_query(database, sql, params, small=is_small(scope, period, bucket),
                                binary=True)  # numbers and timestamps
    until = await aggregated_until(database, scope, rows) if aggregates else None
    items, next_cursor = page_of(rows, limit, lambda row: [int(row["bucket_start"])], filters)
    for row in items:
        row["bucket_start"] = from_epoch(row["bucket_start"])
    document = {"items": rounded_rows(items), "next_cursor": next_cursor, "bucket": bucket.value, "start": period.start,
                "end": period.end, "source": "aggregates" if aggregates else "raw"}
    if aggregates:
        document["aggregated_until"] = until
    return document


async def history_response(request: Request, database: Database, scope: Scope, bucket: Bucket, period: TimeRange,
                           limit: int, cursor: str | None) -> Response:
    """The route's answer: the page's JSON with its ETag (a 304 when the client has it)."""
    document = await traffic_history(database, scope, bucket, period, limit, cursor)
    return uncached_body(request, rounded_body(document))  # its only floats are the rows', rounded there
