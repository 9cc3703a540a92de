"""LSTM and Transformer on tiny synthetic series: the ONNX export matches torch, the files load in a fresh
process without torch, no forecast reads past its origin, an unknown series is forecast, and the LSTM learns
what the historical average cannot."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from models.baselines import HistoricalAverage  # noqa: E402
from models.lstm import LSTMForecaster  # noqa: E402
from models.metrics import score  # noqa: E402
from models.panel import Panel  # noqa: E402
from models.sequences import SequenceBuilder  # noqa: E402
from models.torch_training import predict_torch  # noqa: E402
from models.transformer import TransformerForecaster  # noqa: E402
from tests.models_helpers import assert_no_leakage, synthetic_panel  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HORIZONS = (15, 30, 60)
TRAIN_END = 5 * 96
QUICK = {"epochs": 2, "max_windows": 1500}
MODELS = {"lstm": LSTMForecaster, "transformer": TransformerForecaster}


def quick(name: str):
    return MODELS[name](HORIZONS, seed=1, training=QUICK)


@pytest.fixture(scope="module")
def panel() -> Panel:
    return synthetic_panel(n_series=4, days=6, step_min=15, phi=0.9, seed=3)


@pytest.fixture(scope="module", params=list(MODELS))
def fitted(request, panel):
    return quick(request.param).fit(panel, TRAIN_END)


def origins_of(panel: Panel) -> np.ndarray:
    return np.arange(TRAIN_END - 1, panel.n_times - 1, 5)


def test_the_onnx_export_gives_what_torch_gives(fitted, panel):
    origins = origins_of(panel)
    batch = SequenceBuilder(panel, fitted.profiles, origins, panel.horizon_steps(HORIZONS),
                            fitted.context).grid(panel.n_series, origins)
    index = fitted.series_index(panel.series_ids)
    feeds = batch.feeds(None if index is None else index[batch.series_row])
    np.testing.assert_allclose(fitted.predictor.run(feeds), predict_torch(fitted.torch_network, feeds), atol=1e-4)


def test_forecasts_are_ordered_quantiles_and_the_card_says_how_it_trained(fitted, panel):
    forecasts = fitted.predict(panel, origins_of(panel))
    assert forecasts.shape == (4, len(origins_of(panel)), 3, 3)
    assert np.isfinite(forecasts).all() and (np.diff(forecasts, axis=-1) >= 0).all()
    info = fitted.info
    assert info["epochs"] == 2 and info["windows"]["train"] + info["windows"]["validation"] <= 1500
    assert info["training_seconds"] > 0 and np.isfinite([info["train_loss"], info["validation_loss"]]).all()


def test_the_files_load_in_a_fresh_process_without_torch_and_forecast_the_same(fitted, panel, tmp_path):
    files = fitted.to_files()
    assert {"model.onnx", "profiles.json", "params.json"} <= set(files)
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    np.save(tmp_path / "values.npy", panel.values)
    origins = origins_of(panel)
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        import numpy as np
        import pandas as pd
        import models.onnx_predictor
        from models.catalog import model_class
        from models.panel import Panel
        folder = Path({str(tmp_path)!r})
        files = {{path.name: path.read_bytes() for path in folder.iterdir() if path.suffix in (".onnx", ".json")}}
        model = model_class({fitted.name!r}).load_files(files)
        panel = Panel({panel.series_ids!r}, pd.Timestamp({str(panel.start)!r}), {panel.step_min},
                      np.load(folder / "values.npy"))
        np.save(folder / "loaded.npy", model.predict(panel, np.array({origins.tolist()!r})))
        print("torch" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False", "loading and predicting imported torch"
    np.testing.assert_allclose(np.load(tmp_path / "loaded.npy"), fitted.predict(panel, origins), rtol=1e-6)


@pytest.mark.parametrize("name", list(MODELS))
def test_a_forecast_does_not_read_data_after_its_origin(name, panel):
    assert_no_leakage(quick(name), panel, TRAIN_END)


def test_the_transformer_forecasts_a_series_it_has_never_seen(panel):
    model = quick("transformer").fit(panel.subset([0, 1, 2]), TRAIN_END)
    assert "unknown series" in model.info["series_embedding"]
    new = Panel(["new-sensor"], panel.start, panel.step_min, panel.values[3:4])
    forecasts = model.predict(new, origins_of(panel))
    assert np.isfinite(forecasts).all()
    median, actual = np.median(forecasts[..., 1]), np.nanmedian(panel.values[3, TRAIN_END:])
    assert median == pytest.approx(actual, rel=0.5)


@pytest.mark.parametrize("name", list(MODELS))
def test_the_same_seed_and_data_give_the_same_model_whatever_ran_before(name, panel):
    """The network's initial weights come from the model's seed, not from torch's state in the process (random
    at start, then moved by whatever drew from it): a backtest's trial fit, which decides the fallback and the
    intervals, came out differently in each process before."""
    import torch

    first = quick(name).fit(panel, TRAIN_END).predict(panel, origins_of(panel))
    torch.manual_seed(12345)
    torch.rand(1000)
    again = quick(name).fit(panel, TRAIN_END).predict(panel, origins_of(panel))
    np.testing.assert_array_equal(first, again)


def test_the_lstm_beats_the_historical_average_at_15_minutes_on_autocorrelated_deviations():
    panel = synthetic_panel(n_series=6, days=14, step_min=15, phi=0.9, seed=2)
    train_end, origins = 11 * 96, np.arange(11 * 96, 14 * 96)
    maes = {}
    for model in (LSTMForecaster((15,), seed=0, training={"epochs": 12, "patience": 4}), HistoricalAverage((15,))):
        maes[model.name] = score(panel, origins, model.fit(panel, train_end).predict(panel, origins), (15,))[0]["mae"]
    assert maes["lstm"] < 0.5 * maes["historical-average"], maes
