"""The traffic history's whole-hour buckets from the hourly rollup give the answers the 5-minute windows give:
the same buckets, sums, rounded means and percentiles, pages, cursors and ``aggregated_until``, on SQLite and
PostgreSQL; the rollup follows every write of the windows (replays, late windows) and its backfill (migration 0004)
makes the same rows."""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import datetime, timedelta, timezone

import psycopg
import pytest

from smartcity.api import traffic_history as history
from smartcity.api.timeseries import Bucket, TimeRange
from smartcity.api.traffic_history import Scope, traffic_history
from smartcity.backends.database import open_database
from smartcity.storage.migrate import migrate
from smartcity.storage.traffic_hourly import ROLLUPS, rollup_sql, upsert_windows, write_traffic_windows
from streaming import samples
from tests.api_samples.sample_streaming import traffic_windows
from tests.storage_samples import drop_database

START = datetime(2026, 3, 2, 21, 0, tzinfo=timezone.utc)
HOURS = 30
NOW = START + timedelta(hours=HOURS)
SENSORS = {"A": ("seg-1", "Z11"), "B": ("seg-1", "Z11"), "C": ("seg-2", "Z12")}


def readings(seed: int = 7) -> list:
    """Two readings a window per sensor, some windows missing, some with no moving vehicle (null speeds)."""
    rng = random.Random(seed)
    events = []
    for number in range(HOURS * 12):
        for lane, (sensor, (segment, zone)) in enumerate(SENSORS.items()):
            if rng.random() < 0.15:
                continue
            for second in (60, 200):
                stopped = rng.random() < 0.1
                events.append(samples.traffic(
                    sensor, START + timedelta(minutes=5 * number, seconds=second), intensity=rng.randint(0, 12),
                    speed=None if stopped else round(rng.uniform(5, 70), 1), occupancy=round(rng.random(), 2),
                    segment=segment, zone=zone, lane=lane))
    return events


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.real)])
def database(request, tmp_path):
    if request.param == "sqlite":
        db = open_database(f"sqlite:///{tmp_path / 'rollup.db'}")
        migrate(db)
        yield db
        db.close()
        return
    real_stack = request.getfixturevalue("real_stack")
    admin_url = real_stack["SMARTCITY_DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    name = f"t_rollup_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    db = open_database(admin_url.rsplit("/", 1)[0] + f"/{name}")
    try:
        migrate(db)
        yield db
    finally:
        db.close()
        drop_database(admin_url, name)


@pytest.fixture
def windows(database):
    sensors, segments = traffic_windows(readings(), updated_at=NOW)
    write_traffic_windows(database, sensors, segments)
    return sensors, segments


def pages(database, scope: Scope, bucket: Bucket, period: TimeRange, limit: int) -> list[dict]:
    """Every page of the history, following its cursors."""
    documents, cursor = [], None
    while True:
        document = asyncio.run(traffic_history(database, scope, bucket, period, limit, cursor))
        documents.append(document)
        cursor = document["next_cursor"]
        if cursor is None:
            return documents


SCOPES = [Scope("sensor", "urn:ngsi-ld:TrafficFlowObserved:A"), Scope("sensor", "urn:ngsi-ld:TrafficFlowObserved:C"),
          Scope("segment", "urn:ngsi-ld:RoadSegment:seg-1"), Scope("segment", "urn:ngsi-ld:RoadSegment:seg-2"),
          Scope("zone", "Z11"), Scope("city")]
RANGES = [  # whole hours; partial hours at both ends; inside one hour; past the data; across a day's end
    (START, NOW), (START + timedelta(minutes=17, seconds=3), NOW - timedelta(minutes=41)),
    (START + timedelta(hours=2, minutes=5), START + timedelta(hours=2, minutes=50)),
    (START - timedelta(hours=3), NOW + timedelta(hours=2)),
    (START + timedelta(hours=2, minutes=55), START + timedelta(hours=4, minutes=5)),
]


@pytest.mark.parametrize("bucket", [Bucket.hour, Bucket.day])
@pytest.mark.parametrize("scope", SCOPES, ids=lambda scope: f"{scope.kind}-{scope.value}")
def test_whole_hour_buckets_from_the_rollup_are_those_of_the_windows(database, windows, scope, bucket, monkeypatch):
    for start, end in RANGES:
        period = TimeRange(start, end, start, end)
        from_rollup = pages(database, scope, bucket, period, limit=7)
        monkeypatch.setattr(history, "reads_rollup", lambda scope_kind, bucket_s: False)
        from_windows = pages(database, scope, bucket, period, limit=7)
        monkeypatch.undo()
        assert from_rollup == from_windows, (start, end)
    assert any(page["items"] for page in from_windows)


def test_the_rollup_reads_far_fewer_rows(database, windows):
    """Each hour of a sensor is one row of its rollup."""
    sensors, _ = windows
    hours = {(row["sensor_id"], row["window_start"].replace(minute=0)) for row in sensors}
    assert database.query("SELECT COUNT(*) AS n FROM traffic_sensor_1h")[0]["n"] == len(hours)
    assert len(sensors) > 10 * len(hours)


def rollup_rows(database) -> dict[str, list[dict]]:
    return {rollup: database.query(f"SELECT * FROM {rollup} ORDER BY 1, 2") for rollup, _ in ROLLUPS.values()}


def test_replayed_and_late_windows_leave_the_hours_as_once_in_order(database, windows):
    sensors, segments = windows
    expected = rollup_rows(database)
    later = [row for row in sensors if row["window_start"] >= START + timedelta(hours=5)]
    upsert_windows(database, "traffic_sensor_5min", later)  # a replayed micro-batch
    assert rollup_rows(database) == expected
    late = {**sensors[3], "flow": sensors[3]["flow"] + 5, "event_count": sensors[3]["event_count"] + 1}
    upsert_windows(database, "traffic_sensor_5min", [late])
    hour = late["window_start"].replace(minute=0)
    changed = [row for row in rollup_rows(database)["traffic_sensor_1h"]
               if row["sensor_id"] == late["sensor_id"] and history.stored_time(row["hour_start"]) == hour]
    before = [row for row in expected["traffic_sensor_1h"] if row["sensor_id"] == late["sensor_id"]
              and history.stored_time(row["hour_start"]) == hour]
    assert (changed[0]["flow"], changed[0]["event_count"]) == (before[0]["flow"] + 5, before[0]["event_count"] + 1)


def test_the_backfill_makes_the_rows_the_writes_made(database, windows):
    expected = rollup_rows(database)
    for window_table, (rollup, _) in ROLLUPS.items():
        database.execute(f"DELETE FROM {rollup}")
        database.execute(rollup_sql(database.dialect, window_table, bounded=False))
    assert rollup_rows(database) == expected
