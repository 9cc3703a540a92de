"""The one interface every forecaster implements, baselines included.

A forecaster is fitted on the first ``train_end`` steps of a :class:`~models.panel.Panel` and predicts, for each
series and each origin (a grid index: the last observed step), the P10/P50/P90 of the value ``h`` minutes later
for each of its horizons::

    model = XGBoostForecaster(horizons_min=(15, 30, 60), seed=1).fit(panel, train_end)
    forecasts = model.predict(panel, origins)      # [n_series, n_origins, n_horizons, 3]

The contract that the leakage test checks: the forecast at origin ``o`` depends only on ``values[:, :o + 1]`` and
the covariates up to ``o``. Series are known by id, not by row, so a fitted model predicts a panel that holds
only some of its series (serving reads one segment and its neighbours) or series it has never seen (a new sensor;
each model says what it does then).

``to_files`` returns everything serving needs as named byte strings (JSON, XGBoost's own format, ONNX), and
``load_files`` rebuilds a predictor from them without torch: the function images carry onnxruntime, not torch.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from models.panel import Panel

QUANTILES = (0.1, 0.5, 0.9)
DEFAULT_HORIZONS_MIN = (15, 30, 60)


class Forecaster(ABC):
    """P10/P50/P90 forecasts at several horizons; subclasses set ``name`` and implement the four methods."""

    name: ClassVar[str]
    #: the Python extra a model's training needs, named in the error when it is missing
    extra: ClassVar[str] = "models"

    def __init__(self, horizons_min: tuple[int, ...] = DEFAULT_HORIZONS_MIN, seed: int = 0) -> None:
        self.horizons_min = tuple(int(h) for h in horizons_min)
        self.seed = seed
        self.step_min: int | None = None
        #: what fitting learned that a model card should show (features, epochs, fallback series ...)
        self.info: dict[str, Any] = {}

    @abstractmethod
    def fit(self, panel: Panel, train_end: int) -> Forecaster:
        """Learn from ``panel.values[:, :train_end]`` (and covariates up to there); return ``self``."""

    @abstractmethod
    def predict(self, panel: Panel, origins: np.ndarray) -> np.ndarray:
        """``[n_series, len(origins), len(horizons_min), 3]`` quantile forecasts; NaN where none can be made."""

    @abstractmethod
    def to_files(self) -> dict[str, bytes]:
        """The fitted model as named files (no pickle, no torch needed to read them back)."""

    @classmethod
    @abstractmethod
    def load_files(cls, files: dict[str, bytes]) -> Forecaster:
        """A predictor rebuilt from :meth:`to_files`, for serving."""

    def context_steps(self) -> int:
        """How many grid steps up to the origin a forecast reads (serving loads that much); the default, eight days,
        covers a same-time-last-week feature with room to spare. Models that read less say so."""
        return 8 * 1440 // (self.step_min or 5)

    def params(self) -> dict[str, Any]:
        """The settings of this model, for its card and to rebuild it."""
        return {"horizons_min": list(self.horizons_min), "seed": self.seed, "step_min": self.step_min}


def json_file(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=True).encode()


def read_json_file(files: dict[str, bytes], name: str) -> Any:
    return json.loads(files[name])


def sort_quantiles(forecasts: np.ndarray) -> np.ndarray:
    """Quantile forecasts made monotonic (P10 <= P50 <= P90) along the last axis; NaN stays NaN."""
    return np.sort(forecasts, axis=-1)
