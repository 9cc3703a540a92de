"""The 5-minute windows the API's sample city is seeded with are the ones the real traffic job writes.

:mod:`tests.api_samples.sample_streaming` computes the traffic job's windows in Python, so that the API's tests and
benchmark need no Spark. Here the real job (``streaming/traffic_windows.py``, Spark, on the embedded stack: file
bus and SQLite in a temporary folder) runs over the sample city's readings, and its rows are compared with the
sample's, column by column. The SparkSession costs ~15 s to start.
"""

from __future__ import annotations

from datetime import datetime, timezone

from tests.api_samples.sample_city import traffic_readings
from tests.api_samples.sample_streaming import traffic_windows
from smartcity.api.timeseries import stored_time
from smartcity.backends.database import open_database
from smartcity.settings import Settings
from smartcity.storage.migrate import migrate
from streaming import samples
from streaming.app import JOBS, close_context, open_context, start_jobs
from streaming.runner import await_all
from streaming.session import build_session

TIMES = ("window_start", "window_end", "last_event_at")


def comparable(row: dict) -> dict:
    """A row without its write time, timestamps as UTC datetimes (SQLite gives text), floats rounded."""
    values = {}
    for name, value in row.items():
        if name == "updated_at":
            continue
        if name in TIMES:
            value = stored_time(value)
        elif isinstance(value, float):
            value = round(value, 9)
        values[name] = value
    return values


def by_key(rows: list[dict], key: str) -> dict:
    return {(row[key], comparable(row)["window_start"]): comparable(row) for row in rows}


def test_the_traffic_job_writes_the_sample_windows(tmp_path):
    now = datetime.now(timezone.utc).replace(microsecond=0)
    readings = traffic_readings(now)
    settings = Settings(bus_url=f"file://{tmp_path}/bus", database_url=f"sqlite:///{tmp_path}/smartcity.db",
                        cache_url="memory://", streaming_checkpoint_dir=tmp_path / "checkpoints",
                        streaming_metrics_port=0)
    migrate(open_database(settings.database_url))
    ctx = open_context(settings, build_session(Settings()), trigger_s=None, topic_prefix="api-sample-")
    try:
        ctx.bus.create_topics([ctx.topic("traffic-sensors")], 2)
        samples.publish_events(ctx.bus, readings, topic_prefix="api-sample-")
        await_all(start_jobs(ctx, [JOBS["traffic"]], audit=False), timeout_s=240)
        written_sensors = ctx.database.query("SELECT * FROM traffic_sensor_5min")
        written_segments = ctx.database.query("SELECT * FROM traffic_segment_5min")
    finally:
        close_context(ctx)

    sensors, segments = traffic_windows(readings, updated_at=now)
    # one reading per sensor and window; a segment's window has its two lanes'
    assert (len(written_sensors), len(written_segments)) == (len(readings), len(readings) // 2)
    assert by_key(written_sensors, "sensor_id") == by_key(sensors, "sensor_id")
    assert by_key(written_segments, "segment_id") == by_key(segments, "segment_id")
