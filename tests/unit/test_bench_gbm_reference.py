"""The backtest bench's gradient-boosting reference (bench/gbm_reference.py): it forecasts each origin from what was
known then, beats the baselines on series with persistent deviations, and is scored on the pairs the backtest's
own forecasts share with it."""

from __future__ import annotations

import dataclasses
import sys

import numpy as np

from models.backtest import read_series_csv, train_end_of
from smartcity.settings import PROJECT_ROOT
from tests.models_helpers import panel_frame, synthetic_panel
from tests.unit.test_models_backtest import run

sys.path.insert(0, str(PROJECT_ROOT / "bench"))
from gbm_reference import mae_beside_reference, reference_forecasts  # noqa: E402

HORIZONS = [60, 120]


def series_file(tmp_path):
    panel = synthetic_panel(n_series=3, days=21, step_min=60, phi=0.9, seed=3)
    panel_frame(panel).to_csv(tmp_path / "series.csv", index=False)
    data = read_series_csv(tmp_path / "series.csv", None)
    return data, train_end_of(data.panel, HORIZONS, 0.7)


def test_a_forecast_does_not_change_when_the_values_after_its_origin_do(tmp_path):
    data, train_end = series_file(tmp_path)
    origin = train_end + 24
    altered = data.panel.values.copy()
    altered[:, origin + 1:] *= 3
    changed = dataclasses.replace(data, panel=dataclasses.replace(data.panel, values=altered))
    before, after = (reference_forecasts(d, train_end, HORIZONS) for d in (data, changed))
    at = lambda forecasts, step: forecasts.query(f"step == {step}")["reference"].to_numpy()
    assert np.allclose(at(before, origin), at(after, origin))
    assert not np.allclose(at(before, origin + 1), at(after, origin + 1))  # the next origin reads the change


def test_it_is_scored_beside_the_backtests_forecasts_on_the_pairs_both_have(tmp_path):
    data, train_end = series_file(tmp_path)
    out = tmp_path / "forecasts.csv"
    result = run("--input", str(tmp_path / "series.csv"), "--horizons", "60,120",
                 "--model", "historical-average,persistence", "--out", str(out))
    assert result.exit_code == 0, result.output
    table, pairs = mae_beside_reference(data, train_end, out, HORIZONS)
    assert set(table.index) == {"reference", "historical-average", "persistence"}
    assert list(table.columns) == HORIZONS and (pairs > 100).all()
    assert (table.loc["reference"] < table.loc["historical-average"]).all()  # AR(0.9) deviations: the past tells
