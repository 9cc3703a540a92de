"""The Spark path of the fault harness (bench/faults.py): the traffic streaming job on the harness's own Kafka and
PostgreSQL, and a run's 5-minute windows as they compare with the reference run's.

The job is ``smartcity streaming run traffic`` (the job and its audit), a process group of its own with its own
checkpoint folder, so a SIGKILL takes its Python driver and Spark's JVM at once and a restart resumes from the
checkpoint. Each run's readings have event times of their own (the reference run first, each later run later,
``run_span`` apart), so one run's readings never fall behind the watermark another run's moved, and a window of a
run holds that run's readings alone; windows are compared by entity and by their offset from the run's start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from streaming.runner import WINDOW_S

JOB_ARGS = ["streaming", "run", "traffic"]
READING_EVERY_S = 0.01  # event time between two readings of a run (bench/faults.py's reading())
MEASURES = ("event_count", "flow", "mean_speed_kmh", "mean_occupancy", "speed_p50_kmh", "speed_p85_kmh",
            "speed_p95_kmh")


def job_environment(env: dict[str, str], checkpoints: str) -> dict[str, str]:
    """The job's environment: the harness's servers (in ``env``), its checkpoints, no metrics port."""
    return {**env, "SMARTCITY_STREAMING_CHECKPOINT_DIR": checkpoints, "SMARTCITY_STREAMING_METRICS_PORT": "0",
            "SMARTCITY_STREAMING_TRIGGER_S": "1"}


def run_span(events: int) -> timedelta:
    """Event time between the starts of two runs: whole windows covering a run's readings, and one empty window."""
    return timedelta(seconds=(math.ceil(events * READING_EVERY_S / WINDOW_S) + 1) * WINDOW_S)


def first_start(runs: int, events: int, now: datetime) -> datetime:
    """The first run's start: on a window boundary, the last run ending an hour before ``now``."""
    earliest = now - timedelta(hours=1) - runs * run_span(events)
    return datetime.fromtimestamp(earliest.timestamp() // WINDOW_S * WINDOW_S, timezone.utc)


@dataclass(frozen=True)
class Windows:
    """A run's windows in ``traffic_sensor_5min`` and ``traffic_segment_5min``, keyed by (sensor number or
    ``segment``, seconds from the run's start), each with its ``MEASURES``."""

    measures: dict[tuple[str, float], tuple]
    rows: int

    @property
    def events(self) -> int:
        """Readings counted in the run's sensor windows: more than were sent means some were counted twice."""
        return sum(values[0] for (entity, _), values in self.measures.items() if entity != "segment")

    @property
    def flow(self) -> int:
        return sum(values[1] for (entity, _), values in self.measures.items() if entity != "segment")

    def differing(self, reference: Windows) -> int:
        """Windows missing from either run or with any measure different."""
        keys = self.measures.keys() | reference.measures.keys()
        return sum(self.measures.get(key) != reference.measures.get(key) for key in keys)


def utc(value: datetime | str) -> datetime:
    """A window's start as an aware datetime: PostgreSQL gives one, SQLite (the unit test's) its ISO text."""
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


TABLES = (("traffic_sensor_5min", "sensor_id", "%:faults-{run}-%"),
          ("traffic_segment_5min", "segment_id", "%:faults-{run}"))


def read_windows(db, run: str, start: datetime) -> Windows:
    """The run's windows (sensors ``...:faults-<run>-<n>``, segment ``...:faults-<run>``)."""
    measures: dict[tuple[str, float], tuple] = {}
    rows = 0
    for table, column, pattern in TABLES:
        for row in db.query(f"SELECT {column} AS entity, window_start, {', '.join(MEASURES)} FROM {table} "
                            f"WHERE {column} LIKE :run", {"run": pattern.format(run=run)}):
            rows += 1
            entity = row["entity"].rsplit("-", 1)[1] if column == "sensor_id" else "segment"
            offset = (utc(row["window_start"]) - start).total_seconds()
            measures[(entity, offset)] = tuple(row[name] for name in MEASURES)
    return Windows(measures, rows)
