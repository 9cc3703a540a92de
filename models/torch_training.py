"""Training of the sequence models with torch, and their export to ONNX: the only place torch is imported.

Both networks (:mod:`models.lstm`, :mod:`models.transformer`) take the inputs of :mod:`models.sequences` and
return ``[batch, n_horizons, 3]`` normalised residual quantiles. One loop trains them: the pinball loss of
P10/P50/P90 over all horizons at once, Adam, a few epochs over a random sample of training windows, early stopping
on a chronological validation tail (the best epoch's weights are kept). Training is seeded and runs on
a fixed number of threads (:class:`TrainingSettings`), so the same data and seed give the same model.

Serving never imports this module: :func:`export_onnx` writes the network as ONNX bytes that
:mod:`models.onnx_predictor` runs with onnxruntime.
"""

from __future__ import annotations

import io
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from models.base import QUANTILES
from models.sequences import TrainingWindows

ONNX_OPSET = 17


@dataclass
class TrainingSettings:
    """How long and how hard to train; the defaults keep a model at ~2 minutes on 2 cores for 150 series x
    28 days of 5-minute data (the window cap, not the data size, bounds the work)."""

    epochs: int = 8
    max_windows: int = 60_000
    batch_size: int = 512
    learning_rate: float = 3e-3
    patience: int = 2
    validation_fraction: float = 0.15
    #: a safety net on a slow or busy machine: training stops after the epoch that crosses it (info says so)
    max_seconds: float = 150.0
    #: torch threads: these networks' small matrices gain little from a second thread, and on a machine shared
    #: with other work (or a pod with a CPU limit) two threads ran an LSTM step 3-10x slower than one
    threads: int = 1


class QuantileHead(nn.Module):
    """Features -> ``[batch, n_horizons, 3]``: the median plus non-negative offsets down and up, so that the
    quantiles never cross."""

    def __init__(self, n_features: int, n_horizons: int, hidden: int) -> None:
        super().__init__()
        self.n_horizons = n_horizons
        self.mlp = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(), nn.Linear(hidden, n_horizons * 3))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        raw = self.mlp(features).reshape(-1, self.n_horizons, 3)
        median = raw[:, :, 1]
        low = median - nn.functional.softplus(raw[:, :, 0])
        high = median + nn.functional.softplus(raw[:, :, 2])
        return torch.stack([low, median, high], dim=-1)


def pinball_loss(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean quantile loss over P10/P50/P90 and every horizon; missing targets (NaN) are left out."""
    observed = ~torch.isnan(target)
    target = torch.nan_to_num(target)[:, :, None]
    quantiles = torch.tensor(QUANTILES, dtype=predicted.dtype)
    error = target - predicted
    loss = torch.maximum(quantiles * error, (quantiles - 1) * error).sum(dim=-1)
    return (loss * observed).sum() / observed.sum().clamp(min=1)


def train(network: nn.Module, windows: TrainingWindows, settings: TrainingSettings, seed: int,
          series_index: np.ndarray | None = None, augment: Callable | None = None) -> dict[str, Any]:
    """Fit ``network`` in place; return what its card shows (epochs, losses, windows, seconds).

    ``series_index`` is the series-embedding index of each panel row, for a network that takes one;
    ``augment(indices, rng)`` may alter a batch's indices (the Transformer hides some series to train its
    "unknown series" embedding)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _train(network, windows, settings, seed, series_index, augment)
    finally:
        torch.set_num_threads(threads)


def _train(network: nn.Module, windows: TrainingWindows, settings: TrainingSettings, seed: int,
           series_index: np.ndarray | None, augment: Callable | None) -> dict[str, Any]:
    torch.manual_seed(seed)
    generator = np.random.default_rng(seed)
    train_feeds = _tensors(windows.train.feeds(series_index))
    train_targets = torch.from_numpy(windows.train_targets)
    validation_feeds = _tensors(windows.validation.feeds(series_index))
    validation_targets = torch.from_numpy(windows.validation_targets)
    optimiser = torch.optim.Adam(network.parameters(), lr=settings.learning_rate)
    started = time.perf_counter()
    best = (float("inf"), 0, _state(network))
    history: list[tuple[float, float]] = []
    stopped = "epochs"
    for epoch in range(1, settings.epochs + 1):
        network.train()
        order = generator.permutation(len(train_targets))
        total, seen = 0.0, 0
        for start in range(0, len(order), settings.batch_size):
            index = order[start:start + settings.batch_size]
            feeds = {name: tensor[index] for name, tensor in train_feeds.items()}
            if augment is not None and "series" in feeds:
                feeds["series"] = torch.from_numpy(augment(feeds["series"].numpy(), generator))
            loss = pinball_loss(network(**feeds), train_targets[index])
            optimiser.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(network.parameters(), 1.0)
            optimiser.step()
            total, seen = total + loss.item() * len(index), seen + len(index)
        validation_loss = evaluate(network, validation_feeds, validation_targets, settings.batch_size * 8)
        history.append((total / max(seen, 1), validation_loss))
        if validation_loss < best[0]:
            best = (validation_loss, epoch, _state(network))
        elif epoch - best[1] >= settings.patience:
            stopped = "early stopping"
            break
        if time.perf_counter() - started > settings.max_seconds:
            stopped = f"time limit ({settings.max_seconds:g} s)"
            break
    network.load_state_dict(best[2])
    network.eval()
    return {
        "epochs": len(history), "best_epoch": best[1], "stopped_by": stopped,
        "train_loss": round(history[best[1] - 1][0], 6) if best[1] else None,
        "validation_loss": round(best[0], 6),
        "loss_history": [[round(a, 6), round(b, 6)] for a, b in history],
        "windows": {"train": len(windows.train), "validation": len(windows.validation)},
        "training_seconds": round(time.perf_counter() - started, 2),
        "torch_version": torch.__version__,
    }


def evaluate(network: nn.Module, feeds: dict[str, torch.Tensor], targets: torch.Tensor, batch_size: int) -> float:
    """Mean pinball loss of ``network`` on ``feeds``, weighted by observed targets."""
    network.eval()
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(targets), batch_size):
            part = slice(start, start + batch_size)
            batch_targets = targets[part]
            observed = int((~torch.isnan(batch_targets)).sum())
            total += float(pinball_loss(network(**{k: v[part] for k, v in feeds.items()}), batch_targets)) * observed
            count += observed
    return total / max(count, 1)


def predict_torch(network: nn.Module, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The network's output with torch (tests compare it with the ONNX export)."""
    network.eval()
    with torch.no_grad():
        return network(**_tensors(feeds)).numpy()


def export_onnx(network: nn.Module, example: dict[str, np.ndarray]) -> bytes:
    """``network`` as ONNX bytes with a dynamic batch axis; inputs named as in ``example``, output ``quantiles``.

    The TorchScript exporter (``dynamo=False``) is used while this torch has it: it needs nothing beyond torch
    and takes under a second; the torch.export-based one (onnxscript) is the fallback."""
    network.eval()
    names = list(example)
    args = tuple(torch.from_numpy(example[name][:2]) for name in names)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            buffer = io.BytesIO()
            torch.onnx.export(network, args, buffer, input_names=names, output_names=["quantiles"],
                              dynamic_axes={name: {0: "batch"} for name in [*names, "quantiles"]},
                              opset_version=ONNX_OPSET, dynamo=False)
            return buffer.getvalue()
        except Exception:  # noqa: BLE001 - a torch without the TorchScript exporter
            batch = torch.export.Dim("batch")
            program = torch.onnx.export(network, args, input_names=names, output_names=["quantiles"],
                                        dynamic_shapes={name: {0: batch} for name in names},
                                        opset_version=max(ONNX_OPSET, 18), dynamo=True, verbose=False)
            return program.model_proto.SerializeToString()


def _tensors(feeds: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {name: torch.from_numpy(np.ascontiguousarray(array)) for name, array in feeds.items()}


def _state(network: nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in network.state_dict().items()}
