"""The features of the tree models, in one place, for every (series, origin) pair of a panel at once.

For origin ``o`` (the last observed step) and a horizon of ``h`` steps, a row describes series ``s`` with what
was known at ``o`` only (``values[:, :o + 1]`` and the covariates up to ``o``), on one scale for every series:
values are divided by the series' level (:meth:`Profiles.scales`), so one global model fits a lane of 50
vehicles/h and an arterial of 1,800. The groups, named in :func:`PanelFeatures.names`:

- ``value_lag_<m>min``, ``diff_*``: recent values and their changes; ``last_value``/``last_age_min``: the newest
  value of the last hour and how old it is (a sensor with gaps);
- ``mean_<m>min``/``std_<m>min``: causal rolling statistics over about 30 min, 1 h and 3 h;
- ``ha_origin``, ``ha_target``, ``ha_change``, ``ha_spread_target``: the historical average (Profiles) then and
  at the target time, and its P10-P90 width at the target;
- ``residual_lag_*``, ``residual_mean_*``, ``residual_day_before``/``residual_week_before``: how far the series
  is from its historical average now and was at the target's time of day a day and a week earlier;
- ``target_tod_sin``/``target_tod_cos``/``target_weekend``: the target's time of day and day kind; ``log_level``;
- ``upstream_*``/``downstream_*``: the mean normalised value and residual of the series' road-network
  neighbours (NaN when the data has no network, as in a CSV);
- ``<covariate>``/``<covariate>_mean_60min``: each covariate of ``Panel.exog`` (rain, incidents ...) at the origin.

The target is the normalised residual at the target time, ``(y[o + h] - HA[o + h]) / level``; a forecast turns
back into a value with ``HA + level * residual``. NaN marks what is missing; the trees route it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from models.baselines import Profiles, local_slots
from models.panel import Panel

LAG_STEPS = (0, 1, 2, 3)
LAG_MINUTES = (30, 60)
WINDOW_MINUTES = (30, 60, 180)
COVARIATE_WINDOW_MIN = 60
LAST_VALUE_MAX_AGE_MIN = 60


@dataclass(frozen=True)
class FeatureSpec:
    """Which features a model reads, fixed at fit time so that serving builds the same columns."""

    step_min: int
    lags: tuple[int, ...]  # steps back from the origin
    windows: tuple[int, ...]  # rolling windows, in steps
    network: bool
    covariates: tuple[str, ...]

    @classmethod
    def for_panel(cls, panel: Panel) -> FeatureSpec:
        step = panel.step_min
        lags = set(LAG_STEPS) | {m // step for m in LAG_MINUTES if m % step == 0}
        windows = sorted({m // step for m in WINDOW_MINUTES if m // step >= 2})
        network = any(panel.upstream) or any(panel.downstream)
        return cls(step, tuple(sorted(lags)), tuple(windows), bool(network), tuple(sorted(panel.exog)))

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> FeatureSpec:
        return cls(data["step_min"], tuple(data["lags"]), tuple(data["windows"]), data["network"],
                   tuple(data["covariates"]))

    def names(self) -> list[str]:
        """The column names, in the order of :meth:`PanelFeatures.at`."""
        minutes = lambda steps: f"{steps * self.step_min}min"
        names = [f"value_lag_{minutes(lag)}" for lag in self.lags]
        names += ["diff_1_step", f"diff_{minutes(self.lags[-1])}", "last_value", "last_age_min"]
        names += [f"{stat}_{minutes(w)}" for w in self.windows for stat in ("mean", "std")]
        names += ["ha_origin", "ha_target", "ha_change", "ha_spread_target"]
        names += [f"residual_lag_{minutes(lag)}" for lag in self.lags]
        names += [f"residual_mean_{minutes(w)}" for w in self.windows]
        names += ["residual_day_before", "residual_week_before"]
        names += ["target_tod_sin", "target_tod_cos", "target_weekend", "log_level"]
        if self.network:
            names += [f"{side}_{what}" for side in ("upstream", "downstream")
                      for what in ("value", "residual", "residual_mean")]
        names += [n for c in self.covariates for n in (c, f"{c}_mean_{COVARIATE_WINDOW_MIN}min")]
        return names


class PanelFeatures:
    """The per-step arrays of one panel, computed once (causal: step ``t`` reads steps ``<= t`` only), then
    gathered at any origins and horizon by :meth:`at`.

    ``context_end``: a series unknown to the profiles takes its level from values before it (a forecast passes
    its first origin + 1). ``max_horizon``: how far past the panel's end the historical average is needed."""

    def __init__(self, panel: Panel, profiles: Profiles, spec: FeatureSpec, context_end: int,
                 max_horizon: int) -> None:
        self.panel, self.spec = panel, spec
        steps = np.arange(panel.n_times + max_horizon)
        self.level = profiles.scales(panel, context_end)[:, None]
        expected = lambda which: profiles.expected(panel, steps, which, context_end) / self.level
        self.ha, low, high = expected("mean"), expected("low"), expected("high")
        self.spread = high - low
        self.value = panel.values / self.level
        self.residual = self.value - self.ha[:, :panel.n_times]
        age = _age_of_last(panel.values, max(1, LAST_VALUE_MAX_AGE_MIN // spec.step_min))
        at = np.arange(panel.n_times)[None, :] - np.nan_to_num(age).astype(np.int64)
        self.last = np.where(np.isfinite(age), np.take_along_axis(self.value, at, axis=1), np.nan)
        self.age = age * spec.step_min
        self.rolling = {w: rolling_mean_std(self.value, w) for w in spec.windows}
        self.residual_mean = {w: rolling_mean_std(self.residual, w)[0] for w in spec.windows}
        if spec.network:
            recent = self.residual_mean[spec.windows[0]] if spec.windows else self.residual
            self.neighbours = {
                side: tuple(neighbour_mean(array, links) for array in (self.value, self.residual, recent))
                for side, links in (("upstream", panel.upstream), ("downstream", panel.downstream))}
        window = max(1, COVARIATE_WINDOW_MIN // spec.step_min)
        self.covariates = {}
        for name in spec.covariates:  # one the panel lacks is all NaN: unknown, not zero
            series = np.asarray(panel.exog.get(name, np.full(panel.values.shape, np.nan)), dtype=np.float64)
            self.covariates[name] = (series, rolling_mean_std(series, window)[0])

    def at(self, origins: np.ndarray, horizon: int) -> np.ndarray:
        """``[n_series * len(origins), n_features]`` float32, series-major (row ``i`` is series
        ``i // len(origins)``), for targets ``horizon`` steps after each origin."""
        origins = np.asarray(origins, dtype=np.int64)
        targets = origins + horizon
        back = lambda array, steps: _take(array, origins - steps)
        lagged = [back(self.value, lag) for lag in self.spec.lags]
        columns = lagged + [lagged[0] - lagged[1], lagged[0] - lagged[-1], back(self.last, 0), back(self.age, 0)]
        columns += [back(stat, 0) for w in self.spec.windows for stat in self.rolling[w]]
        ha_origin, ha_target = back(self.ha, 0), _take(self.ha, targets)
        columns += [ha_origin, ha_target, ha_target - ha_origin, _take(self.spread, targets)]
        columns += [back(self.residual, lag) for lag in self.spec.lags]
        columns += [back(self.residual_mean[w], 0) for w in self.spec.windows]
        per_day = self.panel.steps_per_day
        days_back = max(1, -(-horizon // per_day))
        columns += [_take(self.residual, targets - days_back * per_day),
                    _take(self.residual, targets - max(7, days_back) * per_day)]
        columns += self._target_time(targets) + [np.log(self.level)]
        if self.spec.network:
            columns += [back(array, 0) for side in ("upstream", "downstream") for array in self.neighbours[side]]
        columns += [back(array, 0) for c in self.spec.covariates for array in self.covariates[c]]
        shape = (self.panel.n_series, len(origins))
        matrix = np.stack([np.broadcast_to(c, shape) for c in columns], axis=-1)
        return matrix.reshape(-1, matrix.shape[-1]).astype(np.float32)

    def target(self, origins: np.ndarray, horizon: int) -> np.ndarray:
        """``[n_series * len(origins)]``: the normalised residual ``horizon`` steps after each origin (NaN past the
        panel's end or where the value is missing)."""
        return _take(self.residual, np.asarray(origins, dtype=np.int64) + horizon).ravel()

    def to_values(self, residuals: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
        """Normalised residual quantiles ``[n_series * len(origins), q]`` as values ``[n_series, n_origins, q]``."""
        targets = np.asarray(origins, dtype=np.int64) + horizon
        scaled = residuals.reshape(self.panel.n_series, len(targets), -1) + _take(self.ha, targets)[:, :, None]
        return scaled * self.level[:, :, None]

    def _target_time(self, targets: np.ndarray) -> list[np.ndarray]:
        step = self.spec.step_min
        slots, weekend = local_slots(self.panel.start, step, self.panel.timezone, step,
                                     np.asarray(targets, dtype=np.int64).tobytes())
        angle = 2 * np.pi * slots * step / 1440
        return [np.sin(angle)[None, :], np.cos(angle)[None, :], weekend.astype(float)[None, :]]


def _take(array: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """``array[:, steps]`` with NaN where a step falls outside the array."""
    inside = (steps >= 0) & (steps < array.shape[1])
    taken = array[:, np.clip(steps, 0, array.shape[1] - 1)]
    return np.where(inside[None, :], taken, np.nan)


def rolling_mean_std(values: np.ndarray, window: int) -> tuple[np.ndarray, np.ndarray]:
    """Causal mean and standard deviation of the last ``window`` steps up to each step, over the values present
    (NaN where none is; the deviation needs two)."""
    finite = np.isfinite(values)
    x = np.where(finite, values, 0.0)
    sums = [np.concatenate([np.zeros((values.shape[0], 1)), np.cumsum(a, axis=1)], axis=1)
            for a in (x, x * x, finite.astype(float))]
    hi = np.arange(1, values.shape[1] + 1)
    lo = np.clip(hi - window, 0, None)
    total, squares, count = (s[:, hi] - s[:, lo] for s in sums)
    with np.errstate(all="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
        std = np.where(count > 1, np.sqrt(np.clip(squares / count - mean * mean, 0, None)), np.nan)
    return mean, std


def neighbour_mean(values: np.ndarray, links: list[list[int]]) -> np.ndarray:
    """``[n_series, n_times]``: the mean over each series' neighbours (``links[s]``) of their values present;
    NaN for a series without neighbours."""
    total, count = np.zeros(values.shape), np.zeros(values.shape)
    if len(links) == values.shape[0]:
        adjacency = np.zeros((len(links), len(links)))  # adjacency[s, n]: how often n is a neighbour of s
        rows = np.repeat(np.arange(len(links)), [len(n) for n in links])
        np.add.at(adjacency, (rows, np.fromiter((c for n in links for c in n), dtype=np.int64, count=len(rows))), 1)
        finite = np.isfinite(values)
        total, count = adjacency @ np.where(finite, values, 0.0), adjacency @ finite
    with np.errstate(all="ignore"):
        return np.where(count > 0, total / count, np.nan)


def _age_of_last(values: np.ndarray, max_age: int) -> np.ndarray:
    """Steps since the newest value at or before each step (NaN beyond ``max_age``)."""
    age = np.full(values.shape, np.nan)
    for back in range(max_age, -1, -1):
        shifted = np.full(values.shape, np.nan)
        shifted[:, back:] = values[:, :values.shape[1] - back]
        age = np.where(np.isfinite(shifted), back, age)
    return age
