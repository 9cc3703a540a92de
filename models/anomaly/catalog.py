"""Every anomaly detector by name, imported only when asked for, and the registry that loads them.

Detectors are saved to the same object-store registry as the forecasters (:class:`models.registry.Registry`),
under their own targets (:data:`models.anomaly.history.ANOMALY_TARGETS`); :class:`AnomalyRegistry` only rebuilds
a version with the detector classes instead of the forecaster ones. Naming ``isolation-forest`` imports neither
torch nor the autoencoder's module; loading an autoencoder needs onnxruntime, not torch.
"""

from __future__ import annotations

from models.anomaly.base import Detector
from models.catalog import class_named
from models.registry import Registry

DETECTORS = {
    "zscore": "models.anomaly.zscore:ZScoreDetector",
    "isolation-forest": "models.anomaly.isolation_forest:IsolationForestDetector",
    "autoencoder": "models.anomaly.autoencoder:AutoencoderDetector",
}
BASELINE = "zscore"
LEARNED = ("isolation-forest", "autoencoder")


def detector_class(name: str) -> type[Detector]:
    """The detector class called ``name``; BadSeriesInput (field ``model``) lists the known names."""
    return class_named(DETECTORS, name, "detector")


def detector_names(choice: str) -> tuple[str, ...]:
    """``all`` (the learned detectors), one name or a comma-separated list, as detector names (checked)."""
    names = LEARNED if choice.strip() == "all" else tuple(n.strip() for n in choice.split(",") if n.strip())
    for name in names:
        detector_class(name)
    return names


class AnomalyRegistry(Registry):
    """The model registry, loading detectors (same layout, cards and promotion pointers as the forecasters')."""

    def load(self, target: str, version: str) -> Detector:  # type: ignore[override]
        return detector_class(self._model_of(target, version)).load_files(self.files(target, version))
