"""Transformer: one global multi-horizon model over all series, with a learned series embedding.

Each 15 minutes of the context window (:mod:`models.sequences`) become a token: their steps' channels projected
to ``d_model``, plus a learned position and the embedding of its series. A small encoder (2 layers, 4 heads)
reads them; the last token's state, the series embedding and the historical average at each target time go to
the P10/P50/P90 head.

Series are embedded by id (``series.json`` keeps the training series in order). Index 0 is the "unknown series"
embedding: training hides the id of a share of windows (:data:`UNKNOWN_SHARE`) so that it learns what holds for
series in general, and a series never seen in training is forecast with it. Trained with torch, served from ONNX
(:mod:`models.onnx_predictor`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from models.base import json_file, read_json_file
from models.onnx_predictor import SequenceForecaster
from models.panel import Panel
from models.sequences import CONTEXT_MIN

UNKNOWN = 0
UNKNOWN_SHARE = 0.1
PATCH_MIN = 15


def patch_steps(step_min: int) -> int:
    """Steps per token: a token is 15 minutes of the context (3 steps of 5-minute data), so attention runs over
    12 tokens rather than 36 steps, a ninth of the work."""
    return max(1, PATCH_MIN // step_min)


class TransformerForecaster(SequenceForecaster):
    name = "transformer"

    def __init__(self, horizons_min: tuple[int, ...] = (15, 30, 60), seed: int = 0, context_min: int = CONTEXT_MIN,
                 training: dict[str, Any] | None = None, d_model: int = 32, layers: int = 2, heads: int = 4) -> None:
        super().__init__(horizons_min, seed, context_min, training)
        self.d_model, self.layers, self.heads = d_model, layers, heads
        self.series_ids: list[str] = []

    def learn_series(self, series_ids: list[str]) -> None:
        self.series_ids = list(series_ids)
        self.position = {series: i + 1 for i, series in enumerate(self.series_ids)}

    def series_index(self, series_ids: list[str]) -> np.ndarray:
        return np.array([self.position.get(series, UNKNOWN) for series in series_ids], dtype=np.int64)

    def augment(self, index: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return np.where(rng.random(len(index)) < UNKNOWN_SHARE, UNKNOWN, index)

    def fit(self, panel: Panel, train_end: int) -> TransformerForecaster:
        super().fit(panel, train_end)
        self.info.update(tokens=f"{patch_steps(self.step_min)} steps each",
                         series_embedding=f"{len(self.series_ids)} training series; a series not among them gets "
                                          f"the 'unknown series' embedding (trained on {UNKNOWN_SHARE:.0%} of the "
                                          "windows)")
        return self

    def network(self, n_channels: int, n_horizons: int, context: int):
        import torch
        from torch import nn

        from models.torch_training import QuantileHead

        d_model, n_series = self.d_model, len(self.series_ids) + 1
        # No dropout: on 2 cores it costs a quarter of the step; early stopping is the regulariser.
        layer = nn.TransformerEncoderLayer(d_model, self.heads, dim_feedforward=2 * d_model, dropout=0.0,
                                           batch_first=True, norm_first=True)
        layers, patch = self.layers, patch_steps(self.step_min)
        skip, tokens = context % patch, context // patch

        class TransformerNetwork(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.embed = nn.Linear(patch * n_channels, d_model)
                self.position = nn.Parameter(torch.randn(tokens, d_model) * 0.02)
                self.series = nn.Embedding(n_series, d_model)
                self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
                self.head = QuantileHead(2 * d_model + n_horizons, n_horizons, 2 * d_model)

            def forward(self, context, future, series):
                who = self.series(series)
                patches = context[:, skip:].reshape(-1, tokens, patch * n_channels)
                state = self.encoder(self.embed(patches) + self.position + who[:, None, :])[:, -1]
                return self.head(torch.cat([state, who, future], dim=-1))

        return TransformerNetwork()

    def params(self) -> dict[str, Any]:
        return {**super().params(), "d_model": self.d_model, "layers": self.layers, "heads": self.heads}

    def to_files(self) -> dict[str, bytes]:
        return {**super().to_files(), "series.json": json_file(self.series_ids)}

    @classmethod
    def load_files(cls, files: dict[str, bytes]) -> TransformerForecaster:
        model = super().load_files(files)
        model.learn_series(read_json_file(files, "series.json"))
        return model
