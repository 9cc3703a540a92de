"""Job ``mobility``: a multimodal mobility index per zone and 5-minute window, 0 (stuck) .. 100 (fluid).

One read of six topics, each event reduced to its zone and the measure it brings; per zone and window:

- traffic (``traffic-sensors``): vehicle-weighted mean speed and mean occupancy -> congestion index;
- transit (``public-transport``): mean positive delay of the bus positions;
- bikes (``bike-share``): bikes available / docks over the station reports;
- parking (``parking``): spots taken / spots over the car park reports;
- taxi (``taxi-vtc``): distinct trips seen waiting for their pickup (``toPickup``);
- air (``air-quality``): mean CAQI.

:func:`streaming.indices.component_scores` makes each a 0..1 score and :func:`streaming.indices.mobility_index`
their weighted mean over the components present. Means are added up as decimals (:mod:`streaming.exact_sums`),
the same however the events were split into micro-batches. Update mode: each micro-batch upserts the changed
windows into ``mobility_index_5min``.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from smartcity.storage.upsert import upsert
from streaming.exact_sums import exact_mean, exact_ratio, exact_sum
from streaming.indices import component_scores, mobility_index
from streaming.runner import Job, StreamingContext, counted_once, observe_input, window_start_of
from streaming.sinks import collect_records
from streaming.sources import event_column, event_key, read_events

TOPICS = ("traffic-sensors", "public-transport", "bike-share", "parking", "taxi-vtc", "air-quality")
COLUMNS = (
    "zone_id", "window_start", "window_end", "mobility_index", "traffic_score", "transit_score", "bikes_score",
    "parking_score", "taxi_score", "air_score", "mean_speed_kmh", "mean_occupancy", "mean_bus_delay_s",
    "bikes_available", "bike_docks", "parking_occupied", "parking_spots", "taxi_waiting_trips", "mean_caqi",
    "event_count", "last_event_at", "updated_at",
)


def _event(topic: str, field: str):
    return F.col(event_column(topic))[field]


def zone_measures(ctx: StreamingContext) -> DataFrame:
    """Every good event of the six topics as (zone, event_time, the measures its topic brings, others null)."""
    events = read_events(ctx.spark, ctx.source, TOPICS).where(F.col("problem").isNull())
    traffic_speed_known = _event("traffic-sensors", "averageVehicleSpeed").isNotNull() & (
        _event("traffic-sensors", "intensity") > 0)
    measures = events.select(
        F.coalesce(*[_event(topic, "zone") for topic in TOPICS]).alias("zone_id"),
        "event_time",
        F.when(traffic_speed_known, _event("traffic-sensors", "intensity")).alias("vehicles_with_speed"),
        F.when(traffic_speed_known, _event("traffic-sensors", "averageVehicleSpeed")
               * _event("traffic-sensors", "intensity")).alias("speed_x_vehicles"),
        _event("traffic-sensors", "occupancy").alias("occupancy"),
        # greatest() skips nulls: keep the other topics' rows null, not 0
        F.when(_event("public-transport", "delay").isNotNull(), F.greatest(_event("public-transport", "delay"), F.lit(0)))
        .alias("bus_delay_s"),
        _event("bike-share", "availableBikeNumber").alias("bikes"),
        _event("bike-share", "totalSlotNumber").alias("docks"),
        _event("parking", "occupiedSpotNumber").alias("occupied"),
        _event("parking", "totalSpotNumber").alias("spots"),
        _event("taxi-vtc", "id").alias("taxi_trip"),
        F.when(_event("taxi-vtc", "tripStatus") == "toPickup", _event("taxi-vtc", "id")).alias("waiting_trip"),
        _event("air-quality", "airQualityIndex").alias("caqi"),
        *event_key(),
    )
    return counted_once(observe_input(measures, JOB.name), ctx.watermark_s)


def build(ctx: StreamingContext) -> DataFrame:
    windows = zone_measures(ctx).groupBy("window_end", "zone_id").agg(
        F.count(F.lit(1)).alias("event_count"),
        F.max("event_time").alias("last_event_at"),
        exact_ratio(exact_sum("speed_x_vehicles"), F.sum("vehicles_with_speed")).alias("mean_speed_kmh"),
        exact_mean("occupancy").alias("mean_occupancy"),
        exact_mean("bus_delay_s").alias("mean_bus_delay_s"),
        F.sum("bikes").alias("bikes_available"),
        F.sum("docks").alias("bike_docks"),
        F.sum("occupied").alias("parking_occupied"),
        F.sum("spots").alias("parking_spots"),
        F.when(F.count("taxi_trip") > 0, F.size(F.collect_set("waiting_trip"))).alias("taxi_waiting_trips"),
        exact_mean("caqi").alias("mean_caqi"),
    )
    scores = component_scores(
        mean_speed_kmh=F.col("mean_speed_kmh"), occupancy=F.col("mean_occupancy"),
        mean_bus_delay_s=F.col("mean_bus_delay_s"), bikes_available=F.col("bikes_available"),
        bike_docks=F.col("bike_docks"), parking_occupied=F.col("parking_occupied"),
        parking_spots=F.col("parking_spots"), taxi_waiting_trips=F.col("taxi_waiting_trips"),
        mean_caqi=F.col("mean_caqi"),
    )
    return windows.select(
        "*",
        window_start_of().alias("window_start"),
        *[score.alias(f"{name}_score") for name, score in scores.items()],
        mobility_index(scores).alias("mobility_index"),
    )


def write(ctx: StreamingContext, batch: DataFrame, batch_id: int) -> None:
    now = datetime.now(timezone.utc)
    rows = [{column: {**record, "updated_at": now}[column] for column in COLUMNS} for record in collect_records(batch)]
    upsert(ctx.database, "mobility_index_5min", rows, key=("zone_id", "window_start"))


JOB = Job(
    name="mobility",
    topics=TOPICS,
    output_mode="update",
    build=build,
    write=write,
    description="Multimodal mobility index per zone: traffic, transit delays, bikes, parking, taxi demand, air",
    # 2: deduplicated events, windows grouped by their end (streaming.runner.counted_once); 3: the events' key
    # became two 64-bit hashes (streaming.sources.event_key), the state moved to RocksDB (streaming.session)
    state_version=3,
)
