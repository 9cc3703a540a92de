"""Simulated history into the platform's stores: ``smartcity history generate`` and :func:`generate_history`.

The database is prepared as at every start (:func:`smartcity.storage.prepare.prepare_storage`), then each day of
5-minute aggregates is upserted into ``traffic_segment_5min`` and ``traffic_sensor_5min`` on their keys with
the streaming job's own upsert (:func:`smartcity.storage.traffic_hourly.upsert_windows`, which recomputes their
hours in the hourly rollup ``traffic_segment_1h`` / ``traffic_sensor_1h`` too), one transaction a day; the weather
observations and incident alerts go through the time-series writer, keyed on their event ids; the loops are
added to the ``sensors`` reference table. Running it twice leaves one row per key.
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
    days = _day_bounds(history.segments["window_start"])
    for number, (first, last) in enumerate(days, 1):
        with db.transaction():
            for table, frame_name in TABLES.items():
                frame = getattr(history, frame_name)
                starts = frame["window_start"]
                chunk = frame.iloc[starts.searchsorted(first):starts.searchsorted(last)]
                rows[table] = rows.get(table, 0) + upsert_windows(db, table, records(chunk, updated_at=now))
        say(f"wrote day {number}/{len(days)}: windows from {first:%Y-%m-%d %H:%M} UTC")
    return rows


def _day_bounds(starts: pd.Series) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """(first, end) of each day's worth of windows, from the first window on."""
    first, last = starts.iloc[0], starts.iloc[-1]
    day = pd.Timedelta(days=1)
    return [(first + n * day, first + (n + 1) * day) for n in range(int((last - first) / day) + 1)]


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

