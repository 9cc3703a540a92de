"""Traffic history: which source a bucket reads, its scope, the Python mirror of the traffic job's window measures
(checked against the same hand-computed windows as the job itself), and where its queries run."""

from __future__ import annotations

import asyncio
import threading
from datetime import datetime, timedelta, timezone

import pytest

from smartcity.api.app import database_query
from smartcity.api.problems import ProblemError
from tests.api_samples.sample_streaming import measures, percentile, window_start
from smartcity.api.timeseries import Bucket
from smartcity.api.traffic_history import WINDOW_S, Scope, history_scope, reads_aggregates
from smartcity.backends.database import open_database
from streaming import runner, samples

T0 = datetime(2026, 1, 12, 8, 5, tzinfo=timezone.utc)


def test_the_window_is_the_streaming_jobs():
    assert WINDOW_S == runner.WINDOW_S


@pytest.mark.parametrize("bucket, aggregates", [("1m", False), ("5m", True), ("15m", True), ("1h", True), ("1d", True)])
def test_buckets_of_whole_windows_read_the_aggregates(bucket, aggregates):
    assert reads_aggregates(Bucket(bucket)) is aggregates


def test_a_history_is_of_at_most_one_thing():
    assert history_scope(None, None, None) == Scope("city")
    assert history_scope(None, "seg", None) == Scope("segment", "seg")
    with pytest.raises(ProblemError) as error:
        history_scope("s1", None, "Z11")
    assert (error.value.status, error.value.errors[0].field) == (400, "query.sensor_id")


def test_windows_start_on_the_epoch_every_5_minutes():
    assert window_start(T0 + timedelta(minutes=4, seconds=59)) == T0
    assert window_start(T0 + timedelta(minutes=5)) == T0 + timedelta(minutes=5)


def test_percentiles_interpolate_between_ranks_as_spark_does():
    speeds = [(10.0, 2), (12.0, 3), (20.0, 5)]  # ten vehicles: 10 10 12 12 12 20 20 20 20 20
    assert percentile(speeds, 0.5) == 16.0  # rank 4.5: halfway between 12 and 20
    assert percentile(speeds, 0.85) == 20.0
    assert percentile(speeds, 0.0) == 10.0
    assert percentile([], 0.5) is None


def reading(sensor, seconds, intensity, speed, occupancy, lane):
    return samples.traffic(sensor, T0 + timedelta(seconds=seconds), intensity=intensity, speed=speed,
                           occupancy=occupancy, segment="seg", zone="Z22", lane=lane)


# The window of tests/integration/test_streaming_jobs.py, whose values are worked out by hand there too.
LANE_A = [reading("A", 5, 2, 10.0, 0.5, 0), reading("A", 10, 3, 12.0, 0.6, 0), reading("A", 15, 5, 20.0, 0.7, 0)]
LANE_B = [reading("B", 5, 4, 40.0, 0.1, 1), reading("B", 10, 0, None, 0.0, 1)]


@pytest.mark.parametrize("readings, expected", [
    (LANE_A, {"event_count": 3, "flow": 10, "flow_per_hour": 120.0, "mean_speed_kmh": 15.6, "speed_p50_kmh": 16.0,
              "speed_p85_kmh": 20.0, "speed_p95_kmh": 20.0, "mean_occupancy": 0.6, "congestion_index": 0.844}),
    (LANE_B, {"event_count": 2, "flow": 4, "flow_per_hour": 48.0, "mean_speed_kmh": 40.0, "speed_p50_kmh": 40.0,
              "mean_occupancy": 0.05, "congestion_index": 0.1833333}),
    (LANE_A + LANE_B, {"event_count": 5, "flow": 14, "flow_per_hour": 168.0, "mean_speed_kmh": 22.5714286,
                       "speed_p50_kmh": 20.0, "speed_p85_kmh": 40.0, "speed_p95_kmh": 40.0, "mean_occupancy": 0.38,
                       "congestion_index": 0.7742857}),
])
def test_window_measures_are_the_traffic_jobs(readings, expected):
    actual = measures(readings)
    for name, value in expected.items():
        assert actual[name] == pytest.approx(value, abs=1e-6), name


def test_small_sqlite_reads_run_on_the_event_loop_and_the_rest_in_a_thread(tmp_path, monkeypatch):
    database = open_database(f"sqlite:///{tmp_path}/history.db")
    threads = []
    query = database.query
    monkeypatch.setattr(database, "query", lambda sql, params=None: threads.append(threading.get_ident()) or query(sql, params))

    async def reads() -> int:
        assert await database_query(database, "SELECT 1 AS one", None, small=True) == [{"one": 1}]
        assert await database_query(database, "SELECT 2 AS two", None, small=False) == [{"two": 2}]
        return threading.get_ident()

    try:
        loop_thread = asyncio.run(reads())
        assert [thread == loop_thread for thread in threads] == [True, False]
    finally:
        database.close()
