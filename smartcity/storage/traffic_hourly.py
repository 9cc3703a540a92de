"""The traffic windows' hourly rollup: ``traffic_sensor_1h`` and ``traffic_segment_1h``, kept from the 5-minute tables.

A row holds one sensor's or segment's hour as the sums that the traffic history re-aggregates its 5-minute windows
with (:data:`MEASURES`: readings, vehicles, occupancy weighted by readings, each speed weighted by vehicles and the
vehicles that weigh it, windows, congestion index sum and worst), so a history bucket of whole hours made from
these rows has the very sums that one made from the windows has (:mod:`smartcity.api.history_rollup`).

Every writer of the 5-minute tables keeps it by :func:`upsert_windows`: the windows' upsert and then, in the same
transaction, the touched hours of the touched entities recomputed from the 5-minute table with one
``INSERT ... SELECT ... GROUP BY ... ON CONFLICT DO UPDATE`` (the same SQL on PostgreSQL and SQLite but for the
hour of a window, :func:`hour_sql`). Recomputing, not adding, makes it idempotent like the windows' upsert: a
replayed micro-batch or a late window leaves the hour as it would be had the windows come once, in order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from smartcity.backends.database import Database
from smartcity.backends.database.base import upsert_sql

HOUR = timedelta(hours=1)
# Each 5-minute table: its rollup, and the column that names an entity in both.
ROLLUPS = {"traffic_sensor_5min": ("traffic_sensor_1h", "sensor_id"),
           "traffic_segment_5min": ("traffic_segment_1h", "segment_id")}
VEHICLE_WEIGHTED = ("mean_speed_kmh", "speed_p50_kmh", "speed_p85_kmh", "speed_p95_kmh")
# Entities named in one statement: SQLite before 3.32 takes at most 999 parameters.
IDS_PER_STATEMENT = 500


@dataclass(frozen=True)
class Measure:
    """A rollup column: ``aggregate`` of ``of_window`` (SQL of one window's row) over the hour's windows; a count
    (bigint on PostgreSQL), an integer or a double, null where no window of the hour has the value (``optional``)."""

    name: str
    of_window: str
    kind: str = "count"
    aggregate: str = "SUM"
    optional: bool = False


MEASURES = (
    Measure("windows", "1", "integer"),
    Measure("event_count", "event_count"),
    Measure("flow", "flow"),
    Measure("occupancy_x_events", "mean_occupancy * event_count", "double"),
    *(measure for name in VEHICLE_WEIGHTED for measure in (
        Measure(f"{name}_x_flow", f"{name} * flow", "double", optional=True),
        Measure(f"{name}_flow", f"CASE WHEN {name} IS NOT NULL THEN flow END", optional=True))),
    Measure("congestion_index_sum", "congestion_index", "double"),
    Measure("congestion_index_max", "congestion_index", "double", "MAX"),
)


def hour_sql(dialect: str, column: str) -> str:
    """SQL for the start of the UTC hour a stored timestamp falls in, stored as that dialect stores times."""
    if dialect == "postgresql":
        return f"to_timestamp(FLOOR(EXTRACT(EPOCH FROM {column}) / 3600) * 3600)"
    return f"strftime('%Y-%m-%dT%H:00:00+00:00', {column})"  # the UTC isoformat() the SQLite backend writes


def utc(moment: datetime) -> datetime:
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def hour_floor(moment: datetime) -> datetime:
    return utc(moment).replace(minute=0, second=0, microsecond=0)


def hour_ceil(moment: datetime) -> datetime:
    floor = hour_floor(moment)
    return floor if floor == utc(moment) else floor + HOUR


def rollup_sql(dialect: str, window_table: str, entities: int | None = None, bounded: bool = True) -> str:
    """The upsert of the hours of ``window_table``'s rows in ``[:first, :end)`` (all of them when not ``bounded``),
    of the entities ``:e0``.. ``:e<entities - 1>`` (on PostgreSQL: the array ``:ids``; of all when None), into its
    rollup."""
    rollup, key = ROLLUPS[window_table]
    hour = hour_sql(dialect, "window_start")
    conditions = ["window_start >= :first AND window_start < :end"] if bounded else []
    source = window_table
    if entities is not None and dialect == "postgresql":
        # Each entity's windows by its key (the primary key's index, probed once per entity): with a plain IN list
        # the planner can take the window_start index instead, when the newest hour's rows are not in its
        # statistics yet, and then reads every entity's windows of those hours (the cost of a micro-batch grew
        # with the hour, from 40 ms to 1.5 s at 1,000 events/s).
        inner = " AND ".join([f"{key} = touched.entity", *conditions])
        source = (f"unnest(CAST(:ids AS text[])) AS touched(entity) "
                  f"CROSS JOIN LATERAL (SELECT * FROM {window_table} WHERE {inner}) AS windows")
        conditions = []
    elif entities is not None:
        conditions.append(f"{key} IN ({', '.join(f':e{number}' for number in range(entities))})")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    measures = ", ".join(f"{measure.aggregate}({measure.of_window}) AS {measure.name}" for measure in MEASURES)
    hours = f"(SELECT {key}, {hour} AS hour_start, {measures} FROM {source}{where} GROUP BY 1, 2) AS hours"
    return upsert_sql(rollup, [key, "hour_start", *(measure.name for measure in MEASURES)], (key, "hour_start"),
                      hours)


def refresh_hours(db: Database, window_table: str, entity_ids: Iterable[str], first: datetime, end: datetime) -> None:
    """Recompute the rollup of ``entity_ids`` over the hours from ``first``'s to the one before ``end``'s."""
    ids = sorted(set(entity_ids))
    bounds = {"first": hour_floor(first), "end": hour_ceil(end)}
    if db.dialect == "postgresql":  # one statement, the ids as an array
        db.execute(rollup_sql(db.dialect, window_table, len(ids)), {**bounds, "ids": ids})
        return
    for offset in range(0, len(ids), IDS_PER_STATEMENT):
        chunk = ids[offset:offset + IDS_PER_STATEMENT]
        db.execute(rollup_sql(db.dialect, window_table, len(chunk)),
                   {**bounds, **{f"e{number}": entity for number, entity in enumerate(chunk)}})


def upsert_windows(db: Database, window_table: str, rows: Sequence[Mapping[str, Any]]) -> int:
    """Upsert ``rows`` of ``window_table`` on their key (see :meth:`Database.upsert`) and recompute their hours in
    the rollup, in one transaction; return how many windows were written."""
    if not rows:
        return 0
    _, key = ROLLUPS[window_table]
    starts = [row["window_start"] for row in rows]
    with db.transaction():
        written = db.upsert(window_table, rows, (key, "window_start"))
        refresh_hours(db, window_table, (row[key] for row in rows), min(starts), max(starts) + timedelta(seconds=1))
    return written


def write_traffic_windows(db: Database, sensors: Sequence[Mapping[str, Any]],
                          segments: Sequence[Mapping[str, Any]]) -> None:
    """Upsert the traffic job's sensor and segment windows and their hours, in one transaction."""
    with db.transaction():
        upsert_windows(db, "traffic_sensor_5min", sensors)
        upsert_windows(db, "traffic_segment_5min", segments)
