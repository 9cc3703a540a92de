"""A self-learning detector for any series, strictly causal: what ``smartcity models anomaly-scores`` runs.

It knows nothing of a series beforehand and reads no label: the score of row ``t`` of a series depends only on
the rows of that series up to ``t`` (in file order), so a file cut at row ``t`` gets the same first scores. Per
series, rows in order:

1. **Features** (:func:`series_features`), each against the past only:
   ``level``: the robust z of the value against the previous :data:`RECENT_ROWS` values (median, IQR);
   ``change``: the robust z of the change from the previous value; ``time_of_day``: once the series spans
   :data:`MIN_PROFILE_DAYS` days, the robust z of the residual from the median of earlier values in the same
   hour of the day (a rush hour is usual, the same drop at night is not); ``level_15``: the mean of the last
   three level (or time-of-day) z; the lagged level z; ``repeats``: how long the value has stayed exactly the
   same, up to :data:`MAX_REPEATS` rows (a stuck sensor).
2. **Scorers**, each a raw strangeness: ``zscore`` (|time-of-day z|, else |level z|), ``change`` (|change z|),
   ``knn`` (mean distance of the feature vector to its :data:`KNN_K` nearest among the previous
   :data:`KNN_REFERENCE` rows), ``isolation-forest`` (scikit-learn's, refitted every :data:`FOREST_REFIT_ROWS`
   rows on the previous :data:`FOREST_ROWS` rows only), ``autoencoder`` (torch, refitted at rows 256, 512, ...
   then every :data:`AUTOENCODER_REFIT_ROWS`, on past rows only; its ONNX export scores).
3. **Calibration**, online (:class:`RunningCalibration`): each raw score becomes the share of the series' earlier
   raw scores below it (an exponential tail beyond the highest); the ensemble averages the scorers' surprisal
   ``-log10(1 - p)`` and calibrates that the same way, so 0.99 means stranger than 99 % of what this series did
   before. The first :data:`WARMUP_ROWS` rows of a series score 0 (probation: nothing to compare with yet).

Nothing here is tuned to one data set: the windows are counted in rows and every scale is learned per series.
"""

from __future__ import annotations

import bisect
import math

import numpy as np
import pandas as pd

MODELS = ("ensemble", "zscore", "isolation-forest", "autoencoder")
ENSEMBLE = ("zscore", "change", "knn", "isolation-forest")
FEATURES = ("level", "level_previous", "level_before", "change", "time_of_day", "level_15", "repeats")
WARMUP_ROWS = 64
RECENT_ROWS = 288
MIN_RECENT_ROWS = 12
SLOT_MINUTES = 60
SLOT_ROWS = 96  # earlier values per hour of the day in the profile
MIN_SLOT_ROWS = 12
MIN_PROFILE_DAYS = 2.0
MAX_REPEATS = 12  # a run of equal values longer than this is no stranger for growing (a flat series stays flat)
IQR_TO_STD = 1.349
Z_CLIP = 10.0
KNN_K = 5
KNN_REFERENCE = 1000
FOREST_REFIT_ROWS = 256
FOREST_ROWS = 2048
FOREST_TREES = 50
AUTOENCODER_REFIT_ROWS = 2048
AUTOENCODER_FIRST_ROWS = 256
MIN_TRAINING_ROWS = 64
MIN_CALIBRATION_SCORES = 32
TAIL = 0.01
TIE = 1e-9  # raw scores this close (relative) are the same score: floating-point noise is no news
MAX_SURPRISAL = 6.0


def score_series(times: pd.Series, values: np.ndarray, model: str = "ensemble", seed: int = 0,
                 timezone: str = "UTC") -> np.ndarray:
    """The anomaly score in [0, 1] of each row of one series (rows in file order; NaN values score 0); hours of
    the day are those of ``timezone``."""
    values = np.asarray(values, dtype=np.float64)
    scores = np.zeros(len(values))
    present = np.flatnonzero(np.isfinite(values))
    if not len(present):
        return scores
    times = pd.DatetimeIndex(pd.to_datetime(times, utc=True)).tz_convert(timezone)[present]
    features = series_features(times, values[present])
    scorers = ENSEMBLE if model == "ensemble" else (model,)
    raw = np.column_stack([RAW_SCORERS[name](features, seed) for name in scorers])
    scores[present] = combine(raw)
    return scores


def series_features(times: pd.DatetimeIndex, values: np.ndarray) -> np.ndarray:
    """``[n_rows, len(FEATURES)]``, each row from the values up to it (NaN until there is enough)."""
    series = pd.Series(values)
    level = _past_z(series, series)
    change_series = series.diff()
    change = _past_z(change_series, change_series)
    hours = (times.hour * 60 + times.minute) // SLOT_MINUTES
    expected = series.groupby(np.asarray(hours)).transform(
        lambda slot: slot.rolling(SLOT_ROWS, min_periods=MIN_SLOT_ROWS).median().shift(1))
    old_enough = np.asarray((times - times[0]) >= pd.Timedelta(days=MIN_PROFILE_DAYS))
    residual = (series - expected).where(old_enough)
    time_of_day = _past_z(residual, residual)
    usual = time_of_day.fillna(level)
    level_15 = usual.rolling(3, min_periods=1).mean()
    same = (series == series.shift(1)).astype(int)
    repeats = np.log1p(np.minimum(same.groupby((same == 0).cumsum()).cumsum(), MAX_REPEATS))
    columns = [level, level.shift(1), level.shift(2), change, time_of_day, level_15, repeats]
    return np.column_stack([np.clip(np.asarray(c, dtype=np.float64), -Z_CLIP, Z_CLIP) for c in columns])


def _past_z(values: pd.Series, history: pd.Series) -> pd.Series:
    """The robust z of each value against the previous :data:`RECENT_ROWS` of ``history`` (median; IQR, with
    floors so that a flat past still gives a scale)."""
    rolling = history.rolling(RECENT_ROWS, min_periods=MIN_RECENT_ROWS)
    centre = rolling.median().shift(1)
    iqr = (rolling.quantile(0.75) - rolling.quantile(0.25)).shift(1) / IQR_TO_STD
    spread = rolling.std().shift(1)
    scale = np.maximum(np.maximum(iqr, 0.25 * spread), 1e-3 * centre.abs() + 1e-9)
    return (values - centre) / scale


# --- scorers: raw strangeness, NaN where a scorer cannot say yet -------------------------------------------------


def zscore_raw(features: np.ndarray, seed: int = 0) -> np.ndarray:
    level, time_of_day = features[:, FEATURES.index("level")], features[:, FEATURES.index("time_of_day")]
    return np.abs(np.where(np.isfinite(time_of_day), time_of_day, level))


def change_raw(features: np.ndarray, seed: int = 0) -> np.ndarray:
    return np.abs(features[:, FEATURES.index("change")])


def model_inputs(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows every learned scorer reads (level and change known; time of day 0 until it is) and their mask."""
    inputs = features.copy()
    inputs[:, FEATURES.index("time_of_day")] = np.nan_to_num(inputs[:, FEATURES.index("time_of_day")])
    return inputs, np.isfinite(inputs).all(axis=1)


def knn_raw(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """Mean distance to the nearest earlier feature vectors."""
    inputs, usable = model_inputs(features)
    out = np.full(len(inputs), np.nan)
    rows = np.flatnonzero(usable)
    for position, row in enumerate(rows):
        if position < MIN_TRAINING_ROWS:
            continue
        reference = inputs[rows[max(0, position - KNN_REFERENCE):position]]
        distances = np.sqrt(((reference - inputs[row]) ** 2).sum(axis=1))
        out[row] = np.partition(distances, KNN_K - 1)[:KNN_K].mean()
    return out


def forest_raw(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """Isolation Forest, refitted every :data:`FOREST_REFIT_ROWS` rows on the rows before."""
    from sklearn.ensemble import IsolationForest

    def fit_score(train: np.ndarray, rows: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
        forest = IsolationForest(n_estimators=FOREST_TREES, max_samples=min(256, len(train)),
                                 random_state=seed + block, n_jobs=1).fit(train)
        return -forest.score_samples(train), -forest.score_samples(rows)

    return _refitted(features, fit_score, _forest_points, FOREST_ROWS)


def autoencoder_raw(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """Reconstruction error of a small autoencoder, refitted on the rows before (torch; ONNX scores)."""
    from models.anomaly.autoencoder import train_autoencoder
    from models.onnx_predictor import OnnxPredictor

    def fit_score(train: np.ndarray, rows: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
        # the features are z-scores already: a feature that did not move in training must not blow up
        centre, scale = train.mean(axis=0), np.maximum(train.std(axis=0), 0.5)
        z = lambda x: np.clip((x - centre) / scale, -Z_CLIP, Z_CLIP).astype(np.float32)
        onnx, _ = train_autoencoder(z(train), hidden=16, bottleneck=3, epochs=30, batch_size=128,
                                    learning_rate=3e-3, seed=seed + block)
        predictor = OnnxPredictor(onnx)
        error = lambda x: ((predictor.run({"features": z(x)}) - z(x)) ** 2).mean(axis=1)
        return error(train), error(rows)

    return _refitted(features, fit_score, _autoencoder_points, AUTOENCODER_REFIT_ROWS * 2)


def _forest_points(n: int) -> list[int]:
    return [FOREST_REFIT_ROWS // 2, *range(FOREST_REFIT_ROWS, n, FOREST_REFIT_ROWS)]


def _autoencoder_points(n: int) -> list[int]:
    points, at = [], AUTOENCODER_FIRST_ROWS
    while at < AUTOENCODER_REFIT_ROWS:
        points.append(at)
        at *= 2
    return points + list(range(AUTOENCODER_REFIT_ROWS, n, AUTOENCODER_REFIT_ROWS))


def _refitted(features: np.ndarray, fit_score, points, window: int) -> np.ndarray:
    """Scores of a model refitted at the usable-row counts ``points(n)``, each fit on the previous ``window``
    usable rows only and scoring the rows up to the next refit. ``fit_score`` returns the raw scores of its
    training rows and of the rows to score; each model's scores are put on its training rows' scale (their
    :class:`models.anomaly.base.Calibration`), so that a refit does not shift them."""
    from models.anomaly.base import Calibration

    inputs, usable = model_inputs(features)
    out = np.full(len(inputs), np.nan)
    rows = np.flatnonzero(usable)
    bounds = [p for p in points(len(rows)) if p < len(rows)]
    for block, start in enumerate(bounds):
        stop = bounds[block + 1] if block + 1 < len(bounds) else len(rows)
        train = inputs[rows[max(0, start - window):start]]
        if len(train) >= MIN_TRAINING_ROWS:
            trained, scored = fit_score(train, inputs[rows[start:stop]], block)
            out[rows[start:stop]] = Calibration.fit(trained)(scored)
    return out


RAW_SCORERS = {"zscore": zscore_raw, "change": change_raw, "knn": knn_raw, "isolation-forest": forest_raw,
               "autoencoder": autoencoder_raw}


# --- calibration ----------------------------------------------------------------------------------------------


class RunningCalibration:
    """The share of the earlier raw scores below a new one (ties count half), with an exponential tail beyond the
    highest (fitted to the top 1 %), continuous at the highest: :class:`models.anomaly.base.Calibration`, learned
    one score at a time."""

    def __init__(self) -> None:
        self.seen: list[float] = []

    def __call__(self, raw: float) -> float:
        """The calibrated score of ``raw`` against the earlier ones (NaN until enough), then remember it."""
        if not math.isfinite(raw):
            return math.nan
        seen, n = self.seen, len(self.seen)
        if n < MIN_CALIBRATION_SCORES:
            out = math.nan
        elif raw > seen[-1] + TIE * (1 + abs(seen[-1])):  # beyond rounding noise
            top = seen[int((1 - TAIL) * (n - 1)):]
            scale = max(sum(top) / len(top) - top[0], 1e-3 * (seen[-1] - seen[0]), 1e3 * TIE * (1 + abs(seen[-1])))
            out = 1 - 0.5 / n * math.exp(-(raw - seen[-1]) / scale)
        else:  # mid-rank: a value equal to every earlier one is 0.5, however many there were
            tie = TIE * (1 + abs(raw))
            out = (bisect.bisect_left(seen, raw - tie) + bisect.bisect_right(seen, raw + tie)) / (2 * n)
        bisect.insort(seen, raw)
        return out


def combine(raw: np.ndarray) -> np.ndarray:
    """``raw [n_rows, n_scorers]`` -> scores in [0, 1]: each scorer calibrated online, their mean surprisal
    calibrated online again (one scorer: its calibrated score); 0 through the warm-up and where nothing is known."""
    calibrations = [RunningCalibration() for _ in range(raw.shape[1])]
    final = RunningCalibration()
    out = np.zeros(len(raw))
    for row, scores in enumerate(raw):
        probabilities = [calibration(float(value)) for calibration, value in zip(calibrations, scores)]
        known = [p for p in probabilities if math.isfinite(p)]
        if raw.shape[1] == 1:
            score = known[0] if known else math.nan
        else:
            surprisal = [min(-math.log10(max(1 - p, 1e-12)), MAX_SURPRISAL) for p in known]
            score = final(sum(surprisal) / len(surprisal)) if surprisal else math.nan
        out[row] = score if row >= WARMUP_ROWS and math.isfinite(score) else 0.0
    return out
