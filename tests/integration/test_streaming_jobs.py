"""The streaming jobs on the real stack (Kafka, PostgreSQL, Redis) and on the embedded one (file bus, SQLite).

Known events go in; the 5-minute windows that come out are compared with values computed by hand (written as
literals below, not recomputed with the jobs' formulas). Late events inside the watermark are counted, later ones
are counted in the late-events metric; an event sent twice (the same CloudEvent) is counted once; a job that
crashes after writing a micro-batch, before committing it, or whose process is killed (SIGKILL) mid-stream,
resumes from its checkpoint and ends with the very aggregates of an uninterrupted run, however differently its
input was split into micro-batches.

Every test uses its own topics (a prefix), checkpoint folder and a random 5-minute window in the
past, so it touches nothing else and can run twice. One SparkSession serves the whole module (JVM start-up
costs ~15 s); the killed job runs in processes of its own, as ``smartcity streaming run`` would. Over 300 lines
for that reason: one module, one SparkSession (a second module would start a second JVM).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from pyspark.errors import StreamingQueryException
from pyspark.sql import functions as F

from smartcity.backends.database import open_database
from smartcity.events import TrafficFlowObserved
from smartcity.settings import PROJECT_ROOT, Settings
from smartcity.storage.migrate import migrate
from streaming import samples, traffic_windows
from streaming.app import JOBS, close_context, open_context, restart_failed, start_jobs
from streaming.runner import await_all, counted_once
from streaming.session import build_session
from streaming.sinks import collect_records
from streaming.sources import EVENT_KEY, event_key

ZONE = "Z22"
SEGMENT = "seg-streaming"
TOPICS = ("traffic-sensors", "public-transport", "bike-share", "parking", "taxi-vtc", "air-quality", "incidents",
          "traffic-windows", "dead-letter")


def random_window() -> datetime:
    """A 5-minute window start in January of some past year (no DST change in the week before it)."""
    rng = random.Random()
    return datetime(rng.randrange(1990, 2021), 1, rng.randrange(10, 26), rng.randrange(6, 19), 5 * rng.randrange(12),
                    tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def spark():
    return build_session(Settings())


@pytest.fixture
def real_settings(real_stack, tmp_path) -> Settings:
    env = {name.removeprefix("SMARTCITY_").lower(): value for name, value in real_stack.items()}
    settings = Settings(**env, streaming_checkpoint_dir=tmp_path / "checkpoints", streaming_metrics_port=0)
    migrate(open_database(settings.database_url))
    return settings


@pytest.fixture
def embedded_settings(tmp_path) -> Settings:
    settings = Settings(bus_url=f"file://{tmp_path}/bus", database_url=f"sqlite:///{tmp_path}/smartcity.db",
                        cache_url="memory://", streaming_checkpoint_dir=tmp_path / "checkpoints",
                        streaming_metrics_port=0)
    migrate(open_database(settings.database_url))
    return settings


@pytest.fixture
def prefix() -> str:
    return f"test-{uuid.uuid4().hex[:8]}-"


@pytest.fixture
def context_of(spark, prefix):
    """Opens contexts with the test's prefix (or another), each with its own checkpoints; closes them after and
    deletes what they wrote: rows of the prefix's entities, of the zone's windows from ``window0`` on, topics."""
    opened = []

    def open_(settings: Settings, window0: datetime, topic_prefix: str = prefix, **options):
        ctx = open_context(settings, spark, trigger_s=None, checkpoint_dir=settings.streaming_checkpoint_dir / topic_prefix,
                           topic_prefix=topic_prefix, **options)
        ctx.bus.create_topics([ctx.topic(topic) for topic in TOPICS], 2)
        opened.append((ctx, window0))
        return ctx

    yield open_
    for ctx, window0 in opened:
        db, like = ctx.database, {"p": f"%{ctx.source.topic_prefix}%"}
        for table in ("traffic_sensor_5min", "traffic_sensor_1h", "traffic_anomalies"):
            db.execute(f"DELETE FROM {table} WHERE sensor_id LIKE :p", like)
        for table in ("traffic_segment_5min", "traffic_segment_1h"):
            db.execute(f"DELETE FROM {table} WHERE segment_id LIKE :p", like)
        db.execute("DELETE FROM mobility_index_5min WHERE zone_id = :z AND window_start >= :t0 AND window_start < :t1",
                   {"z": ZONE, "t0": window0, "t1": window0 + timedelta(minutes=15)})
        if hasattr(ctx.bus, "delete_topics"):
            ctx.bus.delete_topics([ctx.topic(topic) for topic in TOPICS])
        close_context(ctx)


def run_once(ctx, names, **options) -> None:
    """Run the jobs called ``names`` (and their audit) over what is on the bus now, until they stop."""
    await_all(start_jobs(ctx, [JOBS[name] for name in names], **options), timeout_s=240)


def window_events(prefix: str, t0: datetime) -> list:
    """Two lanes of one segment, and one or two reports of every other stream, in the zone, in [t0, t0+5min)."""
    s = lambda seconds: t0 + timedelta(seconds=seconds)  # noqa: E731
    a, b, segment = f"{prefix}A", f"{prefix}B", f"{prefix}{SEGMENT}"
    return [
        samples.traffic(a, s(5), intensity=2, speed=10.0, occupancy=0.5, segment=segment, zone=ZONE, lane=0),
        samples.traffic(a, s(10), intensity=3, speed=12.0, occupancy=0.6, segment=segment, zone=ZONE, lane=0),
        samples.traffic(a, s(15), intensity=5, speed=20.0, occupancy=0.7, segment=segment, zone=ZONE, lane=0),
        samples.traffic(b, s(5), intensity=4, speed=40.0, occupancy=0.1, segment=segment, zone=ZONE, lane=1),
        samples.traffic(b, s(10), intensity=0, speed=None, occupancy=0.0, segment=segment, zone=ZONE, lane=1),
        samples.bus_position(f"{prefix}bus1", s(20), delay_s=120, zone=ZONE),
        samples.bus_position(f"{prefix}bus2", s(25), delay_s=-30, zone=ZONE),
        samples.bike_station(f"{prefix}st1", s(30), bikes=5, docks=20, zone=ZONE),
        samples.bike_station(f"{prefix}st2", s(30), bikes=3, docks=20, zone=ZONE),
        samples.car_park(f"{prefix}p1", s(40), occupied=80, total=100, zone=ZONE),
        samples.taxi_fix(f"{prefix}t1", s(50), status="toPickup", zone=ZONE),
        samples.taxi_fix(f"{prefix}t1", s(55), status="toPickup", zone=ZONE),
        samples.taxi_fix(f"{prefix}t2", s(60), status="onTrip", zone=ZONE),
        samples.air_station(f"{prefix}air1", s(70), caqi=30, zone=ZONE),
        samples.air_station(f"{prefix}air2", s(75), caqi=50, zone=ZONE),
    ]


# Hand-computed, from window_events: A = speeds 10, 12, 20 for 2, 3, 5 vehicles; B = 40 km/h for 4 vehicles.
SENSOR_A = {"event_count": 3, "flow": 10, "flow_per_hour": 120.0, "mean_speed_kmh": 15.6, "speed_p50_kmh": 16.0,
            "speed_p85_kmh": 20.0, "speed_p95_kmh": 20.0, "mean_occupancy": 0.6, "congestion_index": 0.844}
SENSOR_B = {"event_count": 2, "flow": 4, "flow_per_hour": 48.0, "mean_speed_kmh": 40.0, "speed_p50_kmh": 40.0,
            "speed_p85_kmh": 40.0, "speed_p95_kmh": 40.0, "mean_occupancy": 0.05, "congestion_index": 0.1833333}
SEGMENT_ROW = {"sensor_count": 2, "event_count": 5, "flow": 14, "flow_per_hour": 168.0, "mean_speed_kmh": 22.5714286,
               "speed_p50_kmh": 20.0, "speed_p85_kmh": 40.0, "speed_p95_kmh": 40.0, "mean_occupancy": 0.38,
               "congestion_index": 0.7742857}
MOBILITY_ROW = {"event_count": 15, "traffic_score": 0.2257143, "transit_score": 0.9, "bikes_score": 0.2,
                "parking_score": 0.2, "taxi_score": 0.98, "air_score": 0.6, "mean_bus_delay_s": 60.0,
                "taxi_waiting_trips": 1, "mean_caqi": 40.0, "mobility_index": 48.5714286}


def assert_row(actual: dict, expected: dict) -> None:
    for name, value in expected.items():
        assert actual[name] == pytest.approx(value, abs=1e-6), name


def one_row(db, sql: str, **params) -> dict:
    rows = db.query(sql, params)
    assert len(rows) == 1, rows
    return rows[0]


def seed_baseline(db, sensor_id: str, t0: datetime) -> None:
    """Seven days of history for ``sensor_id`` in the same hour: about 50 km/h and 0.10 occupancy."""
    speeds, occupancies = [48, 50, 52, 49, 51, 50, 47], [0.10, 0.12, 0.08, 0.11, 0.09, 0.10, 0.13]
    for day, (speed, occupancy) in enumerate(zip(speeds, occupancies), start=1):
        start = t0 - timedelta(days=day)
        db.execute(
            "INSERT INTO traffic_sensor_5min VALUES (:id, :start, :end, 'urn:ngsi-ld:RoadSegment:x', :zone, 0, 6.95, "
            "50.97, 60, 100, 1200, :speed, :speed, :speed, :speed, :occupancy, 0.2, :end, :end)",
            {"id": sensor_id, "start": start, "end": start + timedelta(minutes=5), "zone": ZONE, "speed": speed,
             "occupancy": occupancy},
        )


def late_events(name: str, job: str = "traffic") -> float:
    return REGISTRY.get_sample_value(
        "smartcity_streaming_late_events_total", {"job": job, "topic": "traffic-sensors", "outcome": name}) or 0.0


def read_topic(ctx, topic: str, expected: int, timeout_s: float = 30.0) -> list:
    consumer = ctx.bus.consumer(f"test-{uuid.uuid4().hex[:8]}", [ctx.topic(topic)])
    records, waited = [], 0.0
    try:
        while len(records) < expected and waited < timeout_s:
            records += consumer.poll(timeout_s=1.0)
            waited += 1.0
    finally:
        consumer.close()
    return records


@pytest.mark.real
def test_windows_late_events_anomalies_and_dead_letters_on_the_real_stack(real_settings, context_of, prefix):
    t0 = random_window()
    ctx = context_of(real_settings, t0)
    sensor_a, sensor_b = (TrafficFlowObserved.make_id(prefix + name) for name in "AB")
    seed_baseline(ctx.database, sensor_a, t0)
    samples.publish_events(ctx.bus, window_events(prefix, t0), topic_prefix=prefix)
    ctx.bus.publish(ctx.topic("traffic-sensors"), b'{"id": "not an event"}',
                    headers=[("ce_type", b"city.traffic.flow.observed.v1")])
    ctx.bus.flush()
    run_once(ctx, ["traffic", "mobility", "anomalies"])

    db = ctx.database
    assert_row(one_row(db, "SELECT * FROM traffic_sensor_5min WHERE sensor_id = :id AND window_start = :t",
                       id=sensor_a, t=t0), SENSOR_A)
    assert_row(one_row(db, "SELECT * FROM traffic_sensor_5min WHERE sensor_id = :id", id=sensor_b), SENSOR_B)
    segment = one_row(db, "SELECT * FROM traffic_segment_5min WHERE segment_id = :id",
                      id=f"urn:ngsi-ld:RoadSegment:{prefix}{SEGMENT}")
    assert_row(segment, SEGMENT_ROW)
    assert_row(one_row(db, "SELECT * FROM mobility_index_5min WHERE zone_id = :z AND window_start = :t", z=ZONE, t=t0),
               MOBILITY_ROW)
    dead = read_topic(ctx, "dead-letter", 1)
    assert len(dead) == 1 and dict(dead[0].headers)["ce_knativeerrorcode"] == b"422"

    # An event 10 minutes on moves the watermark (delay 120 s) to t0+8min: the first window closes, the anomaly
    # job judges it, and sensor A's slow, crowded window is far off its baseline.
    samples.publish_events(ctx.bus, [samples.traffic(f"{prefix}B", t0 + timedelta(minutes=10), intensity=1,
                                                     speed=45.0, occupancy=0.1, segment=f"{prefix}{SEGMENT}",
                                                     zone=ZONE, lane=1)], topic_prefix=prefix)
    run_once(ctx, ["traffic", "anomalies"])
    anomalies = db.query("SELECT * FROM traffic_anomalies WHERE sensor_id LIKE :p ORDER BY metric", {"p": f"%{prefix}%"})
    assert [(row["sensor_id"], row["metric"], row["severity"]) for row in anomalies] == [
        (sensor_a, "mean_occupancy", "high"), (sensor_a, "mean_speed_kmh", "high")]
    assert anomalies[1]["baseline_median"] == 50 and anomalies[1]["robust_z"] == pytest.approx(0.6745 * (15.6 - 50))
    alerts = read_topic(ctx, "incidents", 1)
    assert len(alerts) == 1 and json.loads(alerts[0].value)["subCategory"] == "trafficJam"
    # Both sensors' first windows closed: each announced once on traffic-windows, keyed by its road segment.
    closed = read_topic(ctx, "traffic-windows", 2)
    assert sorted((json.loads(r.value)["sensor_id"], json.loads(r.value)["flow_per_hour"]) for r in closed) == [
        (sensor_a, SENSOR_A["flow_per_hour"]), (sensor_b, SENSOR_B["flow_per_hour"])]
    assert {r.key for r in closed} == {f"urn:ngsi-ld:RoadSegment:{prefix}{SEGMENT}".encode()}

    # Now one event late but inside the watermark (its window [t0+5, t0+10) is open) and one too late (window
    # [t0, t0+5) closed): the first counts, the second is left out of the window and counted as dropped.
    counted_before, dropped_before = late_events("counted"), late_events("dropped")
    samples.publish_events(ctx.bus, [
        samples.traffic(f"{prefix}B", t0 + timedelta(minutes=6, seconds=30), intensity=7, speed=30.0, occupancy=0.2,
                        segment=f"{prefix}{SEGMENT}", zone=ZONE, lane=1),
        samples.traffic(f"{prefix}A", t0 + timedelta(minutes=1), intensity=9, speed=5.0, occupancy=0.9,
                        segment=f"{prefix}{SEGMENT}", zone=ZONE, lane=0),
    ], topic_prefix=prefix)
    run_once(ctx, ["traffic"])
    assert_row(one_row(db, "SELECT * FROM traffic_sensor_5min WHERE sensor_id = :id AND window_start = :t",
                       id=sensor_a, t=t0), SENSOR_A)
    second = one_row(db, "SELECT * FROM traffic_sensor_5min WHERE sensor_id = :id AND window_start = :t",
                     id=sensor_b, t=t0 + timedelta(minutes=5))
    assert (second["event_count"], second["flow"]) == (1, 7)
    assert late_events("counted") - counted_before == 1
    assert late_events("dropped") - dropped_before == 1


def duplicates(job: str) -> float:
    return REGISTRY.get_sample_value("smartcity_streaming_duplicates_total", {"job": job}) or 0.0


def wait_for_duplicates(before: dict[str, float], expected: dict[str, int], timeout_s: float = 20.0) -> dict:
    """The duplicates each job counted since ``before``, once they reach ``expected`` or ``timeout_s`` passed (the
    progress listener that counts them hears of a micro-batch after it ended)."""
    deadline = time.monotonic() + timeout_s
    while True:
        counted = {job: duplicates(job) - before[job] for job in expected}
        if counted == expected or time.monotonic() > deadline:
            return counted
        time.sleep(0.5)


@pytest.mark.real
def test_an_event_sent_twice_is_counted_once(real_settings, context_of, prefix):
    t0 = random_window()
    ctx = context_of(real_settings, t0)
    events = window_events(prefix, t0)
    before = {job: duplicates(job) for job in ("traffic", "mobility")}
    # Sensor A's first reading twice in one micro-batch (the same CloudEvent: the same source and id).
    samples.publish_events(ctx.bus, [*events, events[0]], topic_prefix=prefix)
    run_once(ctx, ["traffic", "mobility"])
    db = ctx.database
    sensor_a, sensor_b = (TrafficFlowObserved.make_id(prefix + name) for name in "AB")
    assert_row(one_row(db, "SELECT * FROM traffic_sensor_5min WHERE sensor_id = :id", id=sensor_a), SENSOR_A)
    assert_row(one_row(db, "SELECT * FROM traffic_segment_5min WHERE segment_id LIKE :p", p=f"%{prefix}%"),
               SEGMENT_ROW)
    assert_row(one_row(db, "SELECT * FROM mobility_index_5min WHERE zone_id = :z AND window_start = :t", z=ZONE, t=t0),
               MOBILITY_ROW)

    # A later micro-batch, the window still open: the same reading a third time, and a new one of sensor B, which
    # shows the window was updated (B: 4 + 6 vehicles at 40 km/h) while the copy was left out.
    samples.publish_events(ctx.bus, [events[0], samples.traffic(
        f"{prefix}B", t0 + timedelta(minutes=4), intensity=6, speed=40.0, occupancy=0.1,
        segment=f"{prefix}{SEGMENT}", zone=ZONE, lane=1)], topic_prefix=prefix)
    run_once(ctx, ["traffic"])
    assert_row(one_row(db, "SELECT * FROM traffic_sensor_5min WHERE sensor_id = :id", id=sensor_a), SENSOR_A)
    second = one_row(db, "SELECT * FROM traffic_sensor_5min WHERE sensor_id = :id", id=sensor_b)
    assert (second["event_count"], second["flow"], second["mean_speed_kmh"]) == (3, 10, 40.0)
    segment = one_row(db, "SELECT * FROM traffic_segment_5min WHERE segment_id LIKE :p", p=f"%{prefix}%")
    assert (segment["event_count"], segment["flow"]) == (6, 20)
    assert wait_for_duplicates(before, {"traffic": 2, "mobility": 1}) == {"traffic": 2, "mobility": 1}


def crash_run_events(prefix: str, t0: datetime) -> list:
    """Three sensors, two windows, a reading every 15 s: 120 events, published in one go."""
    return [
        samples.traffic(f"{prefix}{sensor}", t0 + timedelta(seconds=15 * step), intensity=(step * 7 + lane) % 9,
                        speed=20.0 + (step * 13 + lane * 5) % 40, occupancy=((step * 3 + lane) % 10) / 10,
                        segment=f"{prefix}{SEGMENT}", zone=ZONE, lane=lane)
        for step in range(1, 41) for lane, sensor in enumerate(("A", "B", "C"))
    ]


def window_aggregates(db, prefix: str) -> dict:
    """The traffic windows of the prefix's sensors and segment, by (table, entity without the prefix, start),
    every column but the entity ids and the time of the write; and their hours in the rollup, its counts (its
    float sums may differ in their last bits with the order the database adds the windows in)."""
    found = {}
    for table, entity in (("traffic_sensor_5min", "sensor_id"), ("traffic_segment_5min", "segment_id")):
        for row in db.query(f"SELECT * FROM {table} WHERE {entity} LIKE :p", {"p": f"%{prefix}%"}):
            found[(table, row[entity].replace(prefix, ""), str(row["window_start"]))] = {
                k: v for k, v in row.items() if k not in ("sensor_id", "segment_id", "updated_at")}
    for table, entity in (("traffic_sensor_1h", "sensor_id"), ("traffic_segment_1h", "segment_id")):
        for row in db.query(f"SELECT {entity}, hour_start, windows, event_count, flow FROM {table} "
                            f"WHERE {entity} LIKE :p", {"p": f"%{prefix}%"}):
            found[(table, row[entity].replace(prefix, ""), str(row["hour_start"]))] = {
                k: v for k, v in row.items() if k not in ("sensor_id", "segment_id")}
    return found


def uninterrupted_then_published(settings: Settings, context_of, prefix: str, name: str, per_batch: int):
    """The traffic job run uninterrupted over :func:`crash_run_events` on topics of its own (``<prefix>steady-``),
    and the same events published on a second set (``<prefix><name>-``), not run yet: (the uninterrupted run's
    :func:`window_aggregates`, the second context, its prefix)."""
    t0 = random_window()
    steady_prefix, second_prefix = f"{prefix}steady-", f"{prefix}{name}-"
    uninterrupted = context_of(settings, t0, topic_prefix=steady_prefix, max_records_per_batch=per_batch)
    samples.publish_events(uninterrupted.bus, crash_run_events(steady_prefix, t0), topic_prefix=steady_prefix)
    run_once(uninterrupted, ["traffic"], audit=False)
    second = context_of(settings, t0, topic_prefix=second_prefix, max_records_per_batch=per_batch)
    samples.publish_events(second.bus, crash_run_events(second_prefix, t0), topic_prefix=second_prefix)
    return window_aggregates(uninterrupted.database, steady_prefix), second, second_prefix


@pytest.mark.real
def test_crash_after_a_write_then_restart_gives_the_same_aggregates(real_settings, context_of, prefix):
    expected, crashing, crash_prefix = uninterrupted_then_published(real_settings, context_of, prefix, "crash", 20)

    def crash_after_writing(ctx, batch, batch_id):
        traffic_windows.write(ctx, batch, batch_id)
        if batch_id == 2:
            raise RuntimeError("simulated crash: batch 2 written, its checkpoint commit never happens")

    with pytest.raises(StreamingQueryException, match="simulated crash"):
        run_once(crashing, ["traffic"], writers={"traffic": crash_after_writing}, audit=False)
    assert window_aggregates(crashing.database, crash_prefix) not in ({}, expected)  # it stopped mid-stream
    run_once(crashing, ["traffic"], audit=False)  # restart from the checkpoint: batch 2 is replayed
    assert window_aggregates(crashing.database, crash_prefix) == expected
    for table in ("sensor", "segment"):  # the rollup's hours hold their windows
        hours, windows = ([row for (name, _, _), row in expected.items() if name == f"traffic_{table}_{size}"]
                          for size in ("1h", "5min"))
        assert sum(hour["flow"] for hour in hours) == sum(window["flow"] for window in windows) > 0
        assert sum(hour["windows"] for hour in hours) == len(windows)


def test_a_job_stopped_by_a_failed_write_is_restarted_from_its_checkpoint(embedded_settings, context_of, prefix):
    expected, failing, failing_prefix = uninterrupted_then_published(embedded_settings, context_of, prefix,
                                                                     "failing", 40)

    def refused_at_batch_1(ctx, batch, batch_id):
        if batch_id == 1:
            raise RuntimeError("database is locked")  # what SQLite said to the demo's mobility job
        traffic_windows.write(ctx, batch, batch_id)

    jobs = [JOBS["traffic"]]
    queries = start_jobs(failing, jobs, writers={"traffic": refused_at_batch_1}, audit=False)
    with pytest.raises(StreamingQueryException, match="database is locked"):
        await_all(queries, timeout_s=240)
    assert restart_failed(failing, jobs, queries) == {"traffic": "builtins.RuntimeError: database is locked"}
    await_all(queries, timeout_s=240)  # the restarted query, with the job's own writer, from batch 1 on
    assert restart_failed(failing, jobs, queries) == {}  # it ended well: nothing to restart
    assert window_aggregates(failing.database, failing_prefix) == expected != {}


# A job process as `smartcity streaming run traffic [--once]` starts it, on the test's topics.
JOB_PROCESS = """
import sys
from smartcity.settings import Settings
from streaming.app import run
prefix, once, per_batch = sys.argv[1], sys.argv[2] == "once", int(sys.argv[3])
run(Settings(), ["traffic"], once=once, topic_prefix=prefix, max_records_per_batch=per_batch)
"""


def start_job_process(settings: Settings, env: dict, topic_prefix: str, *, once: bool, per_batch: int,
                      log: Path) -> subprocess.Popen:
    """The traffic job (and its audit) in a process group of its own: the Python driver and Spark's JVM."""
    env = {**os.environ, **env, "SMARTCITY_STREAMING_METRICS_PORT": "0", "SMARTCITY_STREAMING_TRIGGER_S": "0.5",
           "SMARTCITY_STREAMING_CHECKPOINT_DIR": str(settings.streaming_checkpoint_dir / topic_prefix)}
    with log.open("a") as output:
        return subprocess.Popen(
            [sys.executable, "-c", JOB_PROCESS, topic_prefix, "once" if once else "run", str(per_batch)],
            cwd=PROJECT_ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True)


def group_alive(group: int) -> bool:
    """Whether a process of process group ``group`` is still running (zombies are not)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _parent, process_group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):
            continue
        if int(process_group) == group and state != "Z":
            return True
    return False


def kill_group(process: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGKILL the job process and its JVM at once, as a lost machine would; wait until they are gone."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout_s)
    deadline = time.monotonic() + timeout_s
    while group_alive(process.pid):
        assert time.monotonic() < deadline, f"process group {process.pid} still alive after SIGKILL"
        time.sleep(0.1)


def log_tail(log: Path) -> str:
    return log.read_text(errors="replace")[-3000:] if log.exists() else ""


@pytest.mark.real
def test_job_process_killed_mid_stream_then_restarted_gives_the_same_aggregates(real_settings, real_stack,
                                                                                 context_of, prefix, tmp_path):
    t0 = random_window()
    steady_prefix, killed_prefix = f"{prefix}steady-", f"{prefix}killed-"
    uninterrupted = context_of(real_settings, t0, topic_prefix=steady_prefix)
    samples.publish_events(uninterrupted.bus, crash_run_events(steady_prefix, t0), topic_prefix=steady_prefix)
    run_once(uninterrupted, ["traffic"], audit=False)  # all 120 events in one micro-batch
    expected = window_aggregates(uninterrupted.database, steady_prefix)

    killed = context_of(real_settings, t0, topic_prefix=killed_prefix)
    events = crash_run_events(killed_prefix, t0)
    first_part, second_part = events[:78], events[78:]  # 6.5 of the 10 minutes; the rest arrives while it is down
    samples.publish_events(killed.bus, first_part, topic_prefix=killed_prefix)
    log = tmp_path / "job.log"
    process = start_job_process(real_settings, real_stack, killed_prefix, once=False, per_batch=6, log=log)
    try:
        deadline = time.monotonic() + 180
        while not window_aggregates(killed.database, killed_prefix):  # micro-batches of 6 events: ~13 to go
            assert process.poll() is None, f"the job stopped (exit {process.returncode}):\n{log_tail(log)}"
            assert time.monotonic() < deadline, f"no window written in 180 s:\n{log_tail(log)}"
            time.sleep(0.1)
        kill_delay = random.uniform(0.0, 1.5)  # land anywhere in a micro-batch: reading, writing, committing
        time.sleep(kill_delay)
    finally:
        kill_group(process)
    assert window_aggregates(killed.database, killed_prefix)  # some windows written; the rest of the events not

    samples.publish_events(killed.bus, second_part, topic_prefix=killed_prefix)
    process = start_job_process(real_settings, real_stack, killed_prefix, once=True, per_batch=20, log=log)
    try:
        assert process.wait(240) == 0, log_tail(log)
    finally:
        kill_group(process)
    assert window_aggregates(killed.database, killed_prefix) == expected, f"killed {kill_delay:.2f} s after a write"


def test_window_measures_do_not_depend_on_the_order_of_the_readings(spark):
    t0 = random_window()
    readings = spark.createDataFrame(
        [(10.1, 3, 0.1, t0), (20.2, 1, 0.2, t0), (30.3, 2, 0.3, t0), (None, 0, 0.4, t0)],
        "speed double, intensity long, occupancy double, event_time timestamp")

    def measured(order, *columns):
        return readings.orderBy(order).coalesce(1).agg(*columns).collect()[0]

    # The same readings added in two orders: doubles give two sums, the job's measures one.
    assert measured(F.asc("occupancy"), F.avg("occupancy")) != measured(F.desc("occupancy"), F.avg("occupancy"))
    forward = measured(F.asc("occupancy"), *traffic_windows.traffic_measures())
    assert forward == measured(F.desc("occupancy"), *traffic_windows.traffic_measures())
    assert forward["mean_occupancy"] == 0.25
    assert forward["mean_speed_kmh"] == pytest.approx((10.1 * 3 + 20.2 + 30.3 * 2) / 6, abs=1e-12)


def test_collected_records_hold_utc_datetimes_and_dicts_like_a_row_collect(spark):
    at = datetime(1999, 12, 31, 23, 59, 58, 123456, tzinfo=timezone.utc)
    batch = spark.createDataFrame(
        [("a", 3, 1.5, at, {"ce_type": "x"}, Decimal("0.100000000001"), [1.0, None], True),
         ("b", None, None, None, None, None, None, None)],
        "id string, count long, speed double, at timestamp, headers map<string,string>, exact decimal(30,12), "
        "speeds array<double>, flag boolean")
    records = collect_records(batch)
    assert records == [
        {"id": "a", "count": 3, "speed": 1.5, "at": at, "headers": {"ce_type": "x"},
         "exact": Decimal("0.100000000001"), "speeds": [1.0, None], "flag": True},
        dict.fromkeys(("count", "speed", "at", "headers", "exact", "speeds", "flag"), None) | {"id": "b"},
    ]
    assert records[0]["at"].utcoffset() == timedelta(0)
    assert collect_records(batch.where("false")) == []


def test_an_event_is_keyed_by_its_cloudevent_source_and_id_and_counted_once(spark):
    at = datetime(1999, 12, 31, 23, 59, 58, tzinfo=timezone.utc)
    same = {"ce_source": "/s", "ce_id": "1"}
    records = spark.createDataFrame(
        [(same, 0, 10, at), (same, 1, 11, at),  # a copy on another partition and offset: the same event
         ({"ce_source": "/other", "ce_id": "1"}, 0, 12, at),  # another source: another event
         ({"ce_source": "1", "ce_id": "/s"}, 0, 13, at),  # source and id swapped: another event
         ({}, 0, 14, at), ({}, 0, 15, at), ({}, 1, 14, at)],  # no ce_id: each record is its own
        "headers map<string,string>, partition int, offset long, event_time timestamp",
    ).select("*", F.lit("t").alias("topic"), *event_key())
    once = collect_records(counted_once(records, watermark_s=120))
    kept = sorted((record["partition"], record["offset"]) for record in once)
    assert kept in ([(0, 10), (0, 12), (0, 13), (0, 14), (0, 15), (1, 14)],
                    [(0, 12), (0, 13), (0, 14), (0, 15), (1, 11), (1, 14)])
    keys = [tuple(record[column] for column in EVENT_KEY) for record in once]
    assert all(isinstance(half, int) for key in keys for half in key)  # two longs
    assert len({key[0] for key in keys}) == len({key[1] for key in keys}) == len(once)  # each half tells them apart
    assert {record["window_end"] for record in once} == {datetime(2000, 1, 1, tzinfo=timezone.utc)}


def test_the_same_job_on_the_embedded_bus_gives_the_same_windows(embedded_settings, context_of, prefix):
    t0 = random_window()
    ctx = context_of(embedded_settings, t0)
    former = [ctx.checkpoint_dir / name for name in ("traffic", "traffic.v2", "mobility.v2")]
    for folder in former:  # an upgrade's leftovers: checkpoints of the jobs' former state
        (folder / "offsets").mkdir(parents=True)
    samples.publish_events(ctx.bus, window_events(prefix, t0), topic_prefix=prefix)
    run_once(ctx, ["traffic", "mobility"])
    assert not any(folder.exists() for folder in former)
    assert (ctx.checkpoint_dir / "traffic.v3").is_dir()
    db = ctx.database
    sensor_a = TrafficFlowObserved.make_id(f"{prefix}A")
    assert_row(one_row(db, "SELECT * FROM traffic_sensor_5min WHERE sensor_id = :id", id=sensor_a), SENSOR_A)
    assert_row(one_row(db, "SELECT * FROM traffic_segment_5min WHERE segment_id LIKE :p", p=f"%{prefix}%"),
               SEGMENT_ROW)
    assert_row(one_row(db, "SELECT * FROM mobility_index_5min WHERE zone_id = :z", z=ZONE), MOBILITY_ROW)
