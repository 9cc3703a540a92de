"""The baseline every anomaly report shows: the streaming job's robust z-score (:mod:`streaming.anomalies`).

As the job does, a window is judged against the windows of its series that started in the same hour of the day
(city time), with at least :data:`MIN_BASELINE_WINDOWS` of them: the modified z-score
(:func:`smartcity.robust.robust_z`, median and MAD) of a low ``mean_speed_kmh`` or a high ``mean_occupancy``,
the congestion side. Here the baseline is the training frame's last :data:`BASELINE_DAYS` days (but the
very last ones, which calibrate: :func:`models.anomaly.base.calibration_rows`); the raw score is
the larger congestion-side z, calibrated like every detector's (:class:`models.anomaly.base.Calibration`).
:func:`streaming_flags` is the job's own rule, ``z > 3.5``, for reports that show it beside the calibrated score.

A series without its own baseline in that hour is judged against the windows of every series of its road class
(``road-class``), else of all series (``global``).
"""

from __future__ import annotations

from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd

from models.anomaly.base import (
    GLOBAL_CLASS, UNKNOWN_CLASS, Calibration, Detector, calibration_rows, check_frame, city_timezone, json_file, read_json_file, road_classes_of,
    scores_frame, top_contributions,
)
from smartcity.robust import MAD_CONSISTENCY, ROBUST_Z_THRESHOLD, median_absolute_deviation

# as streaming.anomalies (which imports pyspark): 28 days of same-hour windows, 6 at least, and the congestion side
BASELINE_DAYS = 28
MIN_BASELINE_WINDOWS = 6
WATCHED_METRICS = {"mean_speed_kmh": -1, "mean_occupancy": +1}


class ZScoreDetector(Detector):
    """The robust z-score of speed and occupancy against the same hour of the day."""

    name = "zscore"
    extra = "runtime"

    def __init__(self, seed: int = 0, timezone: str | None = None) -> None:
        super().__init__(seed)
        self.timezone = timezone

    def fit(self, frame: pd.DataFrame) -> ZScoreDetector:
        frame = check_frame(frame)
        self.timezone = self.timezone or city_timezone()
        frame = frame[frame["window_start"] >= frame["window_start"].max() - pd.Timedelta(days=BASELINE_DAYS)]
        frame = frame.assign(hour=self._hours(frame))
        calibrating = calibration_rows(frame)
        learn = frame[~calibrating]
        #: metric -> "<basis>|<series id, road class or global>|<hour>" -> [median, MAD]
        self.baselines: dict[str, dict[str, list[float]]] = {metric: {} for metric in WATCHED_METRICS}
        for basis, keys in _keys(frame).items():  # the training part's windows; the last days calibrate
            for metric in WATCHED_METRICS:
                for (key, hour), values in learn[metric].groupby([keys[~calibrating], learn["hour"]]):
                    values = values.dropna().tolist()
                    if len(values) >= MIN_BASELINE_WINDOWS and not key.endswith(UNKNOWN_CLASS):
                        self.baselines[metric][f"{key}|{hour}"] = list(median_absolute_deviation(values))
        self.calibration = Calibration.fit(self._raw(frame[calibrating])[0])
        self.info = {"series": int(frame["series_id"].nunique()), "windows": len(frame)}
        return self

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = check_frame(frame)
        raw, z, basis = self._raw(frame.assign(hour=self._hours(frame)))
        contributions = top_contributions(np.abs(z), list(WATCHED_METRICS))
        return scores_frame(frame, self.calibration(raw), self.name, basis, contributions)

    def robust_z(self, frame: pd.DataFrame) -> np.ndarray:
        """``[n_rows, 2]``: the congestion-side z of speed and occupancy (positive = more congested), 0 where no
        baseline has a spread."""
        frame = check_frame(frame)
        return self._raw(frame.assign(hour=self._hours(frame)))[1]

    def _raw(self, frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The raw score (the larger congestion-side z), both z and the basis of each row."""
        z = np.zeros((len(frame), len(WATCHED_METRICS)))
        basis = pd.Series(np.nan, index=frame.index, dtype=object)
        hours = "|" + frame["hour"].astype(str)
        for k, (metric, sign) in enumerate(WATCHED_METRICS.items()):
            cells = pd.Series(np.nan, index=frame.index, dtype=object)
            for name, keys in _keys(frame).items():  # the series' own baseline first
                found = (keys + hours).map(self.baselines[metric])
                cells = cells.fillna(found)
                basis = basis.fillna(found.notna().map({True: name, False: np.nan}))
            known = cells.notna().to_numpy()
            centre, mad = np.full(len(frame), np.nan), np.zeros(len(frame))
            if known.any():
                centre[known], mad[known] = np.array(cells[known].tolist()).T
            with np.errstate(divide="ignore", invalid="ignore"):
                value = sign * MAD_CONSISTENCY * (frame[metric].to_numpy(dtype=np.float64) - centre) / mad
            z[:, k] = np.where(known & (mad > 0) & np.isfinite(value), value, 0.0)
        return np.max(z, axis=1), z, basis.fillna("global").to_numpy()

    def _hours(self, frame: pd.DataFrame) -> pd.Series:
        return frame["window_start"].dt.tz_convert(ZoneInfo(self.timezone)).dt.hour

    def to_files(self) -> dict[str, bytes]:
        return {"zscore.json": json_file({"baselines": self.baselines, "calibration": self.calibration.to_json(),
                                          "info": self.info}),
                "params.json": json_file(self.params())}

    @classmethod
    def load_files(cls, files: dict[str, bytes]) -> ZScoreDetector:
        params, state = read_json_file(files, "params.json"), read_json_file(files, "zscore.json")
        detector = cls(**params)
        detector.baselines, detector.info = state["baselines"], state["info"]
        detector.calibration = Calibration.from_json(state["calibration"])
        return detector

    def context_steps(self) -> int:
        return 0

    def params(self) -> dict:
        return {**super().params(), "timezone": self.timezone}


def streaming_flags(z: np.ndarray) -> np.ndarray:
    """The streaming job's rule on :meth:`ZScoreDetector.robust_z`: congestion-side ``z > 3.5`` on either metric."""
    return np.max(z, axis=1) > ROBUST_Z_THRESHOLD


def _keys(frame: pd.DataFrame) -> dict[str, pd.Series]:
    """Each row's baseline key per basis, most specific first."""
    return {"series": "series|" + frame["series_id"],
            "road-class": "road-class|" + road_classes_of(frame),
            "global": pd.Series(f"global|{GLOBAL_CLASS}", index=frame.index)}
