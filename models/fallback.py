"""Fall back to the historical average on the series a model cannot beat it on, for any forecaster.

Low-count series (a quiet street's detector counting a few vehicles per interval) are mostly noise around their
daily profile: nothing forecasts them better than the historical average, and a learnt model can do worse.
:class:`WithFallback` finds out inside ``fit``, on the training part only: it trains a copy of the model on all
but the last ``holdout_fraction`` of the training days, scores every series on those days (MAE over every
horizon) against the historical average trained on the same days, and marks each series where the model is
not better. It then trains the model on the whole training part; ``predict`` serves the historical average for
the marked series. ``info["fallback"]`` counts them and names the first :data:`LISTED_SERIES`, for the
backtest's report and the model card. The wrapper goes by its model's name (``xgboost``): the registry files it
there, serving labels its forecasts so, and ``fallback.json`` among its files says it is wrapped.

No threshold is tuned: "not better" is a MAE no lower than the historical average's on the held-out days.

The same held-out days calibrate the P10-P90 interval of every series (split conformal prediction, "conformalized
quantile regression", Romano et al. 2019): a quantile model's interval is usually too narrow out of sample, the
more so on a city's real data than on the data it was made with. For each series and horizon the conformity
score of a held-out pair is how far the actual lies outside the interval (negative inside); the interval served
is widened (or narrowed) on both sides by the ``ceil((n + 1) * 0.8)``-th smallest of its ``n`` scores, which
gives at least 80 % coverage on exchangeable data. The served model's scores are used: the learnt model's where
it is kept, the historical average's where it is not. A series with fewer than :data:`MIN_CALIBRATION_PAIRS`
scored pairs at a horizon is left as it is. The P50 never moves.
"""

from __future__ import annotations

import copy

import numpy as np

from models.base import QUANTILES, Forecaster, json_file, read_json_file
from models.baselines import HistoricalAverage
from models.metrics import actuals, errors, series_mae
from models.panel import MIN_DAYS, Panel

#: at most this many held-out origins are scored (evenly spaced), to bound the cost for slow models
MAX_HOLDOUT_ORIGINS = 2000
#: the interval's nominal coverage, P10 to P90
INTERVAL_COVERAGE = QUANTILES[2] - QUANTILES[0]
#: held-out pairs a series needs at a horizon before its interval is calibrated there
MIN_CALIBRATION_PAIRS = 30
#: the fallback series a report names (it counts them all); ``fallback_series`` keeps the full list
LISTED_SERIES = 20
#: the file that marks a wrapped model's artifact
STATE_FILE = "fallback.json"


class WithFallback(Forecaster):
    """``model`` where it beats the historical average on held-out training days, the historical average elsewhere."""

    def __init__(self, model: Forecaster, holdout_fraction: float = 0.2) -> None:
        super().__init__(model.horizons_min, model.seed)
        self.model = model
        self.holdout_fraction = holdout_fraction
        self.historical = HistoricalAverage(model.horizons_min, model.seed)
        self.fallback_series: list[str] = []
        #: per series, the amount each side of its P10-P90 interval moves out (in) at each horizon
        self.interval_offsets: dict[str, list[float]] = {}

    @property
    def name(self) -> str:  # type: ignore[override]  # the model's: cards, registry folders and forecasts say xgboost
        return self.model.name

    @property
    def profiles(self):
        """The historical average's daily profiles, which serving issues beside the model (models.serving)."""
        return self.historical.profiles

    def context_steps(self) -> int:
        return max(self.model.context_steps(), self.historical.context_steps())

    def params(self) -> dict:
        return {**super().params(), "model": self.model.name, "holdout_fraction": self.holdout_fraction}

    def fit(self, panel: Panel, train_end: int) -> WithFallback:
        self.step_min, self.fallback_series, self.interval_offsets = panel.step_min, [], {}
        known = panel.until(train_end)
        split = self._holdout_start(known)
        report = {"checked": False, "reason": f"fewer than {MIN_DAYS} training days before a held-out day"}
        if split is not None:
            try:
                report = self._check(known, split)
            except ValueError as error:  # the model refuses the shorter training part: the full one may do
                report = {"checked": False, "reason": f"the model cannot train without the held-out days: {error}"}
        self.model.fit(panel, train_end)
        self.historical.fit(panel, train_end)
        self.info = {**self.model.info, "fallback": report}
        return self

    def _holdout_start(self, known: Panel) -> int | None:
        """The first step of the held-out days, or None when too few days would remain to train on."""
        days = known.day_index()
        n_days = int(days[-1]) + 1
        held_out = max(1, round(n_days * self.holdout_fraction))
        if n_days - held_out < MIN_DAYS:
            return None
        return int(np.searchsorted(days, n_days - held_out))

    def _check(self, known: Panel, split: int) -> dict:
        """Train on the steps before ``split``, score the held-out days; mark the series the model does not beat."""
        origins = np.arange(split, known.n_times - 1)
        origins = origins[np.linspace(0, len(origins) - 1, min(len(origins), MAX_HOLDOUT_ORIGINS)).astype(int)]
        actual = actuals(known, origins, self.horizons_min)
        trial = copy.deepcopy(self.model).fit(known, split)
        baseline = HistoricalAverage(self.horizons_min, self.seed).fit(known, split)
        model_forecasts, baseline_forecasts = trial.predict(known, origins), baseline.predict(known, origins)
        model_mae, baseline_mae = series_mae(actual, model_forecasts), series_mae(actual, baseline_forecasts)
        marked = np.isfinite(model_mae) & np.isfinite(baseline_mae) & (model_mae >= baseline_mae)
        self.fallback_series = [s for s, m in zip(known.series_ids, marked) if m]
        served = np.where(marked[:, None, None, None], baseline_forecasts, model_forecasts)
        offsets = conformal_offsets(actual, served)
        self.interval_offsets = {series: [round(float(o), 9) for o in row]
                                 for series, row in zip(known.series_ids, offsets) if np.isfinite(row).any()}
        mean = lambda mae: round(float(np.nanmean(mae)), 6) if np.isfinite(mae).any() else None
        days = known.day_index()
        return {"checked": True, "count": len(self.fallback_series), "of": known.n_series,
                "series": self.fallback_series[:LISTED_SERIES], "holdout_days": int(days[-1] - days[split]) + 1,
                "holdout_mae": {self.model.name: mean(model_mae), self.historical.name: mean(baseline_mae)},
                "calibrated": {"series": len(self.interval_offsets), "coverage": round(INTERVAL_COVERAGE, 6),
                               "holdout_coverage_before": _coverage(actual, served),
                               "holdout_coverage_after": _coverage(actual, widened(served, offsets))}}

    def predict(self, panel: Panel, origins: np.ndarray) -> np.ndarray:
        forecasts = self.model.predict(panel, origins)
        marked = set(self.fallback_series)
        rows = [row for row, series in enumerate(panel.series_ids) if series in marked]
        if rows:
            forecasts[rows] = self.historical.predict(panel.subset(rows), origins)
        if self.interval_offsets:
            offsets = np.array([self.interval_offsets.get(series, [np.nan] * len(self.horizons_min))
                                for series in panel.series_ids], dtype=float)
            forecasts = widened(forecasts, offsets)
        return forecasts

    def to_files(self) -> dict[str, bytes]:
        files = {f"model/{name}": data for name, data in self.model.to_files().items()}
        files.update({f"historical-average/{name}": data for name, data in self.historical.to_files().items()})
        files[STATE_FILE] = json_file({**self.params(), "series": self.fallback_series, "info": self.info,
                                       "interval_offsets": self.interval_offsets})
        return files

    @classmethod
    def load_files(cls, files: dict[str, bytes]) -> WithFallback:
        from models.catalog import model_class

        state = read_json_file(files, STATE_FILE)
        inside = lambda prefix: {name[len(prefix):]: data for name, data in files.items() if name.startswith(prefix)}
        wrapper = cls(model_class(state["model"]).load_files(inside("model/")), state["holdout_fraction"])
        wrapper.historical = HistoricalAverage.load_files(inside("historical-average/"))
        wrapper.step_min, wrapper.fallback_series, wrapper.info = state["step_min"], state["series"], state["info"]
        wrapper.interval_offsets = state.get("interval_offsets", {})  # artifacts made before calibration have none
        return wrapper


def conformal_offsets(actual: np.ndarray, forecasts: np.ndarray) -> np.ndarray:
    """``[n_series, n_horizons]``: the split-conformal correction of each series' P10-P90 interval (module
    docstring) from held-out ``actual`` ``[s, o, h]`` and ``forecasts`` ``[s, o, h, 3]``; NaN where a series has
    fewer than :data:`MIN_CALIBRATION_PAIRS` scored pairs at a horizon."""
    scores = np.maximum(forecasts[..., 0] - actual, actual - forecasts[..., 2])  # NaN where either is missing
    offsets = np.full(scores.shape[::2], np.nan)
    for s, h in np.ndindex(offsets.shape):
        pairs = scores[s, :, h][np.isfinite(scores[s, :, h])]
        if len(pairs) >= MIN_CALIBRATION_PAIRS:
            rank = min(len(pairs), int(np.ceil((len(pairs) + 1) * INTERVAL_COVERAGE)))  # 1-based
            offsets[s, h] = np.partition(pairs, rank - 1)[rank - 1]
    return offsets


def widened(forecasts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """``forecasts`` with each series' P10 lowered and P90 raised by its offset per horizon (NaN: unchanged),
    never past the P50."""
    shift = np.nan_to_num(offsets, nan=0.0)[:, None, :]
    out = forecasts.copy()
    out[..., 0] = np.minimum(forecasts[..., 0] - shift, forecasts[..., 1])
    out[..., 2] = np.maximum(forecasts[..., 2] + shift, forecasts[..., 1])
    return out


def _coverage(actual: np.ndarray, forecasts: np.ndarray) -> float | None:
    inside = errors(actual, forecasts)["coverage"]
    counted = np.isfinite(inside)
    return round(float(inside[counted].mean()), 6) if counted.any() else None
