"""The one interface every anomaly detector implements, and what they share: calibration, contributions, road classes.

A detector scores 5-minute windows of many series (road segments or sensors), several metrics at once::

    detector = IsolationForestDetector(seed=1).fit(history)     # a long frame of normal-enough windows
    scores = detector.score(frame)                               # one row per row of frame, in its order

``frame`` is a long DataFrame with the columns :data:`FRAME_COLUMNS` (``window_start`` tz-aware UTC, metrics NaN
where missing) and optionally ``road_class`` (:func:`road_class`). ``score`` returns :data:`SCORE_COLUMNS`:

- ``anomaly_score`` in [0, 1], calibrated (:class:`Calibration`): the share of the training windows that scored
  lower, with a tail beyond the highest one; 0.99 means rarer than 99 % of normal training windows;
- ``model``: the detector's name;
- ``basis``: ``"series"`` when a per-series model or profile was used, ``"road-class"`` when the series was never
  seen and the cold-start model of its road class served (a new sensor scores from its first window),
  ``"global"`` when neither was there;
- ``contributions``: the features that weighed most, ``{feature: weight}``, at most three, weights summing to 1.

The contract that the causality test checks: the score of a window depends only on the rows of its series at or
before it. A window's context is the :meth:`Detector.context_steps` windows before it: serving loads that much
history with the new window and keeps the last score.

``to_files`` returns the fitted detector as named byte files (JSON, ONNX, skops: never pickle) for
:class:`models.registry.Registry` (targets such as ``anomaly-segment``); ``load_files`` rebuilds it without torch.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from models.base import json_file, read_json_file
from smartcity.city import road_class
from models.panel import BadSeriesInput

STEP_MIN = 5
METRICS = ("flow_per_hour", "mean_speed_kmh", "mean_occupancy")
FRAME_COLUMNS = ("series_id", "window_start", *METRICS)
SCORE_COLUMNS = ("series_id", "window_start", "anomaly_score", "model", "basis", "contributions")
BASES = ("series", "road-class", "global")
#: the score from which a window is an alert; the setting SMARTCITY_ANOMALY_THRESHOLD overrides it. 0.999, not
#: 0.99: a city of 129 segments scores about 37,000 windows a day, so 0.99 would raise ~370 false alerts a day and
#: 0.999 about 37 (an alert budget, not a figure fitted to any data set)
ALERT_THRESHOLD = 0.999
#: the road class of a series whose frame does not say (a sensor of unknown placement)
UNKNOWN_CLASS = "unknown"
#: the pseudo road class of every series together (the last resort of a cold start)
GLOBAL_CLASS = "global"
TOP_CONTRIBUTIONS = 3
#: the share of a training frame's time span, its end, that calibrates instead of training
CALIBRATION_FRACTION = 0.2


class Detector(ABC):
    """Calibrated anomaly scores of 5-minute windows; subclasses set ``name`` and implement the four methods."""

    name: ClassVar[str]
    #: the Python extra a detector's training needs, named in the error when it is missing
    extra: ClassVar[str] = "models"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        #: what fitting learned that a model card should show (series, windows, features ...)
        self.info: dict[str, Any] = {}

    @abstractmethod
    def fit(self, frame: pd.DataFrame) -> Detector:
        """Learn what is normal from the windows of ``frame`` (:data:`FRAME_COLUMNS`); return ``self``."""

    @abstractmethod
    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        """:data:`SCORE_COLUMNS`, one row per row of ``frame``, same order and index."""

    @abstractmethod
    def to_files(self) -> dict[str, bytes]:
        """The fitted detector as named files (no pickle, no torch needed to read them back)."""

    @classmethod
    @abstractmethod
    def load_files(cls, files: dict[str, bytes]) -> Detector:
        """A scorer rebuilt from :meth:`to_files`, for serving."""

    def context_steps(self) -> int:
        """How many 5-minute windows before a window its score reads (serving loads that much with it)."""
        return 1

    def params(self) -> dict[str, Any]:
        """The settings of this detector, for its card and to rebuild it."""
        return {"seed": self.seed}


# --- the frame --------------------------------------------------------------------------------------------------


def check_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with its columns checked: BadSeriesInput names a missing column, a naive or unparsable
    ``window_start`` or a metric that is not a number. Series ids become strings; metrics floats."""
    missing = [column for column in FRAME_COLUMNS if column not in frame.columns]
    if missing:
        raise BadSeriesInput(missing[0], "missing column")
    frame = frame.copy()
    frame["series_id"] = frame["series_id"].astype(str)
    starts = frame["window_start"]
    if not isinstance(starts.dtype, pd.DatetimeTZDtype):
        try:
            starts = pd.to_datetime(starts, utc=False)
        except (TypeError, ValueError) as error:
            raise BadSeriesInput("window_start", f"not a timestamp: {error}") from None
        if not isinstance(starts.dtype, pd.DatetimeTZDtype):
            raise BadSeriesInput("window_start", "timestamps must carry a timezone")
    frame["window_start"] = starts.dt.tz_convert("UTC")
    for metric in METRICS:
        try:
            frame[metric] = pd.to_numeric(frame[metric]).astype(np.float64)
        except (TypeError, ValueError):
            raise BadSeriesInput(metric, "not a number") from None
    return frame


def calibration_rows(frame: pd.DataFrame) -> np.ndarray:
    """The mask of the rows that calibrate a detector: the last :data:`CALIBRATION_FRACTION` of the frame's time
    span. A detector learns its profiles and models from the rows before only, so that its calibration sees what
    a new day gets, not windows it was fitted to (in-sample scores are too low: the alerts would be too many)."""
    starts = frame["window_start"]
    cut = starts.min() + (starts.max() - starts.min()) * (1 - CALIBRATION_FRACTION)
    return (starts > cut).to_numpy()


def scores_frame(frame: pd.DataFrame, scores: np.ndarray, model: str, basis: np.ndarray | list[str],
                 contributions: list[dict[str, float]]) -> pd.DataFrame:
    """The :data:`SCORE_COLUMNS` frame of ``frame``'s rows (same index)."""
    return pd.DataFrame({
        "series_id": frame["series_id"].to_numpy(), "window_start": frame["window_start"].to_numpy(),
        "anomaly_score": np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0), "model": model,
        "basis": list(basis), "contributions": contributions,
    }, index=frame.index)


# --- calibration ------------------------------------------------------------------------------------------------


class Calibration:
    """Raw anomaly scores (higher = stranger) -> [0, 1]: the empirical CDF of the training scores, and beyond the
    highest one an exponential tail fitted to the top 1 % (so two very strange windows still rank).

    ``values`` are raw-score quantiles at the probabilities ``probabilities`` (a few hundred points)."""

    POINTS = 400
    TAIL = 0.01

    def __init__(self, values: np.ndarray, probabilities: np.ndarray, tail_scale: float) -> None:
        self.values, self.probabilities, self.tail_scale = values, probabilities, tail_scale

    @classmethod
    def fit(cls, raw: np.ndarray) -> Calibration:
        raw = np.sort(np.asarray(raw, dtype=np.float64)[np.isfinite(raw)])
        if not raw.size:
            raw = np.zeros(1)
        n = raw.size
        # mid-rank positions, (rank + 0.5) / (n + 1): the highest training score is 1 - 0.5 / (n + 1) (nothing seen
        # is "rarer than everything"), and a score that every training window shares is 0.5, whatever n
        probabilities = np.linspace(0, 1, min(cls.POINTS, n) + 1)
        values = np.quantile(raw, probabilities)
        probabilities = (probabilities * n + 0.5) / (n + 1)
        # ties (a raw score that many windows share) map to the middle of the probabilities they span
        values, group = np.unique(values, return_inverse=True)
        probabilities = np.bincount(group, probabilities) / np.bincount(group)
        top = raw[int(np.floor((1 - cls.TAIL) * (n - 1))):]
        scale = float(np.mean(top - top[0])) if top.size > 1 else 0.0
        spread = float(raw[-1] - raw[0])
        return cls(values, probabilities, max(scale, 1e-3 * spread, 1e-9))

    def __call__(self, raw: np.ndarray) -> np.ndarray:
        raw = np.asarray(raw, dtype=np.float64)
        inside = np.interp(raw, self.values, self.probabilities, left=0.0)
        beyond = raw > self.values[-1]
        excess = np.where(beyond, raw - self.values[-1], 0.0) / self.tail_scale
        tail = 1 - (1 - self.probabilities[-1]) * np.exp(-excess)
        out = np.where(beyond, tail, inside)
        return np.where(np.isfinite(raw), out, np.nan)

    def to_json(self) -> dict:
        return {"values": self.values.tolist(), "probabilities": self.probabilities.tolist(),
                "tail_scale": self.tail_scale}

    @classmethod
    def from_json(cls, data: dict) -> Calibration:
        return cls(np.array(data["values"], dtype=np.float64), np.array(data["probabilities"], dtype=np.float64),
                   float(data["tail_scale"]))


# --- contributions ----------------------------------------------------------------------------------------------


def top_contributions(weights: np.ndarray, names: list[str] | tuple[str, ...],
                      top: int = TOP_CONTRIBUTIONS) -> list[dict[str, float]]:
    """Per row of ``weights`` ([n_rows, n_features], non-negative), the ``top`` heaviest features, normalised to
    sum to 1 (rounded to 3 decimals); an empty dict where every weight is 0 or missing."""
    weights = np.nan_to_num(np.abs(np.asarray(weights, dtype=np.float64)))
    if not weights.size:
        return [{} for _ in range(weights.shape[0])]
    order = np.argsort(-weights, axis=1, kind="stable")[:, :top]
    chosen = np.take_along_axis(weights, order, axis=1)
    totals = chosen.sum(axis=1)
    out = []
    for row, total in zip(range(len(weights)), totals):
        if total <= 0:
            out.append({})
            continue
        out.append({names[k]: round(float(w / total), 3) for k, w in zip(order[row], chosen[row]) if w > 0})
    return out


# --- road classes -----------------------------------------------------------------------------------------------


def segment_road_classes() -> dict[str, str]:
    """Road segment NGSI id (as the aggregates carry it) -> :func:`road_class`, for the simulated city."""
    from smartcity.city import configured_city
    from smartcity.events import ngsi_id

    return {ngsi_id("RoadSegment", segment.id): segment.road_class for segment in configured_city().segments}


def road_classes_of(frame: pd.DataFrame) -> pd.Series:
    """Each row's road class: the frame's ``road_class`` column, :data:`UNKNOWN_CLASS` where it has none."""
    if "road_class" not in frame.columns:
        return pd.Series(UNKNOWN_CLASS, index=frame.index)
    return frame["road_class"].fillna(UNKNOWN_CLASS).astype(str)


def city_timezone() -> str:
    """The city's time zone: the default of a detector's time-of-day profiles."""
    from smartcity.events import city

    return city().timezone


def json_dumps(value: Any) -> str:
    """Contributions as the JSON text a CSV cell or a database column holds."""
    return json.dumps(value, separators=(",", ":"))


__all__ = [
    "ALERT_THRESHOLD", "BASES", "CALIBRATION_FRACTION", "FRAME_COLUMNS", "GLOBAL_CLASS", "METRICS", "SCORE_COLUMNS", "STEP_MIN", "UNKNOWN_CLASS",
    "Calibration", "Detector", "calibration_rows", "check_frame", "city_timezone", "json_dumps", "json_file", "read_json_file", "road_class",
    "road_classes_of", "scores_frame", "segment_road_classes", "top_contributions",
]
