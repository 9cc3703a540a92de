"""Job ``traffic``: 5-minute aggregates per sensor and per road segment, with a congestion index.

From ``traffic-sensors`` (one event per lane sensor every few seconds), for each 5-minute event-time window:

- ``flow``: vehicles counted (sum of ``intensity``), and ``flow_per_hour`` (x 12);
- ``mean_speed_kmh``: the mean speed of the vehicles, i.e. each interval's ``averageVehicleSpeed`` weighted by its
  ``intensity``; ``speed_p50/p85/p95_kmh``: percentiles of the vehicles' speeds, each interval's speed counted
  once per vehicle (Spark's exact ``percentile`` with frequencies: linear interpolation between ranks);
- ``mean_occupancy``: mean of the intervals' occupancy (0..1);
- ``congestion_index``: :func:`streaming.indices.congestion_index` of the mean speed and occupancy.

The means are added up as decimals (:mod:`streaming.exact_sums`), so a window's values do not depend on how its
readings were split into micro-batches: a restarted job writes the very values an uninterrupted run writes.

A segment's window aggregates the readings of all its sensors (lanes). The query runs in update mode: every
micro-batch upserts the windows it changed into ``traffic_sensor_5min`` / ``traffic_segment_5min``, so an
aggregate can be queried seconds after its events arrive, and late events inside the watermark update it; in the
same transaction, the hours of those windows are recomputed in the hourly rollup (``traffic_sensor_1h`` /
``traffic_segment_1h``, :mod:`smartcity.storage.traffic_hourly`).
"""

from __future__ import annotations

import logging
from datetime import datetime, timezone

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F

from smartcity.storage.traffic_hourly import write_traffic_windows
from streaming.exact_sums import exact_mean, exact_ratio, exact_sum
from streaming.indices import congestion_index
from streaming.runner import WINDOW_S, Job, StreamingContext, counted_once, observe_input, window_start_of
from streaming.sinks import Stopwatch, collect_records
from streaming.sources import event_column, event_key, read_events

TOPIC = "traffic-sensors"
SPEED_PERCENTILES = {"speed_p50_kmh": 0.5, "speed_p85_kmh": 0.85, "speed_p95_kmh": 0.95}
SENSOR_COLUMNS = (
    "sensor_id", "window_start", "window_end", "segment_id", "zone_id", "lane_id", "lon", "lat", "event_count",
    "flow", "flow_per_hour", "mean_speed_kmh", *SPEED_PERCENTILES, "mean_occupancy", "congestion_index",
    "last_event_at", "updated_at",
)
SEGMENT_COLUMNS = (
    "segment_id", "window_start", "window_end", "zone_id", "sensor_count", "event_count", "flow", "flow_per_hour",
    "mean_speed_kmh", *SPEED_PERCENTILES, "mean_occupancy", "congestion_index", "last_event_at", "updated_at",
)
log = logging.getLogger(__name__)


def sensor_readings(ctx: StreamingContext, job: str) -> DataFrame:
    """The good traffic readings, one row per event (a copy of one left out), with their window's end, watermarked
    (:func:`streaming.runner.counted_once`)."""
    event = F.col(event_column(TOPIC))
    readings = read_events(ctx.spark, ctx.source, [TOPIC]).where(F.col("problem").isNull()).select(
        event["id"].alias("sensor_id"),
        event["refRoadSegment"].alias("segment_id"),
        event["zone"].alias("zone_id"),
        event["laneId"].alias("lane_id"),
        event["location"]["coordinates"][0].alias("lon"),
        event["location"]["coordinates"][1].alias("lat"),
        event["intensity"].alias("intensity"),
        event["averageVehicleSpeed"].alias("speed"),
        event["occupancy"].alias("occupancy"),
        "event_time",
        *event_key(),
    )
    return counted_once(observe_input(readings, job), ctx.watermark_s)


def traffic_measures() -> list[Column]:
    """The aggregations of a window of readings (see the module docstring)."""
    with_speed = F.col("speed").isNotNull() & (F.col("intensity") > 0)
    vehicles_with_speed = F.sum(F.when(with_speed, F.col("intensity")))
    percentiles = F.percentile(F.when(with_speed, F.col("speed")), list(SPEED_PERCENTILES.values()),
                               F.greatest(F.col("intensity"), F.lit(1)))
    return [
        F.count(F.lit(1)).alias("event_count"),
        F.sum("intensity").alias("flow"),
        exact_ratio(exact_sum(F.when(with_speed, F.col("speed") * F.col("intensity"))), vehicles_with_speed)
        .alias("mean_speed_kmh"),
        percentiles.alias("speed_percentiles"),
        exact_mean("occupancy").alias("mean_occupancy"),
        F.max("event_time").alias("last_event_at"),
    ]


def sensor_attributes() -> list[Column]:
    """Where a sensor is: the same on every reading of a sensor, so ``max`` just picks it."""
    return [F.max(name).alias(name) for name in ("segment_id", "zone_id", "lane_id", "lon", "lat")]


def finish_measures(aggregates: DataFrame) -> DataFrame:
    """Window bounds, percentiles as columns, flow per hour and congestion index of aggregated windows."""
    return aggregates.select(
        "*",
        window_start_of().alias("window_start"),
        (F.col("flow") * (3600 / WINDOW_S)).cast("double").alias("flow_per_hour"),
        *[F.col("speed_percentiles")[i].alias(name) for i, name in enumerate(SPEED_PERCENTILES)],
        congestion_index(F.col("mean_speed_kmh"), F.col("mean_occupancy")).alias("congestion_index"),
    ).drop("speed_percentiles")


def build(ctx: StreamingContext) -> DataFrame:
    """Windows per sensor and per segment in one aggregation: each reading counts for its sensor and segment."""
    readings = sensor_readings(ctx, JOB.name)
    entity = F.explode(F.array(
        F.struct(F.lit("sensor").alias("kind"), F.col("sensor_id").alias("id")),
        F.struct(F.lit("segment").alias("kind"), F.col("segment_id").alias("id")),
    ))
    aggregates = readings.select("*", entity.alias("entity")).groupBy(
        "window_end", F.col("entity.kind").alias("kind"), F.col("entity.id").alias("entity_id")
    ).agg(
        *traffic_measures(),
        *sensor_attributes(),
        F.size(F.collect_set("sensor_id")).alias("sensor_count"),
    )
    return finish_measures(aggregates)


def write(ctx: StreamingContext, batch: DataFrame, batch_id: int) -> None:
    """Upsert the changed windows and recompute their hours in the hourly rollup, in one transaction."""
    watch = Stopwatch()
    records = collect_records(batch)  # runs the batch's query: the time of its aggregation counts here
    watch.lap("collect")
    now = datetime.now(timezone.utc)
    sensors = [_row(record, SENSOR_COLUMNS, now, sensor_id=record["entity_id"]) for record in records
               if record["kind"] == "sensor"]
    segments = [_row(record, SEGMENT_COLUMNS, now, segment_id=record["entity_id"]) for record in records
                if record["kind"] == "segment"]
    write_traffic_windows(ctx.database, sensors, segments)
    watch.lap("database")
    log.debug("traffic batch %d: %d windows; %s", batch_id, len(records), watch)


def _row(record: dict, columns: tuple[str, ...], now: datetime, **ids: str) -> dict:
    values = {**record, **ids, "updated_at": now}
    return {column: values[column] for column in columns}


JOB = Job(
    name="traffic",
    topics=(TOPIC,),
    output_mode="update",
    build=build,
    write=write,
    description="5-minute flow, speed, occupancy, percentiles and congestion per sensor and road segment",
    # 2: deduplicated events, windows grouped by their end (streaming.runner.counted_once); 3: the events' key
    # became two 64-bit hashes (streaming.sources.event_key), the state moved to RocksDB (streaming.session)
    state_version=3,
)
