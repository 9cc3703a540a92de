"""Series on a regular time grid: the one shape every forecaster and baseline reads.

A :class:`Panel` holds many series (road segments, sensors, or the rows of a city's CSV) on one regular grid of
``step_min`` minutes: ``values[series, time]``, NaN where a value is missing. Models never see a long table:
:func:`panel_from_frame` detects the interval and places each row on the grid, refusing input it cannot read with
a :class:`BadSeriesInput` that names the column and the reason.

Covariates (``exog``) are arrays on the same grid, one row per series (``[n_series, n_times]``): rain, active
incidents ... Road-network neighbours are indices into the series, so a model can read upstream and downstream
values at the same time step.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

MIN_DAYS = 3
MIN_POINTS_PER_SERIES = 48


class BadSeriesInput(ValueError):
    """Input series that cannot be read: names the column (or file part) and the reason."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


@dataclass
class Panel:
    """``values[s, t]`` of series ``series_ids[s]`` at ``start + t * step_min`` minutes (UTC), NaN when missing."""

    series_ids: list[str]
    start: pd.Timestamp
    step_min: int
    values: np.ndarray
    timezone: str = "UTC"
    exog: dict[str, np.ndarray] = field(default_factory=dict)
    upstream: list[list[int]] = field(default_factory=list)
    downstream: list[list[int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.values.shape[0] != len(self.series_ids):
            raise ValueError(f"values has {self.values.shape[0]} rows for {len(self.series_ids)} series")
        for name, array in self.exog.items():
            if array.shape != self.values.shape:
                raise ValueError(f"covariate {name} has shape {array.shape}, expected {self.values.shape}")

    @property
    def n_series(self) -> int:
        return self.values.shape[0]

    @property
    def n_times(self) -> int:
        return self.values.shape[1]

    @property
    def steps_per_day(self) -> int:
        return steps_per_day(self.step_min)

    def times(self) -> pd.DatetimeIndex:
        """The grid's timestamps (UTC)."""
        return pd.date_range(self.start, periods=self.n_times, freq=f"{self.step_min}min")

    def local_times(self) -> pd.DatetimeIndex:
        """The grid's timestamps as wall-clock time of the panel's time zone (for time-of-day profiles)."""
        return self.times().tz_convert(ZoneInfo(self.timezone))

    def slot_of_day(self) -> np.ndarray:
        """Index of each time step in its day, local time: 0 .. steps_per_day - 1."""
        local = self.local_times()
        return np.asarray((local.hour * 60 + local.minute) // self.step_min)

    def is_weekend(self) -> np.ndarray:
        return np.asarray(self.local_times().day_of_week >= 5)

    def day_index(self) -> np.ndarray:
        """Calendar day of each step, local time, counted from the first day (0, 1, ...)."""
        local = self.local_times().normalize()
        return np.asarray((local - local[0]).days)

    def horizon_steps(self, horizons_min: list[int] | tuple[int, ...]) -> list[int]:
        """Each horizon in grid steps; BadSeriesInput when one is not a multiple of the interval."""
        steps = []
        for minutes in horizons_min:
            if minutes <= 0 or minutes % self.step_min:
                raise BadSeriesInput("horizons", f"{minutes} min is not a positive multiple of the data's "
                                                  f"{self.step_min}-minute interval")
            steps.append(minutes // self.step_min)
        return steps

    def index_of(self, moment: pd.Timestamp) -> int:
        """The grid index of ``moment`` (floored to the interval)."""
        return int((pd.Timestamp(moment) - self.start) // pd.Timedelta(minutes=self.step_min))

    def subset(self, rows: list[int]) -> Panel:
        """The panel of some series only (neighbours outside ``rows`` are dropped)."""
        position = {old: new for new, old in enumerate(rows)}
        keep = lambda links: [[position[n] for n in links[r] if n in position] for r in rows] if links else []
        return Panel([self.series_ids[r] for r in rows], self.start, self.step_min, self.values[rows],
                     self.timezone, {k: v[rows] for k, v in self.exog.items()}, keep(self.upstream),
                     keep(self.downstream))

    def until(self, end: int) -> Panel:
        """The panel of the first ``end`` steps: what was known at step ``end - 1``."""
        return Panel(self.series_ids, self.start, self.step_min, self.values[:, :end], self.timezone,
                     {k: v[:, :end] for k, v in self.exog.items()}, self.upstream, self.downstream)


def detect_step_min(timestamps: pd.Series) -> int:
    """The data's interval in minutes: the most common positive gap between a series' consecutive timestamps."""
    gaps = timestamps.diff().dropna()
    gaps = gaps[gaps > pd.Timedelta(0)]
    if gaps.empty:
        raise BadSeriesInput("timestamp", "fewer than two distinct timestamps in a series: no interval to detect")
    minutes = gaps.mode().iloc[0].total_seconds() / 60
    if minutes < 1 or minutes != int(minutes) or 1440 % int(minutes):
        raise BadSeriesInput("timestamp", f"the detected interval, {minutes:g} min, is not a whole number of "
                                          "minutes that divides a day")
    return int(minutes)


OFFSET = re.compile(r"(?:Z|[+-]\d\d:?\d\d)$")  # a timestamp's UTC offset, at its end
UTC_PROFILES_NOTE = (
    "note: timezone: not given, so the time-of-day profiles follow UTC; where the series' clocks change (daylight "
    "saving time), their daily rhythm moves an hour against UTC twice a year and every model sees it an hour off "
    "from then on: give the zone (--timezone Europe/Paris)")
WALL_CLOCK_NOTE = (
    "note: timezone: not given; the timestamps' UTC offsets change ({offsets}), so they are local times and the "
    "time-of-day profiles follow their wall clock")


def utc_offsets(timestamps: Iterable[str]) -> list[str]:
    """The distinct UTC offsets the timestamps end with, ``Z`` as ``+00:00``, in order."""
    found = {match.group(0) for text in timestamps if (match := OFFSET.search(str(text).strip()))}
    return sorted({"+00:00" if o == "Z" else f"{o[:3]}:{o[-2:]}" for o in found})


def timezone_note(timestamps: Iterable[str], timezone: str | None) -> str | None:
    """What a command says of the clock its profiles follow when no zone was given and the timestamps name their
    UTC offset: their wall clock where the offsets change (:func:`parse_timestamps`), else UTC, which is not the
    series' own clock where it changes. Wall-clock timestamps (no offset) keep their clock as UTC: no note."""
    if timezone is not None:
        return None
    offsets = utc_offsets(timestamps)
    if len(offsets) > 1:
        return WALL_CLOCK_NOTE.format(offsets=", ".join(offsets))
    return UTC_PROFILES_NOTE if offsets else None


def parse_timestamps(column: pd.Series, timezone: str | None) -> pd.Series:
    """Timestamps as UTC: with an offset as given; without one, as wall-clock time of ``timezone``.

    ``timezone`` None: UTC, except when the timestamps name more than one UTC offset (``+01:00`` in winter,
    ``+02:00`` in summer): they are then local times, and their wall clock (the offsets left out) is what the
    time-of-day profiles follow, read as UTC."""
    if timezone is None:
        if len(utc_offsets(column.dropna())) > 1:
            column = column.astype(str).str.strip().str.replace(OFFSET, "", regex=True)
        timezone = "UTC"
    try:
        parsed = pd.to_datetime(column, errors="coerce", utc=False, format="mixed")
    except ValueError:  # offsets that differ (a clock change): the instants they name
        parsed = pd.to_datetime(column, errors="coerce", utc=True, format="mixed")
    bad = parsed.isna() & column.notna()
    if column.isna().any() or bad.any():
        row = int(np.flatnonzero((bad | column.isna()).to_numpy())[0])
        raise BadSeriesInput("timestamp", f"row {row + 2} of the file: {column.iloc[row]!r} is not a timestamp")
    if getattr(parsed.dt, "tz", None) is None:
        try:
            return parsed.dt.tz_localize(ZoneInfo(timezone), ambiguous="NaT", nonexistent="NaT").dt.tz_convert("UTC")
        except (TypeError, ValueError):  # mixed offsets parse to objects
            pass
    return pd.to_datetime(parsed, utc=True)


def panel_from_frame(frame: pd.DataFrame, timezone: str = "UTC", value: str = "value") -> Panel:
    """A long table ``series_id, timestamp, value`` (``series_id`` optional: one series) on its regular grid.

    The interval is the most common gap; rows off the grid are floored onto it; a duplicate timestamp keeps the
    last value. :class:`BadSeriesInput` names a missing column, an unparsable timestamp or value, or too little data.
    """
    for column in ("timestamp", value):
        if column not in frame.columns:
            raise BadSeriesInput(column, f"missing column (the file has {', '.join(map(str, frame.columns)) or 'none'})")
    frame = frame.copy()
    if "series_id" not in frame.columns:
        frame["series_id"] = "series"
    frame["series_id"] = frame["series_id"].astype(str)
    frame["timestamp"] = parse_timestamps(frame["timestamp"], timezone)
    numbers = pd.to_numeric(frame[value], errors="coerce")
    bad = numbers.isna() & frame[value].notna() & (frame[value].astype(str).str.strip() != "")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise BadSeriesInput(value, f"row {row + 2} of the file: {frame[value].iloc[row]!r} is not a number")
    frame[value] = numbers
    frame = frame.dropna(subset=["timestamp"]).sort_values(["series_id", "timestamp"])
    if frame.empty:
        raise BadSeriesInput("timestamp", "no rows")
    per_series = [group for _, group in frame.groupby("series_id")["timestamp"] if group.nunique() > 1]
    if not per_series:
        raise BadSeriesInput("timestamp", "no series has two distinct timestamps: no interval to detect")
    step = int(pd.Series([detect_step_min(group) for group in per_series]).mode().iloc[0])
    start = frame["timestamp"].min().floor(f"{step}min")
    end = frame["timestamp"].max().floor(f"{step}min")
    n_times = int((end - start) // pd.Timedelta(minutes=step)) + 1
    series_ids = sorted(frame["series_id"].unique())
    rows = frame["series_id"].map({s: i for i, s in enumerate(series_ids)}).to_numpy()
    cols = ((frame["timestamp"] - start) // pd.Timedelta(minutes=step)).to_numpy().astype(np.int64)
    values = np.full((len(series_ids), n_times), np.nan)
    values[rows, cols] = frame[value].to_numpy(dtype=np.float64)
    return Panel(series_ids, start, step, values, timezone)


def check_enough_history(panel: Panel, train_end: int) -> None:
    """BadSeriesInput unless the training part spans :data:`MIN_DAYS` days with enough values per series."""
    days = train_end * panel.step_min / 1440
    if days < MIN_DAYS:
        raise BadSeriesInput("timestamp", f"too little data: the training part covers {days:.1f} days, "
                                          f"at least {MIN_DAYS} are needed")
    counts = np.sum(~np.isnan(panel.values[:, :train_end]), axis=1)
    if counts.max(initial=0) < MIN_POINTS_PER_SERIES:
        raise BadSeriesInput("value", f"too little data: no series has {MIN_POINTS_PER_SERIES} values to train on")


def steps_per_day(step_min: int) -> int:
    """The grid steps of a day of ``step_min``-minute data (a profile's slots a day)."""
    return 1440 // step_min
