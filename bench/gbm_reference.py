"""A tuned gradient-boosting reference for the backtest: what a careful analyst would fit without this project.

The forecasting issue's backtest is scored outside the project against the historical average and "a tuned
gradient-boosting reference"; :mod:`bench_backtest` fits one here, on the same CSV, split and origins as
``smartcity models backtest``, so that the models are reported beside it and not beside the baselines alone.

One scikit-learn ``HistGradientBoostingRegressor`` per horizon, over every series at once (values divided by the
series' training mean), with the usual features of such a model: the last day of lags (at most 24), the value a
day and a week before the target, the means of the last day and week, the target's local hour and weekday, the
series as a category. Its loss (absolute or squared error) and size (learning rate, leaves) are picked on the last
fifth of the training origins, then it is refitted on all of them. It is a bench baseline, not a model of the
catalog: it is not served and has no interval.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingRegressor

from models.backtest import SeriesFile

MAX_LAGS = 24
GRID = list(itertools.product((0.05, 0.1), (31, 63), ("absolute_error", "squared_error")))
SEED = 0


def _shifted(values: np.ndarray, steps: int) -> np.ndarray:
    """``values`` moved ``steps`` later in time (NaN where nothing was before)."""
    out = np.full(values.shape, np.nan)
    if steps < values.shape[1]:
        out[:, steps:] = values[:, :values.shape[1] - steps]
    return out


def _rolling_mean(values: np.ndarray, window: int) -> np.ndarray:
    return pd.DataFrame(values.T).rolling(window, min_periods=1).mean().to_numpy().T


def reference_forecasts(data: SeriesFile, train_end: int, horizons_min: list[int]) -> pd.DataFrame:
    """``row, step, horizon_min, reference``: the reference's forecast from every observed step from
    ``train_end - 1`` on (the backtest's origins), at each horizon."""
    panel = data.panel
    per_day = panel.steps_per_day
    level = np.nanmean(panel.values[:, :train_end], axis=1, keepdims=True)
    level = np.where(np.isfinite(level) & (level > 0), level, 1.0)
    values = panel.values / level
    local = panel.local_times()
    hour = np.asarray(local.hour + local.minute / 60, dtype=float)
    weekday = np.asarray(local.day_of_week, dtype=float)
    shape = values.shape
    common = [_shifted(values, lag) for lag in range(min(MAX_LAGS, per_day))]
    common += [_rolling_mean(values, per_day), _rolling_mean(values, 7 * per_day)]
    series = np.broadcast_to(np.arange(shape[0], dtype=float)[:, None], shape)
    frames = []
    for minutes, step in zip(horizons_min, panel.horizon_steps(horizons_min)):
        day_before = per_day - step if step < per_day else 2 * per_day - step
        target_time = [np.broadcast_to(np.roll(a, -step), shape) for a in (hour, weekday)]
        columns = common + [_shifted(values, day_before), _shifted(values, 7 * per_day - step), *target_time, series]
        features = np.stack(columns, axis=-1)
        target = np.concatenate([values[:, step:], np.full((shape[0], step), np.nan)], axis=1)
        train_origins = np.arange(7 * per_day, train_end - step)
        x, y = features[:, train_origins].reshape(-1, features.shape[-1]), target[:, train_origins].ravel()
        keep = np.isfinite(y)
        x, y = x[keep], y[keep]
        late = np.tile(train_origins >= train_origins[int(len(train_origins) * 0.8)], shape[0])[keep]
        model = min((_fit(x[~late], y[~late], *settings) for settings in GRID),
                    key=lambda fitted: np.mean(np.abs(fitted.predict(x[late]) - y[late])))
        model = _fit(x, y, model.learning_rate, model.max_leaf_nodes, model.loss)
        origins = np.arange(train_end - 1, shape[1])
        rows = np.repeat(np.arange(shape[0]), len(origins))
        steps = np.tile(origins, shape[0])
        predicted = model.predict(features[:, origins].reshape(-1, features.shape[-1])) * level[rows, 0]
        frames.append(pd.DataFrame({"row": rows, "step": steps, "horizon_min": minutes, "reference": predicted}))
    return pd.concat(frames, ignore_index=True)


def _fit(x: np.ndarray, y: np.ndarray, learning_rate: float, leaves: int, loss: str) -> HistGradientBoostingRegressor:
    return HistGradientBoostingRegressor(loss=loss, learning_rate=learning_rate, max_leaf_nodes=leaves,
                                         max_iter=500, early_stopping=True, validation_fraction=0.15,
                                         random_state=SEED, categorical_features=[x.shape[1] - 1]).fit(x, y)


def mae_beside_reference(data: SeriesFile, train_end: int, forecasts_csv, horizons_min: list[int]
                         ) -> tuple[pd.DataFrame, pd.Series]:
    """MAE (rows: models, the reference among them; columns: horizons) of the backtest's forecasts
    (``forecasts_csv``) and of the reference, on the pairs both forecast with the target observed; and how many
    pairs each horizon has."""
    panel = data.panel
    reference = reference_forecasts(data, train_end, horizons_min)
    written = pd.read_csv(forecasts_csv, dtype={"series_id": str, "origin": str})
    labels = data.observed.assign(series_id=np.asarray(panel.series_ids, dtype=object)[data.observed["row"]])
    written = written.merge(labels.rename(columns={"label": "origin"}), on=["series_id", "origin"])
    by_model = written.pivot_table(index=["row", "step", "horizon_min"], columns="model", values="p50")
    both = reference.set_index(["row", "step", "horizon_min"]).join(by_model, how="inner")
    rows, steps, minutes = (both.index.get_level_values(name).to_numpy() for name in ("row", "step", "horizon_min"))
    ahead = steps + minutes // panel.step_min
    inside = ahead < panel.n_times
    actual = np.full(len(both), np.nan)
    actual[inside] = panel.values[rows[inside], ahead[inside]]
    both = both.assign(actual=actual).dropna()
    errors = both.drop(columns="actual").sub(both["actual"], axis=0).abs().groupby(level="horizon_min")
    return errors.mean().T.rename_axis(index="model"), errors.size()
