"""XGBoost and the fallback wrapper on synthetic series: no leakage, the files round trip, it learns what the
historical average cannot, and it hands the series it cannot beat back to the historical average."""

from __future__ import annotations

import json

import numpy as np
import pytest

from models import baselines
from models.baselines import HistoricalAverage, Persistence
from models.fallback import WithFallback, widened
from models.metrics import score
from models.panel import Panel
from models.xgboost_model import XGBoostForecaster
from tests.models_helpers import assert_no_leakage, synthetic_panel

HORIZONS = (30, 60, 120)


def small_xgboost(**options) -> XGBoostForecaster:
    return XGBoostForecaster(HORIZONS, seed=1, rounds=60, **options)


@pytest.fixture(scope="module")
def panel() -> Panel:
    return synthetic_panel(n_series=4, days=10, step_min=30, phi=0.8, seed=5)


@pytest.fixture(scope="module")
def fitted(panel) -> XGBoostForecaster:
    return small_xgboost().fit(panel, 8 * 48)


@pytest.mark.parametrize("model", [small_xgboost(), HistoricalAverage(HORIZONS), Persistence(HORIZONS)],
                         ids=lambda model: model.name)
def test_a_forecast_does_not_read_data_after_its_origin(model, panel):
    assert_no_leakage(model, panel, 8 * 48)


def test_the_files_rebuild_the_same_forecasts(fitted, panel):
    files = fitted.to_files()
    assert {"xgboost-30min.ubj", "profiles.json", "params.json"} <= set(files)
    loaded = XGBoostForecaster.load_files(files)
    origins = np.arange(8 * 48, panel.n_times)
    np.testing.assert_array_equal(loaded.predict(panel, origins), fitted.predict(panel, origins))
    assert loaded.info["feature_importance_gain"] == fitted.info["feature_importance_gain"]


def test_a_forecast_is_the_mean_of_its_bags_each_seeded_apart(fitted, panel):
    origins = np.arange(8 * 48, panel.n_times)
    files = fitted.to_files()
    assert fitted.bags == 3 and {f"xgboost-30min-{bag}.ubj" for bag in (1, 2)} <= set(files)
    singles = []
    for bag in range(fitted.bags):
        single = XGBoostForecaster.load_files(files)
        single.boosters = tuple((boosters[bag],) for boosters in single.boosters)
        singles.append(single.predict(panel, origins))
    assert not np.allclose(singles[0], singles[1])  # other seeds, other trees
    np.testing.assert_allclose(fitted.predict(panel, origins), np.mean(singles, axis=0), rtol=1e-5, atol=1e-4)


def test_a_model_saved_before_bagging_loads_with_its_one_booster_per_horizon(fitted, panel):
    files = {name: data for name, data in fitted.to_files().items() if "min-" not in name}
    params = json.loads(files["params.json"])
    del params["bags"]
    files["params.json"] = json.dumps(params).encode()
    loaded = XGBoostForecaster.load_files(files)
    assert loaded.bags == 1 and all(len(boosters) == 1 for boosters in loaded.boosters)
    assert np.isfinite(loaded.predict(panel, np.arange(8 * 48, panel.n_times))).all()


def test_forecasts_are_ordered_quantiles_and_the_card_names_the_top_features(fitted, panel):
    forecasts = fitted.predict(panel, np.arange(8 * 48, panel.n_times))
    assert forecasts.shape == (4, 2 * 48, 3, 3)
    assert np.isfinite(forecasts).all() and (np.diff(forecasts, axis=-1) >= 0).all()
    top = fitted.info["feature_importance_gain"]["30"]
    assert 1 <= len(top) <= 10 and all(name in fitted.info["features"] for name, _ in top)


def test_a_series_it_has_never_seen_is_forecast_at_its_own_level(fitted, panel):
    new = Panel(["new-sensor"], panel.start, panel.step_min, panel.values[2:3] * 3)
    forecasts = fitted.predict(new, np.arange(8 * 48, panel.n_times))
    assert np.isfinite(forecasts).all()
    assert np.median(forecasts[..., 1]) == pytest.approx(np.nanmedian(new.values[0, 8 * 48:]), rel=0.3)


def test_it_beats_the_historical_average_at_15_minutes_on_autocorrelated_deviations():
    panel = synthetic_panel(n_series=6, days=14, step_min=15, phi=0.9, seed=2)
    train_end, origins = 11 * 96, np.arange(11 * 96, 14 * 96)
    maes = {}
    for model in (XGBoostForecaster((15,), seed=0), HistoricalAverage((15,))):
        maes[model.name] = score(panel, origins, model.fit(panel, train_end).predict(panel, origins), (15,))[0]["mae"]
    assert maes["xgboost"] < 0.7 * maes["historical-average"], maes


def test_the_fallback_keeps_the_historical_average_for_noise_and_the_model_for_autocorrelated_series(monkeypatch):
    # the model's profiles as raw as the baseline's: on this smooth synthetic profile, smoothing them alone beats
    # the raw cells on pure noise (test_models_baselines), which is not what this test is about
    monkeypatch.setattr(baselines, "SMOOTHING_SLOTS", (0,))
    panel = synthetic_panel(n_series=8, days=35, step_min=30, phi=[0.8] * 4 + [0.0] * 4, seed=0)
    train_end = 26 * 48
    model = WithFallback(XGBoostForecaster(HORIZONS, seed=0)).fit(panel, train_end)
    report = model.info["fallback"]
    assert report["checked"] and report["series"] == ["s04", "s05", "s06", "s07"] and report["count"] == 4
    origins = np.arange(train_end, panel.n_times)
    forecasts = model.predict(panel, origins)
    historical = HistoricalAverage(HORIZONS).fit(panel, train_end).predict(panel, origins)
    # the kept historical average's P50, its interval calibrated on the held-out days like every series'
    np.testing.assert_array_equal(forecasts[4:, ..., 1], historical[4:, ..., 1])
    offsets = np.array([model.interval_offsets[series] for series in panel.series_ids])
    np.testing.assert_array_equal(forecasts[4:], widened(historical, offsets)[4:])
    assert not np.allclose(forecasts[:4], historical[:4])
    loaded = WithFallback.load_files(model.to_files())
    np.testing.assert_array_equal(loaded.predict(panel, origins), forecasts)
    assert loaded.info["fallback"] == report


def test_the_fallback_says_so_when_too_few_training_days_leave_none_to_hold_out(panel):
    model = WithFallback(Persistence(HORIZONS)).fit(panel, 3 * 48)
    assert model.info["fallback"]["checked"] is False and model.fallback_series == []
    origins = np.arange(3 * 48, 4 * 48)
    np.testing.assert_array_equal(model.predict(panel, origins),
                                  Persistence(HORIZONS).fit(panel, 3 * 48).predict(panel, origins))
