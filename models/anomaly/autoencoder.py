"""An MLP autoencoder on the window features of :mod:`models.anomaly.features`: trained with torch, served as ONNX.

The features are standardised (median and robust spread of the training windows, clipped to +-30) and squeezed
through a narrow layer; a window the network cannot rebuild is unlike the training ones. The raw score is the
mean squared reconstruction error over the features, calibrated on the last days of the training frame (held
out from training: :func:`models.anomaly.base.calibration_rows`); each feature's share of the error is its contribution. One network serves every series: a
new one (basis ``road-class`` or ``global``) gets features built from its road class's profile.

``fit`` imports torch (:data:`extra` ``torch``) and exports the network with
:func:`models.torch_training.export_onnx`; ``score`` and ``load_files`` run the ONNX bytes with onnxruntime
(:class:`models.onnx_predictor.OnnxPredictor`) and never import torch.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from models.anomaly.base import (
    Calibration, Detector, calibration_rows, check_frame, city_timezone, json_file, read_json_file, scores_frame, top_contributions,
)
from models.anomaly.features import CONTEXT_STEPS, FEATURES, FeatureBuilder, robust_centre_scale
from models.onnx_predictor import OnnxPredictor

CLIP = 30.0  # wide: a window 10 spreads off must still rank below one 30 off
MAX_TRAINING_WINDOWS = 60_000


class AutoencoderDetector(Detector):
    """Reconstruction error of an MLP autoencoder over standardised window features."""

    name = "autoencoder"
    extra = "torch"

    def __init__(self, seed: int = 0, timezone: str | None = None, hidden: int = 32, bottleneck: int = 6,
                 epochs: int = 12, batch_size: int = 256, learning_rate: float = 3e-3) -> None:
        super().__init__(seed)
        self.timezone = timezone
        self.hidden, self.bottleneck, self.epochs = hidden, bottleneck, epochs
        self.batch_size, self.learning_rate = batch_size, learning_rate

    def fit(self, frame: pd.DataFrame) -> AutoencoderDetector:
        frame = check_frame(frame)
        self.timezone = self.timezone or city_timezone()
        calibrating = calibration_rows(frame)
        self.features = FeatureBuilder.fit(frame[~calibrating], self.timezone)
        x, _, _ = self.features.transform(frame)
        self.centre, self.scale = robust_centre_scale(x[~calibrating])
        z = self._standardised(x)
        rng = np.random.default_rng(self.seed)
        train = z[rng.permutation(np.flatnonzero(~calibrating))[:MAX_TRAINING_WINDOWS]]
        self.onnx, self.info = train_autoencoder(train, self.hidden, self.bottleneck, self.epochs, self.batch_size,
                                                 self.learning_rate, self.seed)
        self.predictor = OnnxPredictor(self.onnx)
        self.calibration = Calibration.fit(self._errors(z[calibrating]).mean(axis=1))
        self.info.update(series=len(self.features.series), windows=len(frame), features=list(FEATURES))
        return self

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        frame = check_frame(frame)
        x, basis, _ = self.features.transform(frame)
        errors = self._errors(self._standardised(x))
        return scores_frame(frame, self.calibration(errors.mean(axis=1)), self.name, basis,
                            top_contributions(errors, FEATURES))

    def _standardised(self, x: np.ndarray) -> np.ndarray:
        return np.clip((x - self.centre) / self.scale, -CLIP, CLIP).astype(np.float32)

    def _errors(self, z: np.ndarray) -> np.ndarray:
        """Squared reconstruction error of each feature, ``[n_rows, n_features]``."""
        if not len(z):
            return np.zeros((0, len(FEATURES)))
        rebuilt = self.predictor.run({"features": z})
        return (rebuilt.astype(np.float64) - z) ** 2

    def to_files(self) -> dict[str, bytes]:
        state = {"centre": self.centre.tolist(), "scale": self.scale.tolist(), "info": self.info,
                 "calibration": self.calibration.to_json()}
        return {"model.onnx": self.onnx, "features.json": json_file(self.features.to_json()),
                "detector.json": json_file(state), "params.json": json_file(self.params())}

    @classmethod
    def load_files(cls, files: dict[str, bytes]) -> AutoencoderDetector:
        detector = cls(**read_json_file(files, "params.json"))
        state = read_json_file(files, "detector.json")
        detector.features = FeatureBuilder.from_json(read_json_file(files, "features.json"))
        detector.centre, detector.scale = np.array(state["centre"]), np.array(state["scale"])
        detector.info = state["info"]
        detector.calibration = Calibration.from_json(state["calibration"])
        detector.onnx = files["model.onnx"]
        detector.predictor = OnnxPredictor(detector.onnx)
        return detector

    def context_steps(self) -> int:
        return CONTEXT_STEPS

    def params(self) -> dict:
        return {**super().params(), "timezone": self.timezone, "hidden": self.hidden, "bottleneck": self.bottleneck,
                "epochs": self.epochs, "batch_size": self.batch_size, "learning_rate": self.learning_rate}


def train_autoencoder(z: np.ndarray, hidden: int, bottleneck: int, epochs: int, batch_size: int,
                      learning_rate: float, seed: int) -> tuple[bytes, dict]:
    """Train an MLP autoencoder on the rows of ``z`` (float32) with torch, on one thread; its ONNX bytes (input
    ``features``) and what its card shows. Raises ImportError naming the extra when torch is missing."""
    try:
        import torch
        from torch import nn

        from models.torch_training import export_onnx
    except ImportError as error:
        raise ImportError(f"the autoencoder trains with torch, which is not installed ({error}): "
                          "pip install 'smartcity[torch]'") from None
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        width = z.shape[1]
        network = nn.Sequential(nn.Linear(width, hidden), nn.Tanh(), nn.Linear(hidden, bottleneck), nn.Tanh(),
                                nn.Linear(bottleneck, hidden), nn.Tanh(), nn.Linear(hidden, width))
        optimiser = torch.optim.Adam(network.parameters(), lr=learning_rate)
        data = torch.from_numpy(np.ascontiguousarray(z, dtype=np.float32))
        order_rng = np.random.default_rng(seed)
        started, losses = time.perf_counter(), []
        for _ in range(epochs):
            network.train()
            total = 0.0
            for batch in data[torch.from_numpy(order_rng.permutation(len(data)))].split(batch_size):
                loss = nn.functional.mse_loss(network(batch), batch)
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                total += loss.item() * len(batch)
            losses.append(round(total / max(len(data), 1), 6))
        network.eval()
        onnx = export_onnx(network, {"features": z[:2]})
        return onnx, {"epochs": epochs, "loss_history": losses, "training_windows": len(z),
                      "training_seconds": round(time.perf_counter() - started, 2), "torch_version": torch.__version__}
    finally:
        torch.set_num_threads(threads)
