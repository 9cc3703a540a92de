"""Weeks of simulated city history in seconds, without SUMO: what the live path would have stored.

The live simulation (SUMO, a 5 s loop) is far too slow for weeks of history. Here the traffic comes from the
macroscopic model of :mod:`smartcity.simulator.macroscopic`, in 5-minute steps over every road segment:

- demand: each segment's weekday peak demand x the daily profile of :func:`profiles.daily_profile` (weekday
  double peak, weekend single one) x day-to-day, per segment per day and persistent 5-minute noise;
- weather: the live weather source (:class:`smartcity.simulator.weather.WeatherSource`: a measured daily series
  shaped over the day), observed hourly; rain cuts capacity by 8-20 % and free-flow speed by 5-14 %, and a
  little demand;
- incidents: about ``incidents_per_day`` accidents and lane closures at random (more likely where and when
  traffic is heavy), 20-90 minutes each, cutting the capacity of their segment.

:func:`simulate_history` returns the rows of ``traffic_segment_5min`` and ``traffic_sensor_5min`` (the loops the
live simulation places, with its ids), ``weather_observations`` and ``incident_reports`` as DataFrames; the same
arguments give the same rows. :mod:`smartcity.simulator.history_store` writes them to the database.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Sequence

import numpy as np
import pandas as pd

from smartcity.events import STREAMS
from smartcity.ingest import event_id
from smartcity.simulator.city import load_city
from smartcity.simulator.history_rows import loop_rows
from smartcity.simulator.incidents import KINDS, IncidentPlan, active_alert, cleared_alert
from smartcity.simulator.macroscopic import STEPS_PER_HOUR, Roads, city_roads, loop_view, run
from smartcity.simulator.network import traffic_loops
from smartcity.simulator.profiles import daily_profile
from smartcity.simulator.source import SourceContext
from smartcity.simulator.weather import WeatherSource
from smartcity.storage.envelope import StoredEvent
from smartcity.storage.tables import stream_table

SOURCE = "/smartcity/history"
STEP = timedelta(minutes=5)
# Demand of each day of the week (Monday first) against the profile's: a busier Friday.
DAY_OF_WEEK = (0.97, 1.0, 1.0, 1.01, 1.05, 1.0, 1.0)
DAY_NOISE, SEGMENT_DAY_NOISE = 0.05, 0.06  # log-normal sigma of the city's and a segment's day
STEP_NOISE, STEP_PERSISTENCE = 0.05, 0.85  # AR(1) in logs: innovation sigma and step-to-step correlation
INCIDENT_MINUTES = (20, 90)
# Capacity left on a segment with one lane blocked: the other lanes, slowed by onlookers; a single lane keeps a
# trickle (vehicles squeezing past, or let through by the police).
ONLOOKERS, SINGLE_LANE_LEFT = 0.85, 0.3


@dataclass(frozen=True)
class CityHistory:
    """Rows of the stores' tables (5-minute aggregates without ``updated_at``), times as tz-aware UTC.

    As on the live path, segment rows are those of the segments with loops (129 of the 149: the shortest have
    none), aggregated from their loops; the model itself runs on every segment.
    """

    segments: pd.DataFrame
    sensors: pd.DataFrame
    weather: pd.DataFrame
    incidents: pd.DataFrame
    events: list[StoredEvent]  # the weather observations and incident alerts, as the store functions take them


def floor_to_step(moment: datetime) -> datetime:
    """``moment`` in UTC, floored to 5 minutes; refused without a timezone."""
    if moment.tzinfo is None:
        raise ValueError("end: a timezone is required")
    utc = moment.astimezone(timezone.utc)
    return utc - timedelta(minutes=utc.minute % 5, seconds=utc.second, microseconds=utc.microsecond)


def simulate_history(days: float, end: datetime | None = None, seed: int = 1, incidents_per_day: float = 4.0,
                     incidents: Sequence[IncidentPlan] | None = None, measurement_noise: bool = True) -> CityHistory:
    """The 5-minute windows of the ``days`` before ``end`` (default now; floored to 5 minutes).

    ``incidents`` replaces the random ones (a plan's lane None: a random loop lane). ``measurement_noise=False``:
    the same city (demand, weather, incidents, queues) as the loops would see it without their measurement noise
    (:func:`~smartcity.simulator.history_rows.loop_rows`), for the noise floor of a forecast's error.
    """
    if days <= 0:
        raise ValueError(f"days: must be above 0, not {days}")
    end = floor_to_step(end or datetime.now(timezone.utc))
    steps = round(days * 24 * STEPS_PER_HOUR)
    windows = pd.date_range(end - steps * STEP, periods=steps, freq=STEP, tz="UTC")
    demand_rng, incident_rng, loop_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(3))
    roads = city_roads()
    weather_events = hourly_weather(windows, seed)
    rain = rain_per_step(windows, weather_events)
    if incidents is None:
        plans = random_incidents(roads, windows, incidents_per_day, incident_rng)
    else:
        plans = [plan if plan.lane else replace(plan, lane=_incident_lanes(roads, 1, incident_rng)[0])
                 for plan in incidents]
    saturation, speed = 1 - rain_capacity_cut(rain), 1 - rain_speed_cut(rain)
    capacity = roads.capacity * saturation[:, None] * incident_capacity(roads, windows, plans)
    flows = run(roads, travel_demand(roads, windows, rain, demand_rng), capacity)
    view = loop_view(roads, flows, saturation[:, None], speed[:, None])
    segments, sensors = loop_rows(roads, view, windows, loop_rng, noise=measurement_noise)
    events = [_stored("weather", e) for e in weather_events] + [
        _stored("incidents", alert) for n, plan in enumerate(plans) for alert in _alerts(n, plan, end)]
    return CityHistory(segments, sensors, _table_frame(events, "weather"), _table_frame(events, "incidents"),
                       events)


def simulate_segments(days: float, end: datetime | None = None, seed: int = 1) -> pd.DataFrame:
    """The rows of ``traffic_segment_5min`` that :func:`simulate_history` gives (for a model, without a store)."""
    return simulate_history(days, end, seed).segments


# --- the weather ------------------------------------------------------------------------------------------------


def hourly_weather(windows: pd.DatetimeIndex, seed: int) -> list:
    """The live weather source's observations at every hour the windows touch."""
    first = windows[0].floor("h").to_pydatetime()
    source = WeatherSource(SourceContext(seed, first, load_city()))
    hours = pd.date_range(first, windows[-1], freq="h")
    return [event for hour in hours for event in source.observe(hour.to_pydatetime())]


def rain_per_step(windows: pd.DatetimeIndex, weather: list) -> np.ndarray:
    """mm/h of rain in each window: the city-wide mean of the stations' hourly observations."""
    by_hour = pd.DataFrame({"hour": [e.dateObserved for e in weather], "rain": [e.precipitation for e in weather]})
    hourly = by_hour.groupby("hour")["rain"].mean()
    return hourly.reindex(windows.floor("h")).to_numpy(float)


def rain_capacity_cut(rain: np.ndarray) -> np.ndarray:
    """Share of capacity lost in rain: 8 % in a drizzle to 20 % from 3 mm/h on (HCM: 10-20 %)."""
    return np.where(rain > 0, 0.08 + 0.04 * np.minimum(rain, 3), 0.0)


def rain_speed_cut(rain: np.ndarray) -> np.ndarray:
    """Share of free-flow speed lost in rain: 5 % to 14 %."""
    return np.where(rain > 0, 0.05 + 0.03 * np.minimum(rain, 3), 0.0)


# --- demand ---------------------------------------------------------------------------------------------------


def travel_demand(roads: Roads, windows: pd.DatetimeIndex, rain: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Vehicles/h wanting through each segment in each window, (windows, segments)."""
    local = (windows + STEP / 2).tz_convert(load_city().timezone)
    hours = local.hour + local.minute / 60
    profile = np.array([daily_profile(h, d < 5) for h, d in zip(hours, local.day_of_week)])
    day = (local.normalize() - local[0].normalize()).days.to_numpy()
    days = day.max() + 1
    city_day = np.exp(rng.normal(0, DAY_NOISE, days))[day] * np.asarray(DAY_OF_WEEK)[local.day_of_week]
    segment_day = np.exp(rng.normal(0, SEGMENT_DAY_NOISE, (days, len(roads.edges))))[day]
    innovations = rng.normal(0, STEP_NOISE, (len(windows), len(roads.edges)))
    persistent = np.empty_like(innovations)
    level = innovations[0] / math.sqrt(1 - STEP_PERSISTENCE ** 2)
    for t, shock in enumerate(innovations):
        level = STEP_PERSISTENCE * level + shock if t else level
        persistent[t] = level
    stay_home = 1 - 0.01 * np.minimum(rain, 3)
    return roads.peak_demand * (profile * city_day * stay_home)[:, None] * segment_day * np.exp(persistent)


# --- incidents ------------------------------------------------------------------------------------------------


def random_incidents(roads: Roads, windows: pd.DatetimeIndex, per_day: float,
                     rng: np.random.Generator) -> list[IncidentPlan]:
    """About ``per_day`` incidents a day on loop lanes, more likely in heavy traffic and on busy roads."""
    count = rng.poisson(per_day * len(windows) / (24 * STEPS_PER_HOUR))
    if not count:
        return []
    local = windows.tz_convert(load_city().timezone)
    when = np.array([0.2 + daily_profile(t.hour + t.minute / 60, t.day_of_week < 5) for t in local])
    steps = rng.choice(len(windows), count, p=when / when.sum())
    lanes = _incident_lanes(roads, count, rng)
    minutes = rng.uniform(*INCIDENT_MINUTES, count)
    kinds = rng.choice(sorted(KINDS), count)
    plans = [IncidentPlan(str(kind), windows[s].to_pydatetime(), round(float(m), 1), lane)
             for s, lane, m, kind in zip(steps, lanes, minutes, kinds)]
    return sorted(plans, key=lambda plan: plan.start)


def _incident_lanes(roads: Roads, count: int, rng: np.random.Generator) -> list[str]:
    """``count`` loop lanes drawn in proportion to their segment's traffic."""
    lanes = [d.lane for d in traffic_loops()]
    index = roads.index()
    exposure = np.array([roads.peak_demand[index[lane.rsplit("_", 1)[0]]] for lane in lanes])
    return [lanes[i] for i in rng.choice(len(lanes), count, p=exposure / exposure.sum())]


def incident_capacity(roads: Roads, windows: pd.DatetimeIndex, plans: Sequence[IncidentPlan]) -> np.ndarray:
    """Factor 0..1 of each segment's capacity in each window: the blocked lane for the part of the window."""
    factor = np.ones((len(windows), len(roads.edges)))
    starts, index = windows.as_unit("ns").asi8, roads.index()  # ns since the epoch
    step = STEP // timedelta(microseconds=1) * 1000
    for plan in plans:
        segment = index[plan.lane.rsplit("_", 1)[0]]
        lanes = roads.lanes[segment]
        left = (lanes - 1) / lanes * ONLOOKERS if lanes > 1 else SINGLE_LANE_LEFT
        begin = pd.Timestamp(plan.start).value
        finish = begin + round(plan.minutes * 60e9)
        overlap = (np.minimum(starts + step, finish) - np.maximum(starts, begin)) / step
        factor[:, segment] *= 1 - np.clip(overlap, 0, 1) * (1 - left)
    return factor


def _alerts(number: int, plan: IncidentPlan, end: datetime) -> list:
    """The incident's ``active`` Alert, and its ``cleared`` one if it is over by ``end``."""
    loop = next((d for d in traffic_loops() if d.lane == plan.lane), None)
    # a lane without a loop: the middle of its segment
    place = loop or load_city().segments[plan.lane.rsplit("_", 1)[0]]
    name = f"history-{plan.start.astimezone(timezone.utc):%Y%m%dT%H%M}-{number}"
    alert = active_alert(name, plan.kind, plan.lane, plan.start, plan.minutes, place.lon, place.lat, place.zone)
    over = plan.start + timedelta(minutes=plan.minutes)
    return [alert, cleared_alert(alert, over)] if over <= end else [alert]


# --- stored events --------------------------------------------------------------------------------------------


def _stored(stream: str, event) -> StoredEvent:
    return StoredEvent(stream, event_id(STREAMS[stream], event), SOURCE, event)


def _table_frame(events: list[StoredEvent], stream: str) -> pd.DataFrame:
    """The rows the time-series writer makes of the ``stream`` events, times in UTC."""
    table = stream_table(stream)
    rows = [table.row(e.event_id, e.event) for e in events if e.stream == stream]
    frame = pd.DataFrame(rows, columns=[column.name for column in table.columns])
    for column in table.columns:
        if column.kind == "timestamp":
            frame[column.name] = pd.to_datetime(frame[column.name], utc=True)
    return frame
