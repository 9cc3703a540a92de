"""Simulated history into the platform's stores: ``smartcity history generate`` and :func:`generate_history`.

The database is prepared as at every start (:func:`smartcity.storage.prepare.prepare_storage`), then each day of
5-minute aggregates is upserted into ``traffic_segment_5min`` and ``traffic_sensor_5min`` on their keys with
the streaming job's own upsert (:func:`smartcity.storage.traffic_hourly.upsert_windows`, which recomputes their
hours in the hourly rollup ``traffic_segment_1h`` / ``traffic_sensor_1h`` too), one transaction a day (on SQLite,
one every :data:`SQLITE_TRANSACTION`, see there); the weather observations and incident alerts go through the
time-series writer, keyed on their event ids; the loops are added to the ``sensors`` reference table. Running it
twice leaves one row per key.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

from smartcity.extras import require

require("simulator", "numpy", "pandas")
import pandas as pd  # noqa: E402 - after the check that names the extra to install

from smartcity.backends.database import Database, open_database
from smartcity.settings import Settings
from smartcity.simulator.history import CityHistory, simulate_history
from smartcity.simulator.city import load_city
from smartcity.storage.prepare import prepare_storage
from smartcity.storage.reference import loop_site_rows, write_rows
from smartcity.storage.timeseries import TimeSeriesWriter
from smartcity.storage.traffic_hourly import upsert_windows

Progress = Callable[[str], None]
TABLES = {"traffic_segment_5min": "segments", "traffic_sensor_5min": "sensors"}
DAY = pd.Timedelta(days=1)
# SQLite has one writer at a time, and a writer kept waiting only polls for the lock, at most every 100 ms (its busy
# handler): a day per transaction (6 s for the bundled city on an idle machine) back to back kept the demo's live
# writers out until they timed out ("database is locked": a streaming job's micro-batch failed). There the history
# goes in shorter transactions, each followed by a turn of at least SQLITE_TURN_S for the others.
SQLITE_TRANSACTION = pd.Timedelta(hours=6)
SQLITE_TURN_S = 0.15


@dataclass(frozen=True)
class HistorySummary:
    """What :func:`generate_history` wrote: rows per table, the windows' span and the time it took."""

    start: datetime
    end: datetime
    rows: dict[str, int]
    seconds: float


def generate_history(settings: Settings, days: float, end: datetime | None = None, seed: int | None = None,
                     incidents_per_day: float | None = None, progress: Progress | None = None) -> HistorySummary:
    """Simulate ``days`` of history before ``end`` (default now) and write it to ``settings.database_url``.

    ``seed`` and ``incidents_per_day`` default to the simulator's settings.
    """
    started = time.monotonic()
    say = progress or (lambda message: None)
    history = simulate_history(days, end, settings.simulator_seed if seed is None else seed,
                               settings.simulator_incidents_per_day if incidents_per_day is None else incidents_per_day)
    say(f"simulated {len(history.segments):,} segment and {len(history.sensors):,} sensor windows "
        f"in {time.monotonic() - started:.1f} s")
    prepare_storage(settings)
    db = open_database(settings.database_url, settings=settings)
    try:
        rows = write_history(db, history, say)
    finally:
        db.close()
    start = history.segments["window_start"].iloc[0].to_pydatetime()
    return HistorySummary(start, history.segments["window_end"].iloc[-1].to_pydatetime(), rows,
                          time.monotonic() - started)


def write_history(db: Database, history: CityHistory, progress: Progress | None = None) -> dict[str, int]:
    """Upsert the history's rows into ``db`` (migrated), a day per transaction; return the rows per table."""
    say = progress or (lambda message: None)
    write_rows(db, "sensors", loop_site_rows(load_city().extent), update=False)
    TimeSeriesWriter(db).write(history.events)
    rows = {"weather_observations": len(history.weather), "incident_reports": len(history.incidents)}
    now = datetime.now(timezone.utc)
    sqlite = db.dialect == "sqlite"
    span = SQLITE_TRANSACTION if sqlite else DAY
    spans, per_day = _bounds(history.segments["window_start"], span), DAY // span
    days = -(-len(spans) // per_day)
    committed = 0.0
    for number, (first, last) in enumerate(spans, 1):
        windows = {table: records(_between(getattr(history, frame_name), first, last), updated_at=now)
                   for table, frame_name in TABLES.items()}
        if sqlite:  # the others' turn: the time since the last commit, this span's rows made, at least SQLITE_TURN_S
            time.sleep(max(0.0, committed + SQLITE_TURN_S - time.monotonic()))
        with db.transaction():
            for table, table_rows in windows.items():
                rows[table] = rows.get(table, 0) + upsert_windows(db, table, table_rows)
        committed = time.monotonic()
        if number % per_day == 0 or number == len(spans):
            say(f"wrote day {-(-number // per_day)}/{days}: windows up to {last:%Y-%m-%d %H:%M} UTC")
    return rows


def _bounds(starts: pd.Series, span: pd.Timedelta) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """(first, end) of each ``span`` of windows, from the first window on."""
    first, last = starts.iloc[0], starts.iloc[-1]
    return [(first + n * span, first + (n + 1) * span) for n in range(int((last - first) / span) + 1)]


def _between(frame: pd.DataFrame, first: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """The rows of ``frame`` (in window order) whose window starts in ``[first, end)``."""
    starts = frame["window_start"]
    return frame.iloc[starts.searchsorted(first):starts.searchsorted(end)]


def records(frame: pd.DataFrame, **constants: Any) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts of plain Python values: datetimes, None for NaN; plus ``constants``."""
    columns: dict[str, list] = {}
    for name in frame.columns:
        column = frame[name]
        if isinstance(column.dtype, pd.DatetimeTZDtype):  # few distinct windows: convert each once
            codes, moments = pd.factorize(column)
            moments = [moment.to_pydatetime() for moment in moments]
            columns[name] = [moments[code] for code in codes.tolist()]
        elif pd.api.types.is_float_dtype(column.dtype):
            columns[name] = [None if value != value else value for value in column.tolist()]
        else:
            columns[name] = column.tolist()
    for name, value in constants.items():
        columns[name] = [value] * len(frame)
    names = list(columns)
    return [dict(zip(names, values)) for values in zip(*columns.values())]

