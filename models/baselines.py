"""The two baselines every model and every report sits beside.

- :class:`HistoricalAverage`: the mean of the series at the same time of day (slot of the grid, local time) on
  the same kind of day (weekday or weekend), over the training part; P10/P90 are that cell's empirical quantiles.
- :class:`Persistence`: the last observed value, with P10/P90 from the training part's changes over each horizon.

:class:`Profiles` is the historical average as a building block: models read it as a feature (what is usual
then) and as a fallback, smoothed over neighbouring slots where held-out training days show that it errs less
(:meth:`Profiles.anchor`; the baseline itself never is). A series it has not seen gets the mean shape of
the known series, scaled to the level of its own recent values; the forecaster's ``info`` says so.
"""

from __future__ import annotations

import warnings
from functools import lru_cache

import numpy as np
import pandas as pd

from models.base import Forecaster, json_file, read_json_file
from models.panel import MIN_DAYS, Panel, steps_per_day

# A cell with fewer values than this borrows from its neighbouring slots (same day kind).
MIN_CELL_VALUES = 3
DAY_KINDS = 2  # weekday, weekend
#: the widths (slots each side) a learned model's profiles may be smoothed over, up to SMOOTHING_MAX_MIN each side
SMOOTHING_SLOTS = (0, 1, 2, 3, 4, 6)
SMOOTHING_MAX_MIN = 30
#: the last share of the training days that picks the smoothing
SMOOTHING_HOLDOUT = 0.2


class Profiles:
    """Per series: mean, P10 and P90 per (day kind, slot of day), and the series' overall level."""

    def __init__(self, step_min: int, series_ids: list[str], mean: np.ndarray, low: np.ndarray,
                 high: np.ndarray) -> None:
        self.step_min = step_min
        self.series_ids = list(series_ids)
        self.row = {series: i for i, series in enumerate(self.series_ids)}
        self.mean, self.low, self.high = mean, low, high  # [n_series, DAY_KINDS, steps_per_day]
        self.smoothing_slots = 0  # the anchor's smoothing (fit_smoothed); these tables stay unsmoothed
        self._anchor: Profiles | None = None
        self.level = np.nanmean(mean.reshape(len(series_ids), -1), axis=1) if len(series_ids) else np.zeros(0)

    @classmethod
    def fit(cls, panel: Panel, train_end: int) -> Profiles:
        slots, kinds = panel.slot_of_day()[:train_end], panel.is_weekend()[:train_end].astype(int)
        spd = panel.steps_per_day
        frame = pd.DataFrame({
            "series": np.repeat(np.arange(panel.n_series), train_end),
            "cell": np.tile(kinds * spd + slots, panel.n_series),
            "value": panel.values[:, :train_end].ravel(),
        }).dropna()
        shape = (panel.n_series, DAY_KINDS * spd)
        grouped = frame.groupby(["series", "cell"])["value"]
        tables = []
        for stat in (grouped.mean(), grouped.quantile(0.1), grouped.quantile(0.9), grouped.count()):
            table = np.full(shape, np.nan)
            table[stat.index.get_level_values(0), stat.index.get_level_values(1)] = stat.to_numpy()
            tables.append(table.reshape(panel.n_series, DAY_KINDS, spd))
        mean, low, high, count = tables
        mean, low, high = (_fill_sparse_cells(t, np.nan_to_num(count)) for t in (mean, low, high))
        # a series without a value in the training part (a sensor installed since) is forecast as unknown
        seen = np.isfinite(mean).any(axis=(1, 2))
        return cls(panel.step_min, list(np.asarray(panel.series_ids, dtype=object)[seen]), mean[seen], low[seen],
                   high[seen])

    @classmethod
    def fit_smoothed(cls, panel: Panel, train_end: int) -> Profiles:
        """The profiles of :meth:`fit` (the historical average, which a learned model issues beside itself), with
        the smoothing its :meth:`anchor` gets: as wide as held-out training days show that it pays
        (:func:`smoothing_width`)."""
        profiles = cls.fit(panel, train_end)
        profiles.smoothing_slots = smoothing_width(panel, train_end)
        return profiles

    def anchor(self) -> Profiles:
        """What a learned model forecasts a departure from: these profiles, each cell averaged with
        :attr:`smoothing_slots` neighbouring slots on each side (itself when none). A cell of 5-minute counts is
        the mean of a few dozen noisy values; its neighbours are as usual as it, so their mean errs less."""
        if not self.smoothing_slots:
            return self
        if self._anchor is None:
            tables = (smoothed_slots(table, self.smoothing_slots) for table in (self.mean, self.low, self.high))
            self._anchor = Profiles(self.step_min, self.series_ids, *tables)
            self._anchor.smoothing_slots, self._anchor.level = self.smoothing_slots, self.level  # the same scale
        return self._anchor

    def expected(self, panel: Panel, steps: np.ndarray, which: str = "mean",
                 context_end: int | None = None) -> np.ndarray:
        """``[n_series, len(steps)]``: the profile's value at grid indices ``steps`` of ``panel``'s series.

        A step may lie beyond the panel's end (a forecast's target time). Series unknown to the profiles get
        the known series' mean shape scaled to the level of their values before ``context_end`` (default
        ``steps.min()``; a forecast passes its first origin + 1, so that no target's value is read)."""
        steps = np.asarray(steps, dtype=np.int64)
        context_end = max(int(steps.min()) if context_end is None else int(context_end), 1)
        slots, kinds = local_slots(panel.start, panel.step_min, panel.timezone, self.step_min, steps.tobytes())
        table = {"mean": self.mean, "low": self.low, "high": self.high}[which]
        out = np.empty((panel.n_series, len(steps)))
        for row, series in enumerate(panel.series_ids):
            known = self.row.get(series)
            if known is not None:
                out[row] = table[known, kinds, slots]
            else:
                out[row] = self._shape(table)[kinds, slots] * self._level_of(panel.values[row, :context_end])
        return out

    def scales(self, panel: Panel, context_end: int) -> np.ndarray:
        """``[n_series]``: each series' scale, to put every series on one footing: its profile level when known,
        else the level its values before ``context_end`` give the mean shape; 1 where there is none (a series
        that is always zero, or has no values)."""
        shape_mean = abs(float(np.nanmean(self._shape(self.mean)))) if len(self.series_ids) else 1.0
        level = np.array([self.level[self.row[s]] if s in self.row
                          else shape_mean * self._level_of(panel.values[i, :max(context_end, 1)])
                          for i, s in enumerate(panel.series_ids)], dtype=np.float64)
        return np.where(np.isfinite(level) & (np.abs(level) > 1e-6), np.abs(level), 1.0)

    def is_known(self, series: str) -> bool:
        return series in self.row

    def _shape(self, table: np.ndarray) -> np.ndarray:
        levels = np.where(self.level > 0, self.level, np.nan)[:, None, None]
        return np.nanmean(table / levels, axis=0) if len(self.series_ids) else np.ones(table.shape[1:])

    def _level_of(self, context: np.ndarray) -> float:
        recent = context[-7 * 1440 // self.step_min:]
        shape_mean = np.nanmean(self._shape(self.mean)) if len(self.series_ids) else 1.0
        level = np.nanmean(recent) / shape_mean if np.isfinite(recent).any() else np.nanmean(self.level)
        return float(level) if np.isfinite(level) else 0.0

    def to_json(self) -> dict:
        return {"step_min": self.step_min, "series_ids": self.series_ids, "smoothing_slots": self.smoothing_slots,
                "mean": _listed(self.mean), "low": _listed(self.low), "high": _listed(self.high)}

    @classmethod
    def from_json(cls, data: dict) -> Profiles:
        shape = (len(data["series_ids"]), DAY_KINDS, steps_per_day(data["step_min"]))
        arrays = [np.array(data[k], dtype=np.float64).reshape(shape) for k in ("mean", "low", "high")]
        profiles = cls(data["step_min"], data["series_ids"], *arrays)
        profiles.smoothing_slots = data.get("smoothing_slots", 0)  # artifacts written before smoothing have none
        return profiles


@lru_cache(maxsize=256)
def local_slots(start: pd.Timestamp, step_min: int, timezone: str, slot_min: int,
                     steps: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Slot of the day and day kind (0 weekday, 1 weekend), local time, of grid steps (given as int64 bytes):
    remembered, since a forecast asks for the same steps once per quantile and model."""
    times = start + pd.to_timedelta(np.frombuffer(steps, dtype=np.int64) * step_min, unit="min")
    local = pd.DatetimeIndex(times).tz_convert(timezone)
    return (np.asarray((local.hour * 60 + local.minute) // slot_min),
            np.asarray(local.day_of_week >= 5).astype(int))


def _listed(array: np.ndarray) -> list:
    return np.where(np.isfinite(array), array, None).tolist()


def smoothing_width(panel: Panel, train_end: int) -> int:
    """The width of :data:`SMOOTHING_SLOTS` (at most :data:`SMOOTHING_MAX_MIN` each side) whose smoothed profiles,
    fitted on all but the last :data:`SMOOTHING_HOLDOUT` of the training days, have the lowest MAE on those days;
    0 (none) when too few days are left to fit on. Nothing is tuned: the data picks it, the narrowest on a tie."""
    days = panel.day_index()[:train_end]
    n_days = int(days[-1]) + 1 if len(days) else 0
    held_out = max(1, round(n_days * SMOOTHING_HOLDOUT))
    widths = [w for w in SMOOTHING_SLOTS if w * panel.step_min <= SMOOTHING_MAX_MIN]
    if n_days - held_out < MIN_DAYS or len(widths) < 2:
        return 0
    split = int(np.searchsorted(days, n_days - held_out))
    trial = Profiles.fit(panel, split)
    steps = np.arange(split, train_end)
    actual = panel.values[:, split:train_end]
    table = trial.mean
    maes = []
    for width in widths:
        trial.mean = smoothed_slots(table, width)
        error = np.abs(trial.expected(panel, steps) - actual)
        maes.append(float(np.nanmean(error)) if np.isfinite(error).any() else np.inf)
    return widths[int(np.argmin(maes))]


def smoothed_slots(table: np.ndarray, width: int) -> np.ndarray:
    """``table`` [..., slot of day] averaged over ``width`` slots each side, circular in the day; NaN cells left out
    of their neighbours' means (a cell with no value around it stays NaN)."""
    if not width:
        return table
    stacked = np.stack([np.roll(table, k, axis=-1) for k in range(-width, width + 1)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(stacked, axis=0)


def _fill_sparse_cells(table: np.ndarray, count: np.ndarray) -> np.ndarray:
    """Cells with too few values take the mean of the nearest slots that have enough (circular in the day);
    a day kind with none at all (no weekend in training) takes the other kind's profile."""
    table = np.where(count >= MIN_CELL_VALUES, table, np.nan)
    filled = table.copy()
    spd = table.shape[-1]
    for radius in (1, 2, 3, 6, 12):
        missing = np.isnan(filled)
        if not missing.any():
            break
        shifted = np.stack([np.roll(table, k, axis=-1) for k in range(-radius, radius + 1) if k])
        with warnings.catch_warnings():  # cells with no neighbour yet stay NaN for the next radius
            warnings.simplefilter("ignore", RuntimeWarning)
            filled = np.where(missing, np.nanmean(shifted, axis=0), filled)
    other = filled[:, ::-1, :]
    filled = np.where(np.isnan(filled), other, filled)
    with warnings.catch_warnings():  # a series without any value stays NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        series_mean = np.nanmean(filled.reshape(filled.shape[0], -1), axis=1)[:, None, None]
    return np.where(np.isnan(filled), series_mean * np.ones((1, DAY_KINDS, spd)), filled)


class HistoricalAverage(Forecaster):
    """What is usual for this series at the target's time of day and day kind."""

    name = "historical-average"
    extra = "runtime"

    def fit(self, panel: Panel, train_end: int) -> HistoricalAverage:
        self.step_min = panel.step_min
        self.profiles = Profiles.fit(panel, train_end)
        return self

    def predict(self, panel: Panel, origins: np.ndarray) -> np.ndarray:
        steps = panel.horizon_steps(self.horizons_min)
        out = np.empty((panel.n_series, len(origins), len(steps), 3))
        for k, step in enumerate(steps):
            targets = np.asarray(origins) + step
            for q, which in enumerate(("low", "mean", "high")):
                out[:, :, k, q] = self.profiles.expected(panel, targets, which, context_end=int(np.min(origins)) + 1)
        return np.sort(out, axis=-1)

    def to_files(self) -> dict[str, bytes]:
        return {"profiles.json": json_file(self.profiles.to_json()), "params.json": json_file(self.params())}

    @classmethod
    def load_files(cls, files: dict[str, bytes]) -> HistoricalAverage:
        params = read_json_file(files, "params.json")
        model = cls(tuple(params["horizons_min"]), params["seed"])
        model.step_min = params["step_min"]
        model.profiles = Profiles.from_json(read_json_file(files, "profiles.json"))
        return model


def last_observed(values: np.ndarray, origins: np.ndarray, max_age: int) -> np.ndarray:
    """``[n_series, len(origins)]``: the newest value at or before each origin, at most ``max_age`` steps old."""
    out = np.full((values.shape[0], len(origins)), np.nan)
    for age in range(max_age + 1):
        at = np.asarray(origins) - age
        valid = at >= 0
        candidate = np.where(valid[None, :], values[:, np.clip(at, 0, None)], np.nan)
        out = np.where(np.isnan(out), candidate, out)
    return out


class Persistence(Forecaster):
    """The last observed value (at most an hour old); P10/P90 from how much the series moved over each horizon."""

    name = "persistence"
    extra = "runtime"

    def fit(self, panel: Panel, train_end: int) -> Persistence:
        self.step_min = panel.step_min
        self.max_age = max(1, 60 // panel.step_min)
        values = panel.values[:, :train_end]
        self.spread: dict[str, list[list[float]]] = {}
        relative = []
        for row, series in enumerate(panel.series_ids):
            per_horizon = []
            for step in panel.horizon_steps(self.horizons_min):
                change = values[row, step:] - values[row, :-step] if values.shape[1] > step else np.array([])
                change = change[np.isfinite(change)]
                per_horizon.append([float(np.quantile(change, 0.1)), float(np.quantile(change, 0.9))]
                                   if change.size else [0.0, 0.0])
            self.spread[series] = per_horizon
            level = np.nanmean(values[row]) if np.isfinite(values[row]).any() else np.nan
            if level and np.isfinite(level):
                relative.append(np.array(per_horizon) / level)
        self.relative_spread = np.mean(relative, axis=0).tolist() if relative else [[0.0, 0.0]] * len(self.horizons_min)
        return self

    def predict(self, panel: Panel, origins: np.ndarray) -> np.ndarray:
        last = last_observed(panel.values, np.asarray(origins), self.max_age)
        out = np.empty((panel.n_series, len(origins), len(self.horizons_min), 3))
        for row, series in enumerate(panel.series_ids):
            spread = self.spread.get(series)
            if spread is None:
                level = np.nanmean(panel.values[row, :max(int(np.min(origins)), 1)])
                spread = (np.array(self.relative_spread) * (level if np.isfinite(level) else 0.0)).tolist()
            for k, (low, high) in enumerate(spread):
                out[row, :, k] = np.stack([last[row] + low, last[row], last[row] + high], axis=-1)
        return np.sort(out, axis=-1)

    def to_files(self) -> dict[str, bytes]:
        return {"persistence.json": json_file({"spread": self.spread, "relative_spread": self.relative_spread,
                                               "max_age": self.max_age}),
                "params.json": json_file(self.params())}

    @classmethod
    def load_files(cls, files: dict[str, bytes]) -> Persistence:
        params, state = read_json_file(files, "params.json"), read_json_file(files, "persistence.json")
        model = cls(tuple(params["horizons_min"]), params["seed"])
        model.step_min, model.max_age = params["step_min"], state["max_age"]
        model.spread, model.relative_spread = state["spread"], state["relative_spread"]
        return model
