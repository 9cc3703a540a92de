"""What the streaming jobs write, for the sample city and the API benchmark: traffic windows and anomalies.

:func:`traffic_windows` aggregates traffic readings into the traffic job's 5-minute windows per sensor and per road
segment, by the job's definitions (``streaming/traffic_windows.py``): vehicles summed, the mean speed weighted by
vehicles, speed percentiles as Spark's exact ``percentile`` with frequencies, the job's congestion-index formula.
:func:`write_traffic_windows` (:mod:`smartcity.storage.traffic_hourly`, the job's sink's) upserts them on their keys
into its tables and recomputes their hours in the hourly rollup.
``tests/integration/test_api_streaming_windows.py`` runs the real Spark job over the same readings and finds the
same rows.

:func:`flag_anomalies` judges finished sensor windows as the anomaly job does, with its own functions: the
baseline read back from ``traffic_sensor_5min`` (same hour of the day, 28 days), the robust z-score, the alert;
it upserts the rows the job writes into ``traffic_anomalies`` and returns the alerts the job would publish on the
incidents topic (they are not published here).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from smartcity.backends.database import Database
from smartcity.events import Alert, TrafficFlowObserved
from smartcity.storage.traffic_hourly import write_traffic_windows  # noqa: F401 - the sink's writer, for the samples
from smartcity.storage.upsert import upsert
from streaming.anomalies import judge_windows
from streaming.indices import congestion_index
from streaming.runner import WINDOW_S
from streaming.traffic_windows import SEGMENT_COLUMNS, SENSOR_COLUMNS, SPEED_PERCENTILES


def window_start(moment: datetime) -> datetime:
    """The start of the 5-minute window ``moment`` falls in (windows are aligned on the epoch, as Spark's)."""
    return datetime.fromtimestamp(moment.timestamp() // WINDOW_S * WINDOW_S, timezone.utc)


def percentile(counted: Sequence[tuple[float, int]], fraction: float) -> float | None:
    """Spark's exact ``percentile(value, fraction, frequency)``: each value repeated ``frequency`` times, the one
    at rank ``fraction * (n - 1)``, interpolated linearly between its neighbours."""
    ranked = sorted(counted)
    total = sum(count for _, count in ranked)
    if not total:
        return None
    position = fraction * (total - 1)

    def at(rank: int) -> float:
        seen = 0
        for value, count in ranked:
            seen += count
            if rank < seen:
                return value
        raise IndexError(rank)

    lower, upper = at(math.floor(position)), at(math.ceil(position))
    return lower + (position - math.floor(position)) * (upper - lower)


def measures(readings: Sequence[TrafficFlowObserved]) -> dict[str, Any]:
    """The traffic job's measures of one window's readings (``traffic_measures`` and ``finish_measures``)."""
    moving = [(r.averageVehicleSpeed, r.intensity) for r in readings
              if r.averageVehicleSpeed is not None and r.intensity > 0]
    vehicles_moving = sum(count for _, count in moving)
    mean_speed = sum(speed * count for speed, count in moving) / vehicles_moving if moving else None
    mean_occupancy = sum(r.occupancy for r in readings) / len(readings)
    flow = sum(r.intensity for r in readings)
    return {
        "event_count": len(readings),
        "flow": flow,
        "flow_per_hour": float(flow * 3600 / WINDOW_S),
        "mean_speed_kmh": mean_speed,
        **{name: percentile(moving, fraction) for name, fraction in SPEED_PERCENTILES.items()},
        "mean_occupancy": mean_occupancy,
        "congestion_index": congestion_index(mean_speed, mean_occupancy),
        "last_event_at": max(r.dateObserved for r in readings),
    }


def traffic_windows(readings: Iterable[TrafficFlowObserved], updated_at: datetime
                    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The rows the traffic job writes for ``readings``: per sensor (``SENSOR_COLUMNS``) and per segment."""
    by_sensor: dict[tuple[str, datetime], list[TrafficFlowObserved]] = defaultdict(list)
    by_segment: dict[tuple[str, datetime], list[TrafficFlowObserved]] = defaultdict(list)
    for reading in readings:
        start = window_start(reading.dateObserved)
        by_sensor[(reading.id, start)].append(reading)
        by_segment[(reading.refRoadSegment, start)].append(reading)
    window = timedelta(seconds=WINDOW_S)
    sensors = []
    for (sensor_id, start), group in sorted(by_sensor.items()):
        first = group[0]
        row = {"sensor_id": sensor_id, "window_start": start, "window_end": start + window,
               "segment_id": first.refRoadSegment, "zone_id": first.zone, "lane_id": first.laneId,
               "lon": first.location.coordinates[0], "lat": first.location.coordinates[1],
               **measures(group), "updated_at": updated_at}
        sensors.append({column: row[column] for column in SENSOR_COLUMNS})
    segments = []
    for (segment_id, start), group in sorted(by_segment.items()):
        row = {"segment_id": segment_id, "window_start": start, "window_end": start + window,
               "zone_id": group[0].zone, "sensor_count": len({r.id for r in group}), **measures(group),
               "updated_at": updated_at}
        segments.append({column: row[column] for column in SEGMENT_COLUMNS})
    return sensors, segments


def flag_anomalies(database: Database, windows: Sequence[dict], now: datetime) -> tuple[list[dict], list[Alert]]:
    """Judge the finished ``windows`` (sensor rows) as the anomaly job does; upsert and return its rows, and the
    alerts it would publish."""
    finished = [window for window in windows if window["window_end"] <= now]
    rows, alerts = judge_windows(database, finished, now)
    upsert(database, "traffic_anomalies", rows, key=("sensor_id", "window_start", "metric"))
    return rows, alerts
