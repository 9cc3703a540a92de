"""How good forecasts are: point errors, interval coverage and quantile loss, per horizon, and a side-by-side table.

Forecasts are ``[n_series, n_origins, n_horizons, 3]`` (P10/P50/P90, as :meth:`Forecaster.predict` returns them);
a pair counts where both its P50 and the actual value exist. MAE, RMSE and MAPE score the P50;
coverage is the share of actuals inside [P10, P90] (0.8 for calibrated quantiles); the pinball loss averages the
quantile loss of the three quantiles (in the data's unit, like the MAE).
"""

from __future__ import annotations

import numpy as np

from models.base import QUANTILES
from models.panel import Panel

#: |actual| below this is left out of the MAPE (a percentage of zero is undefined)
MAPE_MIN_ACTUAL = 1e-6
METRICS = ("mae", "rmse", "mape", "coverage", "pinball")


def actuals(panel: Panel, origins: np.ndarray, horizons_min: list[int] | tuple[int, ...]) -> np.ndarray:
    """``[n_series, n_origins, n_horizons]``: the value ``h`` minutes after each origin; NaN where it is missing
    or beyond the panel's end."""
    targets = np.asarray(origins, dtype=np.int64)[:, None] + np.asarray(panel.horizon_steps(horizons_min))[None, :]
    inside = targets < panel.n_times
    return np.where(inside[None], panel.values[:, np.where(inside, targets, 0)], np.nan)


def errors(actual: np.ndarray, forecasts: np.ndarray) -> dict[str, np.ndarray]:
    """Per pair (NaN where the pair does not count): absolute error, squared error, absolute percentage error
    (NaN also where ``|actual| < MAPE_MIN_ACTUAL``), inside-the-interval (0/1) and pinball loss."""
    counted = np.isfinite(actual) & np.isfinite(forecasts[..., 1])
    y = np.where(counted, actual, np.nan)
    error = forecasts[..., 1] - y
    with np.errstate(all="ignore"):
        percentage = np.where(np.abs(y) >= MAPE_MIN_ACTUAL, np.abs(error) / np.abs(y) * 100, np.nan)
    inside = np.where(counted, (forecasts[..., 0] <= y) & (y <= forecasts[..., 2]), np.nan)
    below = y[..., None] - forecasts
    tau = np.asarray(QUANTILES)
    pinball = np.mean(np.maximum(tau * below, (tau - 1) * below), axis=-1)
    return {"mae": np.abs(error), "rmse": error**2, "mape": percentage, "coverage": inside, "pinball": pinball}


def score(panel: Panel, origins: np.ndarray, forecasts: np.ndarray,
          horizons_min: list[int] | tuple[int, ...]) -> list[dict]:
    """One row per horizon: ``horizon_min``, ``n`` (pairs scored), ``mae``, ``rmse``, ``mape`` (%, over actuals
    with ``|y| >= MAPE_MIN_ACTUAL`` only), ``coverage`` (share inside P10-P90) and ``pinball``."""
    per_pair = errors(actuals(panel, origins, horizons_min), forecasts)
    rows = []
    for k, minutes in enumerate(horizons_min):
        n = int(np.sum(np.isfinite(per_pair["mae"][..., k])))
        row = {"horizon_min": int(minutes), "n": n}
        with np.errstate(all="ignore"):
            for metric in METRICS:
                values = per_pair[metric][..., k]
                row[metric] = float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")
        row["rmse"] = float(np.sqrt(row["rmse"]))
        rows.append(row)
    return rows


def series_mae(actual: np.ndarray, forecasts: np.ndarray) -> np.ndarray:
    """``[n_series]``: each series' MAE of the P50 over all its origins and horizons (NaN where none counts)."""
    absolute = errors(actual, forecasts)["mae"].reshape(actual.shape[0], -1)
    with np.errstate(all="ignore"):
        return np.where(np.isfinite(absolute).any(axis=1), np.nanmean(absolute, axis=1), np.nan)


def compare(scores: dict[str, list[dict]], baseline: str = "historical-average") -> str:
    """The scores of several models (``{model: score(...)}``) side by side, one line per horizon and model, with
    the MAE's improvement over ``baseline`` in % (positive: better)."""
    header = f"{'horizon':>7}  {'model':<20} {'MAE':>10} {'RMSE':>10} {'MAPE %':>8} {'P10-P90':>8} {'pinball':>10} " \
             f"{'MAE vs ' + baseline:>{len(baseline) + 7}}"
    lines = [header, "-" * len(header)]
    reference = {row["horizon_min"]: row["mae"] for row in scores.get(baseline, [])}
    horizons = sorted({row["horizon_min"] for rows in scores.values() for row in rows})
    for minutes in horizons:
        for model, rows in scores.items():
            for row in (r for r in rows if r["horizon_min"] == minutes):
                base = reference.get(minutes, float("nan"))
                gain = (1 - row["mae"] / base) * 100 if base and np.isfinite(base) else float("nan")
                lines.append(f"{minutes:>5}m  {model:<20} {row['mae']:>10.3f} {row['rmse']:>10.3f} "
                             f"{row['mape']:>8.1f} {row['coverage']:>8.1%} {row['pinball']:>10.3f} "
                             f"{gain:>+{len(baseline) + 6}.1f}%")
    return "\n".join(lines)
