"""The streaming jobs' pure pieces, by hand: congestion and mobility indices, robust z-score, anomaly rules and
the judging of windows against a SQLite history, Spark schemas from the event models, and the weighted lag
histogram. No JVM is started here."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from pyspark.sql import types as T

from smartcity.backends.database import open_database
from smartcity.events import TrafficFlowObserved
from smartcity.storage.migrate import migrate
from streaming import indices, metrics, session
from streaming.anomalies import (
    ANOMALY_COLUMNS, MIN_BASELINE_WINDOWS, find_anomalies, judge_windows, severity, time_slot,
)
from streaming.schemas import spark_schema
from smartcity.storage.upsert import upsert, upsert_sql


def test_congestion_index_is_the_mean_of_speed_deficit_and_occupancy_load():
    assert indices.congestion_index(25.0, 0.15) == pytest.approx(0.5 * 0.5 + 0.5 * 0.5)
    assert indices.congestion_index(60.0, 0.0) == 0.0  # faster than free flow, empty loop
    assert indices.congestion_index(0.0, 0.9) == 1.0  # both terms capped at 1
    assert indices.congestion_index(None, 0.03) == pytest.approx(0.05)  # no vehicle: no speed deficit
    assert indices.congestion_index(30.0, None) is None  # no occupancy: no traffic data


def test_mobility_index_weights_the_components_that_are_there():
    scores = indices.component_scores(
        mean_speed_kmh=25, occupancy=0.15, mean_bus_delay_s=120, bikes_available=5, bike_docks=20,
        parking_occupied=None, parking_spots=None, taxi_waiting_trips=10, mean_caqi=40)
    assert scores == pytest.approx(
        {"traffic": 0.5, "transit": 0.8, "bikes": 0.25, "parking": None, "taxi": 0.8, "air": 0.6})
    # (0.30*0.5 + 0.20*0.8 + 0.10*0.25 + 0.10*0.8 + 0.15*0.6) / (1 - 0.15 for the missing parking)
    assert indices.mobility_index(scores) == pytest.approx(100 * 0.505 / 0.85)
    assert indices.mobility_index(dict.fromkeys(scores)) is None


def test_component_scores_are_bounded():
    scores = indices.component_scores(
        mean_speed_kmh=0, occupancy=0.9, mean_bus_delay_s=3600, bikes_available=30, bike_docks=20,
        parking_occupied=100, parking_spots=100, taxi_waiting_trips=500, mean_caqi=250)
    assert scores == {"traffic": 0.0, "transit": 0.0, "bikes": 1.0, "parking": 0.0, "taxi": 0.0, "air": 0.0}


def test_robust_z_uses_median_and_mad():
    baseline = [47, 48, 49, 50, 50, 51, 52]  # median 50, absolute deviations 3 2 1 0 0 1 2: MAD 1
    assert indices.median_absolute_deviation(baseline) == (50, 1)
    assert indices.robust_z(15.6, baseline) == pytest.approx(0.6745 * (15.6 - 50))
    assert indices.robust_z(12.0, [50] * 7) is None  # no spread: no scale


def window(speed: float, occupancy: float) -> dict:
    return {"mean_speed_kmh": speed, "mean_occupancy": occupancy}


def test_only_congestion_side_outliers_with_enough_history_are_flagged():
    history = [window(s, o) for s, o in zip([48, 50, 52, 49, 51, 50, 47], [0.10, 0.12, 0.08, 0.11, 0.09, 0.10, 0.13])]
    assert [a.metric for a in find_anomalies(window(15.6, 0.6), history)] == ["mean_speed_kmh", "mean_occupancy"]
    assert find_anomalies(window(90.0, 0.0), history) == []  # unusually fluid is not an incident
    assert find_anomalies(window(50.5, 0.105), history) == []
    assert find_anomalies(window(15.6, 0.6), history[:MIN_BASELINE_WINDOWS - 1]) == []
    assert [severity(z) for z in (-4.0, 6.0, -23.0)] == ["low", "medium", "high"]


def test_time_slot_is_the_city_hour():
    assert time_slot(datetime(2024, 1, 10, 7, 30, tzinfo=timezone.utc)) == 8  # Cologne is UTC+1 in winter
    assert time_slot(datetime(2024, 7, 10, 7, 30, tzinfo=timezone.utc)) == 9  # and UTC+2 in summer


def test_spark_schema_follows_the_pydantic_model():
    schema = spark_schema(TrafficFlowObserved)
    fields = {field.name: field for field in schema.fields}
    assert list(fields) == list(TrafficFlowObserved.model_fields)
    assert fields["dateObserved"].dataType == T.TimestampType()
    assert fields["intensity"].dataType == T.LongType()
    assert fields["averageVehicleSpeed"].dataType == T.DoubleType() and fields["averageVehicleSpeed"].nullable
    assert fields["congested"].dataType == T.BooleanType()
    assert fields["location"].dataType["coordinates"].dataType == T.ArrayType(T.DoubleType())


def test_upsert_sql_replaces_every_column_but_the_key():
    assert upsert_sql("t", ["id", "w", "v"], ["id", "w"]) == (
        "INSERT INTO t (id, w, v) VALUES (:id, :w, :v) ON CONFLICT (id, w) DO UPDATE SET v = excluded.v")


def test_batch_lag_counts_each_share_of_events_at_its_oldest_lag():
    histogram = metrics.WeightedHistogram("test_lag_seconds", "test", buckets=(10, 60))
    quantile_times = [100.0, 140.0, 150.0, 160.0, 170.0, 175.0, 180.0, 185.0, 188.0, 190.0, 195.0]
    lags = metrics.batch_lags(200.0, quantile_times)
    assert lags[0] == 100.0 and lags[-1] == 5.0
    for share, lag in zip(metrics.quantile_shares(1000), lags):
        histogram.observe("job", lag, share)
    buckets = {sample.labels["le"]: sample.value for sample in next(iter(histogram.collect())).samples
               if sample.name.endswith("_bucket")}
    # lags per share: 100 s for the oldest 1 %, ..., 10 s (the lag of q0.99) for the newest 1 %
    assert buckets == {"10.0": 10, "60.0": 990, "+Inf": 1000}


@pytest.mark.parametrize("events", [1, 7, 33, 1001])
def test_batch_lag_shares_are_whole_events_adding_up_to_the_batch(events):
    shares = metrics.quantile_shares(events)
    assert sum(shares) == events and all(isinstance(share, int) and share >= 0 for share in shares)
    histogram = metrics.WeightedHistogram("test_lag_seconds", "test", buckets=(10, 60))
    for share, lag in zip(shares, metrics.batch_lags(200.0, [100.0 + 9 * i for i in range(11)])):
        histogram.observe("job", lag, share)
    samples = next(iter(histogram.collect())).samples
    counts = [sample.value for sample in samples if sample.name.endswith(("_bucket", "_count"))]
    assert all(float(count).is_integer() for count in counts) and counts[-1] == events


def test_judge_windows_flags_against_the_same_hour_of_earlier_days_only(tmp_path):
    db = open_database(f"sqlite:///{tmp_path}/anomalies.db")
    migrate(db)
    start = datetime(2026, 1, 12, 8, 5, tzinfo=timezone.utc)
    place = {"sensor_id": "s1", "segment_id": "urn:ngsi-ld:RoadSegment:seg1", "zone_id": "Z11", "lane_id": 1, "lon": 6.955, "lat": 50.97}

    def sensor_window(at: datetime, speed: float, occupancy: float) -> dict:
        return {**place, "window_start": at, "window_end": at + timedelta(minutes=5), "event_count": 10, "flow": 10,
                "flow_per_hour": 120.0, "mean_speed_kmh": speed, "speed_p50_kmh": speed, "speed_p85_kmh": speed,
                "speed_p95_kmh": speed, "mean_occupancy": occupancy, "congestion_index": 0.1,
                "last_event_at": at, "updated_at": at}

    same_hour = [sensor_window(start - timedelta(days=day), s, o) for day, s, o in
                 zip(range(1, 8), [48, 50, 52, 49, 51, 50, 47], [0.10, 0.12, 0.08, 0.11, 0.09, 0.10, 0.13])]
    upsert(db, "traffic_sensor_5min", same_hour, key=("sensor_id", "window_start"))
    now = start + timedelta(minutes=6)
    assert judge_windows(db, [sensor_window(start, 50.5, 0.105)], now) == ([], [])
    rows, alerts = judge_windows(db, [sensor_window(start, 15.6, 0.6)], now)
    assert [row["metric"] for row in rows] == ["mean_speed_kmh", "mean_occupancy"]
    assert all(set(row) == set(ANOMALY_COLUMNS) and row["alert_id"] == alerts[0].id for row in rows)
    assert rows[0]["baseline_samples"] == 7 and len(alerts) == 1
    # an hour later the same history is another slot: too few windows to judge
    assert judge_windows(db, [sensor_window(start + timedelta(hours=1), 15.6, 0.6)], now) == ([], [])


@pytest.mark.parametrize("master, partitions", [
    ("local[2]", 2), ("local", 1), ("local[3,2]", 3), ("spark://spark-master:7077", session.SHUFFLE_PARTITIONS),
    ("k8s://https://api:6443", session.SHUFFLE_PARTITIONS),
])
def test_local_sessions_get_one_shuffle_partition_per_thread(master, partitions):
    assert session.shuffle_partitions(master) == partitions
