"""The window features every frame detector reads, in one place, causal: a window's features use its series'
rows at or before it only, and at most :data:`CONTEXT_STEPS` windows back.

For each metric (``flow``, ``speed``, ``occupancy``: :data:`models.anomaly.base.METRICS`), with ``expected`` the
time-of-day profile (:class:`models.baselines.Profiles`: weekday/weekend x 5-minute slot, city time) and
``level`` the series' scale (a series with too few days for a profile gets a flat one at its mean):

- ``<m>_level``: the value / level (a missing value reads as the expected one);
- ``<m>_residual``: (value - expected), standardised by the series' usual spread at that time of day and day
  kind (the profile's P10-P90, smoothed over 15 minutes either side: a peak varies more than a night);
- ``<m>_residual_15min``: the mean of that residual over the last three windows (a jam or a drift persists,
  noise does not);
- ``<m>_change``: the change from the previous window, standardised by the series' usual change then;

and two of the sensor itself: ``repeats_30min`` (share of the last six windows that repeat the previous window
exactly, every metric both have, two at least: a stuck sensor) and ``missing`` (share of the metrics missing: a
silent one).

Which profile a series gets is its ``basis``: its own when it was in the training frame (``series``); else the
mean daily shape of its road class (``road-class``; :func:`models.anomaly.base.road_class`) or of every series
(``global``), scaled to the level its last hour of values gives that shape (between a third and three times the
class's level; the class's level until three values are there): a new sensor scores from its first window.
"""

from __future__ import annotations

import warnings
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from models.anomaly.base import GLOBAL_CLASS, METRICS, STEP_MIN, UNKNOWN_CLASS, check_frame, road_classes_of
from models.baselines import DAY_KINDS, Profiles, smoothed_slots
from models.panel import Panel

SHORT = {"flow_per_hour": "flow", "mean_speed_kmh": "speed", "mean_occupancy": "occupancy"}
PER_METRIC = ("level", "residual", "residual_15min", "change")
FEATURES = tuple(f"{SHORT[m]}_{kind}" for m in METRICS for kind in PER_METRIC) + ("repeats_30min", "missing")
RESIDUAL_WINDOWS = 3
REPEAT_WINDOWS = 6
LEVEL_WINDOWS = 12  # a new series' level: from its last hour
MIN_LEVEL_VALUES = 3
CONTEXT_STEPS = max(RESIDUAL_WINDOWS, REPEAT_WINDOWS, LEVEL_WINDOWS)
MAD_TO_STD = 1.4826
SHAPE_DECIMALS = 5
P10_P90_TO_STD = 2.563  # P90 - P10 of a normal distribution, in standard deviations
MEAN_ABS_TO_STD = 1.2533  # a normal's standard deviation over its mean absolute value
SPREAD_SMOOTHING = 3  # slots either side (15 minutes)
SPREAD_FLOOR_SHARE = 0.5
MIN_RELATIVE_SPREAD = 0.01  # a residual spread of at least 1 % of the level: no division by a flat series


class FeatureBuilder:
    """Profiles, levels and usual spreads of the training series, their road classes and of all of them."""

    def __init__(self, timezone: str, series: dict[str, dict], classes: dict[str, dict]) -> None:
        self.timezone = timezone
        #: series id -> {"class": road class, metric: {"shape": [2, spd], "level", "residual", "change"}}
        self.series = series
        #: road class (and "global") -> the same, without "class"
        self.classes = classes

    @classmethod
    def fit(cls, frame: pd.DataFrame, timezone: str = "UTC") -> FeatureBuilder:
        frame = check_frame(frame)
        grid = Grid.of(frame, timezone)
        classes_of = road_classes_of(frame).groupby(frame["series_id"]).last()
        series: dict[str, dict] = {sid: {"class": str(classes_of[sid])} for sid in grid.series_ids}
        per_class: dict[str, dict] = {}
        for metric in METRICS:
            values = grid.values[metric]
            profiles = Profiles.fit(grid.panel(values), grid.n_times)
            changes = Profiles.fit(grid.panel(np.abs(values - _shift(values, 1))), grid.n_times)
            for sid in grid.series_ids:
                entry = _reference(values[grid.row[sid]], sid, profiles, changes, grid)
                if entry is not None:
                    series[sid][metric] = entry
            for name in {*classes_of.unique(), GLOBAL_CLASS}:
                members = [sid for sid in grid.series_ids
                           if metric in series[sid] and name in (GLOBAL_CLASS, series[sid]["class"])]
                if members:
                    per_class.setdefault(name, {})[metric] = _pooled([series[sid][metric] for sid in members])
        known = {sid: entry for sid, entry in series.items() if all(m in entry for m in METRICS)}
        classes = {name: entry for name, entry in per_class.items() if all(m in entry for m in METRICS)}
        return cls(timezone, known, classes)

    def basis_of(self, series_id: str, road_class: str) -> tuple[str, dict]:
        """The basis (``series``, ``road-class``, ``global``) and the reference a series' features use."""
        if series_id in self.series:
            return "series", self.series[series_id]
        if road_class != UNKNOWN_CLASS and road_class in self.classes:
            return "road-class", self.classes[road_class]
        return "global", self.classes[GLOBAL_CLASS]

    def transform(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(features [n_rows, len(FEATURES)], basis [n_rows], standardised residuals [n_rows, n_metrics])`` of
        ``frame``'s rows, in its order."""
        frame = check_frame(frame)
        out = np.full((len(frame), len(FEATURES)), np.nan)
        basis = np.empty(len(frame), dtype=object)
        residuals = np.full((len(frame), len(METRICS)), np.nan)
        if frame.empty:
            return out, basis, residuals
        grid = Grid.of(frame, self.timezone)
        classes_of = road_classes_of(frame).groupby(frame["series_id"]).last()
        row_basis, references = {}, []
        for sid in grid.series_ids:
            row_basis[sid], reference = self.basis_of(sid, str(classes_of[sid]))
            references.append((reference, row_basis[sid] == "series"))
        columns = []
        missing = np.zeros((len(grid.series_ids), grid.n_times))
        differs = np.zeros_like(missing)
        compared = np.zeros_like(missing)
        for metric in METRICS:
            values = grid.values[metric]
            expected, level = self._expected(values, references, metric, grid)
            spread, change_spread = (np.stack([np.asarray(ref[metric][kind], dtype=np.float64) for ref, _ in references])
                                     [:, grid.kinds, grid.slots] * level for kind in ("residual", "change"))
            observed = np.isfinite(values)
            filled = np.where(observed, values, expected)
            residual = (filled - expected) / spread
            change = (values - _shift(values, 1)) / change_spread
            columns += [filled / level, residual, _trailing_mean(residual, RESIDUAL_WINDOWS), np.nan_to_num(change)]
            both = observed & np.isfinite(_shift(values, 1))
            differs += both & (values != _shift(values, 1))
            compared += both
            missing += ~observed
        # a window repeats the previous one when every metric both have is exactly the same (two at least)
        repeated = ((compared >= 2) & (differs == 0)).astype(float)
        repeat_share = _trailing_mean(repeated, REPEAT_WINDOWS)
        columns += [repeat_share, missing / len(METRICS)]
        stacked = np.stack(columns, axis=-1)  # [series, time, feature]
        out[:] = stacked[grid.rows, grid.cols]
        residuals[:] = stacked[grid.rows, grid.cols][:, [1 + 4 * k for k in range(len(METRICS))]]
        basis[:] = np.array([row_basis[sid] for sid in grid.series_ids], dtype=object)[grid.rows]
        return np.clip(np.nan_to_num(out), -50, 50), basis, residuals

    def _expected(self, values: np.ndarray, references: list[tuple[dict, bool]], metric: str,
                  grid: Grid) -> tuple[np.ndarray, np.ndarray]:
        """``(expected, level)`` [series, time]: the profile's value and the level it is scaled by; a series
        without its own profile gets the level its last hour gives its reference's shape (causal)."""
        shapes = np.stack([np.asarray(ref[metric]["shape"], dtype=np.float64) for ref, _ in references])
        shape = shapes[:, grid.kinds, grid.slots]  # [series, time]
        base = np.array([ref[metric]["level"] for ref, _ in references])[:, None] * np.ones((1, grid.n_times))
        own = np.array([is_own for _, is_own in references])
        observed = np.isfinite(values) & np.isfinite(shape)
        sums = _trailing_sum(np.where(observed, values, 0.0), LEVEL_WINDOWS)
        weights = _trailing_sum(np.where(observed, shape, 0.0), LEVEL_WINDOWS)
        counts = _trailing_sum(observed.astype(float), LEVEL_WINDOWS)
        # the level before this window: last hour's values against the shape at those times
        sums, weights, counts = _shift(sums, 1), _shift(weights, 1), _shift(counts, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            estimate = np.clip(sums / weights, base / 3, base * 3)
        usable = (counts >= MIN_LEVEL_VALUES) & (weights > 0) & ~own[:, None]
        level = np.where(usable, estimate, base)
        level = np.where(np.isfinite(level) & (np.abs(level) > 1e-9), np.abs(level), 1.0)
        return np.nan_to_num(shape, nan=1.0) * level, level

    def to_json(self) -> dict:
        listed = lambda entry: {k: (v if k == "level" else _rounded(v)) for k, v in entry.items()}
        return {
            "timezone": self.timezone,
            "series": {sid: {"class": e["class"], **{m: listed(e[m]) for m in METRICS}} for sid, e in self.series.items()},
            "classes": {name: {m: listed(e[m]) for m in METRICS} for name, e in self.classes.items()},
        }

    @classmethod
    def from_json(cls, data: dict) -> FeatureBuilder:
        return cls(data["timezone"], data["series"], data["classes"])


class Grid:
    """A frame's rows on the 5-minute grid of its series: ``values[metric][series, time]``, NaN where absent."""

    def __init__(self, series_ids: list[str], start: pd.Timestamp, n_times: int, rows: np.ndarray,
                 cols: np.ndarray, values: dict[str, np.ndarray], timezone: str) -> None:
        self.series_ids, self.start, self.n_times = series_ids, start, n_times
        self.rows, self.cols, self.values, self.timezone = rows, cols, values, timezone
        self.row = {sid: i for i, sid in enumerate(series_ids)}
        local = pd.date_range(start, periods=n_times, freq=f"{STEP_MIN}min").tz_convert(ZoneInfo(timezone))
        self.slots = np.asarray((local.hour * 60 + local.minute) // STEP_MIN)
        self.kinds = np.asarray(local.day_of_week >= 5).astype(int)
        self.steps_per_day = 1440 // STEP_MIN

    @classmethod
    def of(cls, frame: pd.DataFrame, timezone: str) -> Grid:
        start = frame["window_start"].min().floor(f"{STEP_MIN}min")
        cols = ((frame["window_start"] - start) // pd.Timedelta(minutes=STEP_MIN)).to_numpy().astype(np.int64)
        series_ids = sorted(frame["series_id"].unique())
        rows = frame["series_id"].map({sid: i for i, sid in enumerate(series_ids)}).to_numpy()
        n_times = int(cols.max()) + 1
        values = {}
        for metric in METRICS:
            array = np.full((len(series_ids), n_times), np.nan)
            array[rows, cols] = frame[metric].to_numpy(dtype=np.float64)
            values[metric] = array
        return cls(series_ids, start, n_times, rows, cols, values, timezone)

    def panel(self, values: np.ndarray) -> Panel:
        return Panel(self.series_ids, self.start, STEP_MIN, values, self.timezone)


def _reference(values: np.ndarray, series_id: str, profiles: Profiles, changes: Profiles,
               grid: Grid) -> dict | None:
    """A series' reference for one metric: its daily ``shape`` (profile / level), ``level``, and the usual spread
    of its residuals and of its changes per cell, relative to the level (peaks vary more than nights); a flat one
    when it has too few days for a profile; None without any value."""
    cells = (DAY_KINDS, grid.steps_per_day)
    if series_id in profiles.row:
        row = profiles.row[series_id]
        level = float(abs(profiles.level[row]))
        shape = profiles.mean[row] / max(level, 1e-9)
        residual = _smooth_slots((profiles.high[row] - profiles.low[row]) / P10_P90_TO_STD) / max(level, 1e-9)
    elif np.isfinite(values).any():
        level, shape = float(abs(np.nanmean(values))), np.ones(cells)
        residual = np.full(cells, _relative_spreads(values, shape[grid.kinds, grid.slots] * level, level)[0])
    else:
        return None
    if series_id in changes.row:
        change = _smooth_slots(changes.mean[changes.row[series_id]] * MEAN_ABS_TO_STD) / max(level, 1e-9)
    else:
        change = np.full(cells, _relative_spreads(values, shape[grid.kinds, grid.slots] * level, level)[1])
    # rounded as saved, so that a loaded builder gives the very same features
    return {"shape": np.round(shape, SHAPE_DECIMALS), "level": level,
            "residual": np.round(_floored(residual), SHAPE_DECIMALS), "change": np.round(_floored(change), SHAPE_DECIMALS)}


def _smooth_slots(table: np.ndarray) -> np.ndarray:
    """``[DAY_KINDS, slots]`` averaged over the slots within :data:`SPREAD_SMOOTHING` of each (circular, NaN-aware):
    a few days give noisy spreads per 5-minute cell."""
    return smoothed_slots(table, SPREAD_SMOOTHING)


def _floored(table: np.ndarray) -> np.ndarray:
    """A relative spread table with no cell below :data:`MIN_RELATIVE_SPREAD` or a share of its median."""
    finite = table[np.isfinite(table)]
    floor = max(MIN_RELATIVE_SPREAD, SPREAD_FLOOR_SHARE * float(np.median(finite))) if finite.size else 0.1
    return np.where(np.isfinite(table), np.maximum(table, floor), floor)


def robust_centre_scale(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of ``x``: the median and a robust spread (MAD as a standard deviation, at least 1e-3, else the
    standard deviation when most values are equal)."""
    centre = np.median(x, axis=0)
    scale = MAD_TO_STD * np.median(np.abs(x - centre), axis=0)
    scale = np.where(scale > 1e-3, scale, np.maximum(np.std(x, axis=0), 1e-3))
    return centre, scale


def _relative_spreads(values: np.ndarray, expected: np.ndarray, level: float) -> tuple[float, float]:
    """The robust standard deviations of a series' residuals and of its changes, relative to its level."""
    out = []
    for sample in ((values - expected) / level, (values - _shift(values[None], 1)[0]) / level):
        sample = sample[np.isfinite(sample)]
        spread = MAD_TO_STD * float(np.median(np.abs(sample - np.median(sample)))) if sample.size else np.nan
        out.append(max(spread, MIN_RELATIVE_SPREAD) if np.isfinite(spread) else 0.1)
    return out[0], out[1]


def _pooled(entries: list[dict]) -> dict:
    """A road class's reference: its members' mean shape, mean level and mean relative spreads."""
    out = {"level": float(np.mean([e["level"] for e in entries]))}
    for key in ("shape", "residual", "change"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            table = np.nanmean(np.stack([np.asarray(e[key], dtype=np.float64) for e in entries]), axis=0)
        out[key] = np.round(np.nan_to_num(table, nan=1.0 if key == "shape" else 0.1), SHAPE_DECIMALS)
    return out


def _rounded(shape) -> list:
    return np.round(np.asarray(shape, dtype=np.float64), SHAPE_DECIMALS).reshape(DAY_KINDS, -1).tolist()


def _shift(array: np.ndarray, steps: int) -> np.ndarray:
    """``array[:, t - steps]`` at ``t`` (NaN before the start)."""
    out = np.full_like(array, np.nan, dtype=np.float64)
    out[:, steps:] = array[:, :-steps]
    return out


def _trailing_sum(array: np.ndarray, window: int) -> np.ndarray:
    """Sum over ``t - window + 1 .. t`` along time."""
    cumulative = np.cumsum(np.concatenate([np.zeros((array.shape[0], 1)), array], axis=1), axis=1)
    start = np.clip(np.arange(array.shape[1]) + 1 - window, 0, None)
    return cumulative[:, 1:] - cumulative[:, start]


def _trailing_mean(array: np.ndarray, window: int) -> np.ndarray:
    """Mean of the finite values over ``t - window + 1 .. t`` (0 when there is none)."""
    finite = np.isfinite(array)
    total = _trailing_sum(np.where(finite, array, 0.0), window)
    count = _trailing_sum(finite.astype(float), window)
    return np.where(count > 0, total / np.maximum(count, 1), 0.0)
