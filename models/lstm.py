"""LSTM: sequence to multi-horizon, one network over all series.

An LSTM reads the context window of :mod:`models.sequences` (3 hours of deviations from the historical average,
the values, time of day); a small MLP takes its last hidden state and the historical average at each horizon's
target time and gives P10/P50/P90 of the deviation at every horizon at once. The network never sees a series
id, so a series it was not trained on is forecast like any other (its historical average comes from
:class:`~models.baselines.Profiles`' fallback). Trained with torch, served from ONNX (:mod:`models.onnx_predictor`).
"""

from __future__ import annotations

from typing import Any

from models.onnx_predictor import SequenceForecaster
from models.sequences import CONTEXT_MIN


class LSTMForecaster(SequenceForecaster):
    name = "lstm"

    def __init__(self, horizons_min: tuple[int, ...] = (15, 30, 60), seed: int = 0, context_min: int = CONTEXT_MIN,
                 training: dict[str, Any] | None = None, hidden: int = 32) -> None:
        super().__init__(horizons_min, seed, context_min, training)
        self.hidden = hidden

    def network(self, n_channels: int, n_horizons: int, context: int):
        import torch
        from torch import nn

        from models.torch_training import QuantileHead

        hidden = self.hidden

        class LSTMNetwork(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.lstm = nn.LSTM(n_channels, hidden, batch_first=True)
                self.head = QuantileHead(hidden + n_horizons, n_horizons, hidden)

            def forward(self, context, future):
                states, _ = self.lstm(context)
                return self.head(torch.cat([states[:, -1], future], dim=-1))

        return LSTMNetwork()

    def params(self) -> dict[str, Any]:
        return {**super().params(), "hidden": self.hidden}
