"""The serving half of the sequence models (LSTM, Transformer): their ONNX export run with onnxruntime.

:class:`SequenceForecaster` is what both models share: ``fit`` trains with torch (imported then, from
:mod:`models.torch_training`) and exports ONNX; ``predict`` always goes through :class:`OnnxPredictor`, the same
path serving takes, so what the registry scores is what the function serves. ``load_files`` needs numpy and
onnxruntime only: nothing this module imports at load or predict time imports torch.

A forecast is built as :mod:`models.sequences` describes: the network predicts the deviation from the
historical average at each horizon, normalised by the series' level, and is turned back to the original scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import onnxruntime

from models.base import Forecaster, json_file, read_json_file
from models.baselines import Profiles
from models.panel import Panel, check_enough_history
from models.sequences import CONTEXT_MIN, SequenceBuilder, context_steps, to_original_scale

# (series, origin) pairs per network call: bounds memory when a backtest predicts every origin of many series.
PAIRS_PER_RUN = 16_384


class OnnxPredictor:
    """An onnxruntime session over a network's ONNX bytes: named inputs in, ``[n, n_horizons, 3]`` out."""

    def __init__(self, model: bytes, threads: int = 1) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.input_names = [item.name for item in self.session.get_inputs()]

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, {name: feeds[name] for name in self.input_names})[0]


class SequenceForecaster(Forecaster):
    """A network over context windows and the known future HA, trained with torch, served from ONNX."""

    extra = "torch"

    def __init__(self, horizons_min: tuple[int, ...] = (15, 30, 60), seed: int = 0, context_min: int = CONTEXT_MIN,
                 training: dict[str, Any] | None = None) -> None:
        super().__init__(horizons_min, seed)
        self.context_min = context_min
        #: overrides of :class:`models.torch_training.TrainingSettings` (epochs, max_windows ...)
        self.training = dict(training or {})

    def network(self, n_channels: int, n_horizons: int, context: int):
        """The torch module to train (imports torch)."""
        raise NotImplementedError

    def learn_series(self, series_ids: list[str]) -> None:
        """Remember what the network needs to know of the training series (the Transformer: their index)."""

    def series_index(self, series_ids: list[str]) -> np.ndarray | None:
        """The network's ``series`` input for each of these series, or None for a network without one."""
        return None

    def augment(self, index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A training batch's ``series`` input, as the network should see it."""
        return index

    def fit(self, panel: Panel, train_end: int) -> SequenceForecaster:
        from models import torch_training
        from models.sequences import CHANNELS, training_windows

        check_enough_history(panel, train_end)
        settings = torch_training.TrainingSettings(**self.training)
        self.step_min = panel.step_min
        self.context = context_steps(panel.step_min, self.context_min)
        self.profiles = Profiles.fit_smoothed(panel, train_end)
        self.learn_series(panel.series_ids)
        steps = panel.horizon_steps(self.horizons_min)
        windows = training_windows(panel, self.profiles.anchor(), train_end, steps, self.context, settings.max_windows,
                                   settings.validation_fraction, np.random.default_rng(self.seed))
        torch_training.torch.manual_seed(self.seed)  # the initial weights: same seed and data, same model
        self.torch_network = self.network(len(CHANNELS), len(steps), self.context)
        index = self.series_index(panel.series_ids)
        self.info = torch_training.train(self.torch_network, windows, settings, self.seed, index, self.augment)
        self.info.update(context_steps=self.context, channels=list(CHANNELS),
                         profile_smoothing_min=self.profiles.smoothing_slots * panel.step_min)
        self.onnx = torch_training.export_onnx(self.torch_network, windows.validation.feeds(index))
        self.predictor = OnnxPredictor(self.onnx)
        return self

    def predict(self, panel: Panel, origins: np.ndarray) -> np.ndarray:
        origins = np.asarray(origins, dtype=np.int64)
        steps = panel.horizon_steps(self.horizons_min)
        out = np.full((panel.n_series, len(origins), len(steps), 3), np.nan)
        if not len(origins) or not panel.n_series:
            return out
        builder = SequenceBuilder(panel, self.profiles.anchor(), origins, steps, self.context)
        index = self.series_index(panel.series_ids)
        per_run = max(1, PAIRS_PER_RUN // panel.n_series)
        for start in range(0, len(origins), per_run):
            part = slice(start, start + per_run)
            batch = builder.grid(panel.n_series, origins[part])
            forecasts = to_original_scale(self.predictor.run(batch.feeds(index)), batch)
            out[:, part] = forecasts.reshape(panel.n_series, -1, len(steps), 3)
        return out

    def params(self) -> dict[str, Any]:
        return {**super().params(), "context_min": self.context_min, "training": self.training}

    def to_files(self) -> dict[str, bytes]:
        state = {**self.params(), "context_steps": self.context, "info": self.info}
        return {"model.onnx": self.onnx, "profiles.json": json_file(self.profiles.to_json()),
                "params.json": json_file(state)}

    @classmethod
    def load_files(cls, files: dict[str, bytes]) -> SequenceForecaster:
        state = read_json_file(files, "params.json")
        fitted = {"step_min", "context_steps", "info"}
        model = cls(**{key: value for key, value in state.items() if key not in fitted})
        model.step_min, model.context, model.info = state["step_min"], state["context_steps"], state["info"]
        model.profiles = Profiles.from_json(read_json_file(files, "profiles.json"))
        model.onnx = files["model.onnx"]
        model.predictor = OnnxPredictor(model.onnx)
        return model
