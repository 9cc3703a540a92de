"""Shared by the forecasting tests (XGBoost, LSTM, Transformer, baselines): synthetic series and the leakage check.

:func:`synthetic_panel` draws series around a daily double-peak profile (quieter at weekends), each at its own
level, with AR(1) deviations from it: what a model can learn beyond the historical average is how today's
deviation decays. ``phi=0`` gives pure noise around the profile, where nothing beats the historical average.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd

from models.base import Forecaster
from models.panel import Panel


def daily_profile(minute_of_day: np.ndarray, weekend: np.ndarray) -> np.ndarray:
    """Relative traffic: morning and evening peaks on weekdays, one broad midday hump at weekends."""
    bump = lambda centre_h, width_min: np.exp(-(((minute_of_day - centre_h * 60) / width_min) ** 2))
    weekday = 0.3 + 1.0 * bump(8, 90) + 0.9 * bump(17.5, 120)
    return np.where(weekend, 0.3 + 0.6 * bump(13, 180), weekday)


def synthetic_panel(n_series: int = 6, days: int = 14, step_min: int = 15, phi: float | list[float] = 0.9,
                    sigma: float = 0.15, seed: int = 0, start: str = "2024-01-01T00:00:00Z") -> Panel:
    """``n_series`` series of ``days`` days: ``level * (profile + deviation)``, the deviation AR(1) with
    coefficient ``phi`` (one per series or one for all) per step and standard deviation ``sigma``."""
    rng = np.random.default_rng(seed)
    n_times = days * 1440 // step_min
    times = pd.date_range(pd.Timestamp(start), periods=n_times, freq=f"{step_min}min")
    profile = daily_profile(np.asarray(times.hour * 60 + times.minute), np.asarray(times.day_of_week >= 5))
    phis = np.broadcast_to(np.asarray(phi, dtype=float), (n_series,))
    shocks = rng.normal(size=(n_series, n_times)) * sigma * np.sqrt(1 - phis**2)[:, None]
    deviation = np.zeros((n_series, n_times))
    deviation[:, 0] = rng.normal(size=n_series) * sigma
    for t in range(1, n_times):
        deviation[:, t] = phis * deviation[:, t - 1] + shocks[:, t]
    levels = np.exp(rng.uniform(np.log(50), np.log(1500), n_series))[:, None]
    values = np.clip(levels * (profile[None, :] + deviation), 0, None)
    return Panel([f"s{i:02d}" for i in range(n_series)], times[0], step_min, values)


def panel_frame(panel: Panel) -> pd.DataFrame:
    """The panel as the long table a city's CSV holds: ``series_id, timestamp, value`` (missing values left out)."""
    times = panel.times().strftime("%Y-%m-%dT%H:%M:%SZ")
    frame = pd.DataFrame({"series_id": np.repeat(panel.series_ids, panel.n_times),
                          "timestamp": np.tile(times, panel.n_series), "value": panel.values.ravel()})
    return frame.dropna(subset=["value"])


def altered_after(panel: Panel, step: int, seed: int = 1) -> Panel:
    """The same panel with every value and covariate after ``step`` replaced (some by gaps)."""
    rng = np.random.default_rng(seed)
    values = panel.values.copy()
    tail = values[:, step + 1:]
    values[:, step + 1:] = np.where(rng.random(tail.shape) < 0.1, np.nan, tail * 3 + rng.normal(50, 20, tail.shape))
    exog = {name: np.concatenate([array[:, :step + 1], rng.random(array[:, step + 1:].shape) * 10], axis=1)
            for name, array in panel.exog.items()}
    return Panel(panel.series_ids, panel.start, panel.step_min, values, panel.timezone, exog, panel.upstream,
                 panel.downstream)


def assert_no_leakage(model: Forecaster, panel: Panel, train_end: int, refit: bool = True,
                      atol: float = 1e-9) -> None:
    """A forecast at origin ``t`` does not change when the data after ``t`` changes: neither when the fitted model
    predicts the altered panel, nor (``refit``) when a copy of the unfitted model is trained on the altered panel
    (``t`` lies after ``train_end``, so training must not read the test part either).

    ``model`` is unfitted; ``atol`` allows for training that is not bit-for-bit repeatable."""
    unfitted = copy.deepcopy(model)
    fitted = model.fit(panel, train_end)
    for t in (train_end, train_end + 7, panel.n_times - 2):
        origins = np.array([train_end - 1, t - 1, t]) if t > train_end else np.array([t - 2, t])
        altered = altered_after(panel, t)
        before = fitted.predict(panel, origins)
        np.testing.assert_allclose(fitted.predict(altered, origins), before, atol=1e-12,
                                   err_msg=f"the forecast at origin {t} read data after it")
        if refit:
            refitted = copy.deepcopy(unfitted).fit(altered, train_end)
            np.testing.assert_allclose(refitted.predict(altered, origins), before, atol=atol,
                                       err_msg=f"training read data after train_end ({train_end})")
