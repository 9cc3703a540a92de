"""Isolation Forest (scikit-learn) on the multivariate window features of :mod:`models.anomaly.features`.

One forest per road class, trained on the windows of that class's series (the features are on each series' own
scale, so segments of one class pool well), and one over every series for a road class it did not see. A window
is scored by the forest of its series' class, on features built from its own profile when the series was in
training (basis ``series``) or from its class's (``road-class``) or everyone's (``global``) when it is new.
The raw score is scikit-learn's (the shorter the mean path that isolates the window, the stranger), calibrated
per forest on the last days of the training frame, which it did not learn from. Contributions: how far each feature is from its training median, in robust
spreads of the class's training windows.

Saved with skops (``forest-<class>.skops``; loading trusts scikit-learn's tree type only), never pickle.
"""

from __future__ import annotations

import zipfile

import numpy as np
import pandas as pd

from models.anomaly.base import (
    GLOBAL_CLASS, Calibration, Detector, calibration_rows, check_frame, city_timezone, json_file, read_json_file, road_classes_of,
    scores_frame, top_contributions,
)
from models.anomaly.features import CONTEXT_STEPS, FEATURES, FeatureBuilder, robust_centre_scale

# the only type outside skops' defaults that a saved forest holds; anything else in a file refuses to load
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]
MAX_TRAINING_WINDOWS = 50_000
MAX_CALIBRATION_WINDOWS = 20_000
MIN_CLASS_WINDOWS = 500


class IsolationForestDetector(Detector):
    """scikit-learn's IsolationForest per road class on profile-standardised window features."""

    name = "isolation-forest"

    def __init__(self, seed: int = 0, timezone: str | None = None, n_estimators: int = 100,
                 max_samples: int = 256) -> None:
        super().__init__(seed)
        self.timezone = timezone
        self.n_estimators, self.max_samples = n_estimators, max_samples

    def fit(self, frame: pd.DataFrame) -> IsolationForestDetector:
        from sklearn.ensemble import IsolationForest

        frame = check_frame(frame)
        self.timezone = self.timezone or city_timezone()
        calibrating = calibration_rows(frame)
        self.features = FeatureBuilder.fit(frame[~calibrating], self.timezone)
        x, _, _ = self.features.transform(frame)
        classes = self._classes(frame)
        rng = np.random.default_rng(self.seed)
        self.forests, self.calibrations, self.centres, self.scales = {}, {}, {}, {}
        groups = {name: classes == name for name in np.unique(classes)}
        groups[GLOBAL_CLASS] = np.ones(len(frame), dtype=bool)
        for name, members in groups.items():
            learn, calibrate = np.flatnonzero(members & ~calibrating), np.flatnonzero(members & calibrating)
            if len(learn) < MIN_CLASS_WINDOWS and name != GLOBAL_CLASS or not len(learn) or not len(calibrate):
                continue
            train = rng.permutation(learn)[:MAX_TRAINING_WINDOWS]
            forest = IsolationForest(n_estimators=self.n_estimators, max_samples=min(self.max_samples, len(train)),
                                     random_state=self.seed, n_jobs=1).fit(x[train])
            calibration = rng.permutation(calibrate)[:MAX_CALIBRATION_WINDOWS]
            self.forests[name] = forest
            self.calibrations[name] = Calibration.fit(-forest.score_samples(x[calibration]))
            self.centres[name], self.scales[name] = robust_centre_scale(x[train])
        self.info = {"series": len(self.features.series), "windows": len(frame), "features": list(FEATURES),
                     "forests": {name: int(rows.sum()) for name, rows in groups.items() if name in self.forests}}
        return self

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = check_frame(frame)
        x, basis, _ = self.features.transform(frame)
        classes = self._classes(frame)
        scores = np.zeros(len(frame))
        weights = np.zeros_like(x)
        for name in np.unique(classes):
            rows = np.flatnonzero(classes == name)
            model = name if name in self.forests else GLOBAL_CLASS
            if not len(rows):
                continue
            scores[rows] = self.calibrations[model](-self.forests[model].score_samples(x[rows]))
            weights[rows] = np.abs(x[rows] - self.centres[model]) / self.scales[model]
        basis = np.where((basis == "road-class") & ~np.isin(classes, list(self.forests)), "global", basis)
        return scores_frame(frame, scores, self.name, basis, top_contributions(weights, FEATURES))

    def _classes(self, frame: pd.DataFrame) -> np.ndarray:
        """The road class of each row: the frame's, else the one its series had in training."""
        classes = road_classes_of(frame)
        known = frame["series_id"].map({sid: e["class"] for sid, e in self.features.series.items()})
        return known.where(known.notna(), classes).to_numpy(dtype=object)

    def to_files(self) -> dict[str, bytes]:
        import skops.io

        files = {f"forest-{name}.skops": skops.io.dumps(forest, compression=zipfile.ZIP_DEFLATED)
                 for name, forest in self.forests.items()}
        state = {"classes": sorted(self.forests), "info": self.info,
                 "calibrations": {name: c.to_json() for name, c in self.calibrations.items()},
                 "centres": {name: c.tolist() for name, c in self.centres.items()},
                 "scales": {name: c.tolist() for name, c in self.scales.items()}}
        return {**files, "features.json": json_file(self.features.to_json()), "detector.json": json_file(state),
                "params.json": json_file(self.params())}

    @classmethod
    def load_files(cls, files: dict[str, bytes]) -> IsolationForestDetector:
        import skops.io

        detector = cls(**read_json_file(files, "params.json"))
        state = read_json_file(files, "detector.json")
        detector.features = FeatureBuilder.from_json(read_json_file(files, "features.json"))
        detector.info = state["info"]
        detector.forests = {}
        for name in state["classes"]:
            data = files[f"forest-{name}.skops"]
            untrusted = [kind for kind in skops.io.get_untrusted_types(data=data) if kind not in TRUSTED_TYPES]
            if untrusted:
                raise ValueError(f"forest-{name}.skops holds types that are not trusted: {', '.join(untrusted)}")
            detector.forests[name] = skops.io.loads(data, trusted=TRUSTED_TYPES)
        detector.calibrations = {n: Calibration.from_json(c) for n, c in state["calibrations"].items()}
        detector.centres = {n: np.array(c) for n, c in state["centres"].items()}
        detector.scales = {n: np.array(c) for n, c in state["scales"].items()}
        return detector

    def context_steps(self) -> int:
        return CONTEXT_STEPS

    def params(self) -> dict:
        return {**super().params(), "timezone": self.timezone, "n_estimators": self.n_estimators,
                "max_samples": self.max_samples}

