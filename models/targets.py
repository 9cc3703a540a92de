"""What can be forecast, by name, and the stored history of it as a :class:`~models.panel.Panel`.

A target is one column of the streaming jobs' 5-minute aggregates, per road segment or per sensor::

    segment-speed   traffic_segment_5min.mean_speed_kmh   per segment_id
    segment-flow    traffic_segment_5min.flow_per_hour    per segment_id
    sensor-speed    traffic_sensor_5min.mean_speed_kmh    per sensor_id
    sensor-flow     traffic_sensor_5min.flow_per_hour     per sensor_id

:func:`load_panel` reads a time range of it (training); :func:`load_context` the last steps of a few series and
their road-network neighbours (serving, one indexed query for the values). Both place the windows on the
5-minute grid (step ``t`` holds the window that starts at ``start + 5t`` minutes) and add the covariates the
platform stores, in ``Panel.exog``:

``rain``
    The city's precipitation (mm over the past hour, ``weather_observations``; the mean over stations), carried
    forward from each observation for at most an hour, 0 where none is known. The same for every series.
``incident``
    1 while a reported incident on the series' road segment is active (``incident_reports``: from its
    ``valid_from`` to the ``valid_to`` of its latest report, open-ended while that is empty), else 0. The
    anomaly job's and the detect-anomalies function's alerts are left out: they are read off the very windows
    being forecast.

Segment targets also get the upstream and downstream neighbours among the panel's series, from
:func:`smartcity.simulator.network.neighbours` (skipped when that module is not available).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from datetime import datetime, timedelta, timezone as dt_timezone

import numpy as np
import pandas as pd

from models.panel import BadSeriesInput, Panel
from smartcity.backends.database import Database

STEP_MIN = 5
STEP = timedelta(minutes=STEP_MIN)
RAIN_CARRY_STEPS = 60 // STEP_MIN  # precipitation is over the past hour: an observation holds that long
# the streaming anomaly job's alerts (streaming.anomalies.ALERT_SOURCE, not imported: that module needs pyspark)
DETECTED_ALERT_SOURCE = "/smartcity/streaming/anomalies"
# every source of alerts the platform derives from the traffic itself (the detect-anomalies function's too):
# read off the very windows being forecast, they are no covariate, and no label for the anomaly models
DETECTED_ALERT_SOURCES = (DETECTED_ALERT_SOURCE, "/smartcity/functions/detect-anomalies")


@dataclass(frozen=True)
class Target:
    """One forecastable column of a 5-minute aggregate table, per ``key``."""

    name: str
    table: str
    key: str
    column: str
    unit: str

    @property
    def per_segment(self) -> bool:
        return self.key == "segment_id"


TARGETS = {target.name: target for target in (
    Target("segment-speed", "traffic_segment_5min", "segment_id", "mean_speed_kmh", "km/h"),
    Target("segment-flow", "traffic_segment_5min", "segment_id", "flow_per_hour", "vehicles/h"),
    Target("sensor-speed", "traffic_sensor_5min", "sensor_id", "mean_speed_kmh", "km/h"),
    Target("sensor-flow", "traffic_sensor_5min", "sensor_id", "flow_per_hour", "vehicles/h"),
)}


def target_of(name: str) -> Target:
    """The target called ``name``; BadSeriesInput (field ``target``) lists the known names."""
    try:
        return TARGETS[name]
    except KeyError:
        raise BadSeriesInput("target", f"unknown target {name!r}; known: {', '.join(TARGETS)}") from None


def city_timezone() -> str:
    from smartcity.events import city

    return city().timezone


def history_span(database: Database, target: Target) -> tuple[datetime, datetime] | None:
    """The first window's start and the last window's end stored for ``target``; None when there is none."""
    row = database.query(f"SELECT MIN(window_start) AS first, MAX(window_start) AS last FROM {target.table}")[0]
    if row["first"] is None:
        return None
    return _utc(row["first"]), _utc(row["last"]) + STEP


def load_panel(database: Database, target: Target | str, since: datetime, until: datetime,
               timezone: str | None = None, series_ids: list[str] | None = None) -> Panel:
    """Every series of ``target`` (or only ``series_ids``) on the grid of ``[since, until)``, with covariates.

    ``since`` is floored to the 5-minute grid; a window starting at or after ``until`` is left out."""
    target = target_of(target) if isinstance(target, str) else target
    start = pd.Timestamp(_utc(since)).floor(f"{STEP_MIN}min")
    n_times = max(0, -(-(pd.Timestamp(_utc(until)) - start) // pd.Timedelta(STEP)))
    return _panel(database, target, series_ids, start, n_times, timezone or city_timezone())


def load_context(database: Database, target: Target | str, series_ids: list[str], until: datetime,
                 steps: int, timezone: str | None = None) -> Panel:
    """The ``steps`` grid steps before ``until`` (pass a window's end: its window is the last step, the
    forecast origin) of ``series_ids``, then of their neighbours (segment targets), with covariates.

    The requested series come first, in the order given; a series with no stored window is all NaN."""
    target = target_of(target) if isinstance(target, str) else target
    wanted = list(dict.fromkeys(series_ids))
    if target.per_segment and (links := _neighbours()):
        around = {other for series in wanted for side in ("upstream", "downstream")
                  for other in links.get(series, {}).get(side, [])}
        wanted += sorted(around - set(wanted))
    end = pd.Timestamp(_utc(until)).floor(f"{STEP_MIN}min")
    return _panel(database, target, wanted, end - steps * pd.Timedelta(STEP), steps,
                  timezone or city_timezone(), keep_order=True)


def _panel(database: Database, target: Target, series_ids: list[str] | None, start: pd.Timestamp, n_times: int,
           timezone: str, keep_order: bool = False) -> Panel:
    until = start + n_times * pd.Timedelta(STEP)
    params = {"since": start.to_pydatetime(), "until": until.to_pydatetime()}
    where = "window_start >= :since AND window_start < :until"
    if series_ids is not None:
        where += f" AND {_member(database, target.key)}"
        params["ids"] = _ids_param(database, series_ids)
    rows = pd.DataFrame(database.query(
        f"SELECT {target.key} AS series_id, segment_id, window_start, {target.column} AS value "
        f"FROM {target.table} WHERE {where}", params), columns=["series_id", "segment_id", "window_start", "value"])
    ids = list(series_ids) if keep_order and series_ids is not None else sorted(set(rows["series_id"]) | set(series_ids or ()))
    row_of = {series: i for i, series in enumerate(ids)}
    values = np.full((len(ids), n_times), np.nan)
    if not rows.empty:
        steps = _steps(rows["window_start"], start)
        values[rows["series_id"].map(row_of).to_numpy(), steps] = pd.to_numeric(rows["value"]).to_numpy(np.float64)
    segments = _segments_of(ids, rows, target)
    exog = {"rain": np.broadcast_to(_rain(database, start, n_times), values.shape).copy(),
            "incident": _incidents(database, segments, start, n_times)}
    panel = Panel(ids, start, STEP_MIN, values, timezone, exog)
    panel.upstream, panel.downstream = network_links(target, ids)
    return panel


def network_links(target: Target, ids: list[str]) -> tuple[list[list[int]], list[list[int]]]:
    """The upstream and downstream neighbours of each of ``ids`` as row indices among ``ids`` (segment targets;
    empty lists for sensors or without a network)."""
    links = _neighbours() if target.per_segment else {}
    if not links:
        return [], []
    row_of = {series: i for i, series in enumerate(ids)}
    upstream, downstream = ([[row_of[other] for other in links.get(series, {}).get(side, []) if other in row_of]
                             for series in ids] for side in ("upstream", "downstream"))
    return upstream, downstream


def _segments_of(ids: list[str], rows: pd.DataFrame, target: Target) -> list[str | None]:
    """The road segment of each series (a sensor's, from its windows; None when it has none in the range)."""
    if target.per_segment:
        return list(ids)
    segment = rows.drop_duplicates("series_id", keep="last").set_index("series_id")["segment_id"]
    return [segment.get(series) for series in ids]


def _rain(database: Database, start: pd.Timestamp, n_times: int) -> np.ndarray:
    """``[n_times]``: the mean precipitation observed in each step, carried forward an hour; 0 where unknown."""
    looked_back = start - RAIN_CARRY_STEPS * pd.Timedelta(STEP)
    rows = pd.DataFrame(database.query(
        "SELECT observed_at, precipitation FROM weather_observations WHERE observed_at >= :since AND observed_at < :until",
        {"since": looked_back.to_pydatetime(), "until": (start + n_times * pd.Timedelta(STEP)).to_pydatetime()}),
        columns=["observed_at", "precipitation"])
    offset = RAIN_CARRY_STEPS
    rain = np.full(n_times + offset, np.nan)
    if not rows.empty:
        steps = _steps(rows["observed_at"], looked_back)
        means = pd.Series(pd.to_numeric(rows["precipitation"]).to_numpy(np.float64)).groupby(steps).mean()
        rain[means.index.to_numpy()] = means.to_numpy()
    carried = pd.Series(rain).ffill(limit=RAIN_CARRY_STEPS).fillna(0.0).to_numpy()
    return carried[offset:]


def _incidents(database: Database, segments: list[str | None], start: pd.Timestamp, n_times: int) -> np.ndarray:
    """``[n_series, n_times]``: 1 where a reported incident on the series' segment overlaps the step's window."""
    flags = np.zeros((len(segments), n_times))
    known = sorted({segment for segment in segments if segment})
    if not known or not n_times:
        return flags
    until = start + n_times * pd.Timedelta(STEP)
    rows = pd.DataFrame(database.query(
        f"SELECT entity_id, segment_id, observed_at, valid_from, valid_to FROM incident_reports "
        f"WHERE {_member(database, 'segment_id')} AND alert_source NOT IN (:detected, :detected_by_function) "
        f"AND valid_from < :until AND (valid_to IS NULL OR valid_to > :since)",
        {"ids": _ids_param(database, known), "detected": DETECTED_ALERT_SOURCES[0],
         "detected_by_function": DETECTED_ALERT_SOURCES[1],
         "since": start.to_pydatetime(), "until": until.to_pydatetime()}),
        columns=["entity_id", "segment_id", "observed_at", "valid_from", "valid_to"])
    if rows.empty:
        return flags
    for column in ("observed_at", "valid_from", "valid_to"):
        rows[column] = _timestamps(rows[column])
    rows = rows.sort_values("observed_at")
    incidents = rows.groupby("entity_id").agg(segment_id=("segment_id", "last"), begin=("valid_from", "min"),
                                               end=("valid_to", "last"))
    rows_of: dict[str | None, list[int]] = {}
    for row, segment in enumerate(segments):
        rows_of.setdefault(segment, []).append(row)
    step = pd.Timedelta(STEP)
    for incident in incidents.itertuples():
        first = max(0, (incident.begin - start) // step)
        last = n_times if pd.isna(incident.end) else min(n_times, -(-(incident.end - start) // step))
        flags[rows_of.get(incident.segment_id, []), first:last] = 1.0
    return flags


@cache
def _neighbours() -> dict[str, dict[str, list[str]]]:
    """The road network's neighbours by segment id (read once); empty when the network module is not available."""
    try:
        from smartcity.simulator.network import neighbours
        return neighbours()
    except (ImportError, OSError, KeyError, ValueError):
        return {}


def _member(database: Database, column: str) -> str:
    """A condition: ``column`` is one of the list passed as ``:ids`` (see :func:`_ids_param`)."""
    if database.dialect == "postgresql":
        return f"{column} = ANY(:ids)"
    return f"{column} IN (SELECT value FROM json_each(:ids))"


def _ids_param(database: Database, ids: list[str]) -> list[str] | str:
    return list(ids) if database.dialect == "postgresql" else json.dumps(list(ids))


def _timestamps(column: pd.Series) -> pd.Series:
    """Stored times (ISO text on SQLite, datetimes on PostgreSQL) as UTC timestamps; NaT where empty."""
    return pd.to_datetime(column, utc=True, format="ISO8601")


def _steps(column: pd.Series, start: pd.Timestamp) -> np.ndarray:
    return ((_timestamps(column) - start) // pd.Timedelta(STEP)).to_numpy(np.int64)


def _utc(moment: datetime | str) -> datetime:
    """A stored or given time as an aware UTC datetime; a naive one is refused."""
    moment = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()} has no time zone")
    return moment.astimezone(dt_timezone.utc)
