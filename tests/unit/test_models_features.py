"""The tree models' features: one column per name, causal, on one scale for every series, neighbours and
covariates by name, and the target the forecast turns back into a value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.baselines import Profiles
from models.features import FeatureSpec, PanelFeatures, neighbour_mean, rolling_mean_std
from models.panel import Panel
from tests.models_helpers import altered_after, synthetic_panel

TRAIN_END = 7 * 48


def features_of(panel: Panel, context_end: int = TRAIN_END) -> tuple[PanelFeatures, FeatureSpec]:
    profiles = Profiles.fit(panel, TRAIN_END)
    spec = FeatureSpec.for_panel(panel)
    return PanelFeatures(panel, profiles, spec, context_end, max_horizon=4), spec


@pytest.fixture(scope="module")
def panel() -> Panel:
    return synthetic_panel(n_series=4, days=10, step_min=30, seed=3)


def test_the_matrix_has_one_named_column_per_feature_and_one_row_per_series_and_origin(panel):
    features, spec = features_of(panel)
    origins = np.array([TRAIN_END, TRAIN_END + 5, TRAIN_END + 9])
    matrix = features.at(origins, 2)
    assert matrix.shape == (panel.n_series * len(origins), len(spec.names()))
    assert len(set(spec.names())) == len(spec.names())
    names = spec.names()
    # series-major rows: row 1 is series 0 at the second origin, row 3 series 1 at the first
    level = features.level[:, 0]
    assert matrix[1, names.index("value_lag_0min")] == pytest.approx(panel.values[0, origins[1]] / level[0])
    assert matrix[3, names.index("value_lag_30min")] == pytest.approx(panel.values[1, origins[0] - 1] / level[1])
    assert "upstream_value" not in names  # a panel without a road network has no neighbour columns


def test_features_at_an_origin_read_nothing_after_it(panel):
    for origin in (TRAIN_END, TRAIN_END + 20):
        before = features_of(panel)[0].at(np.array([origin]), 3)
        after = features_of(altered_after(panel, origin))[0].at(np.array([origin]), 3)
        np.testing.assert_array_equal(before, after)


def test_the_target_is_the_normalised_residual_from_the_historical_average(panel):
    features, _ = features_of(panel)
    origins = np.array([TRAIN_END + 1, TRAIN_END + 2])
    ha = Profiles.fit(panel, TRAIN_END).expected(panel, origins + 2)
    expected = (panel.values[:, origins + 2] - ha) / features.level
    np.testing.assert_allclose(features.target(origins, 2).reshape(panel.n_series, -1), expected)
    residuals = features.target(origins, 2)[:, None].repeat(3, axis=1)
    np.testing.assert_allclose(features.to_values(residuals, origins, 2)[..., 1], panel.values[:, origins + 2])


def test_a_series_ten_times_larger_gets_the_same_features_but_its_level(panel):
    scaled = Panel(["big"], panel.start, panel.step_min, panel.values[:1] * 10)
    small, spec = features_of(panel.subset([0]))
    large, _ = features_of(scaled)
    origins = np.arange(TRAIN_END, TRAIN_END + 10)
    level = spec.names().index("log_level")
    a, b = small.at(origins, 1), large.at(origins, 1)
    np.testing.assert_allclose(np.delete(a, level, axis=1), np.delete(b, level, axis=1), rtol=1e-5)
    assert b[0, level] == pytest.approx(a[0, level] + np.log(10), rel=1e-5)


def test_neighbours_and_covariates_by_name(panel):
    rain = np.tile(np.arange(panel.n_times, dtype=float), (panel.n_series, 1))
    networked = Panel(panel.series_ids, panel.start, panel.step_min, panel.values, exog={"rain_mm_h": rain},
                      upstream=[[1, 2], [], [], []], downstream=[[], [0], [0], []])
    features, spec = features_of(networked)
    names, origin = spec.names(), TRAIN_END + 3
    row = features.at(np.array([origin]), 1)
    upstream = np.nanmean(panel.values[[1, 2], origin] / features.level[[1, 2], 0])
    assert row[0, names.index("upstream_value")] == pytest.approx(upstream, rel=1e-5)
    assert np.isnan(row[3, names.index("upstream_value")])  # no neighbour
    assert row[0, names.index("rain_mm_h")] == origin
    assert row[0, names.index("rain_mm_h_mean_60min")] == origin - 0.5
    # a panel without the network or the covariate (serving a CSV) gets the same columns, unknown
    bare = PanelFeatures(panel, Profiles.fit(panel, TRAIN_END), spec, TRAIN_END, 1).at(np.array([origin]), 1)
    assert bare.shape == row.shape
    assert np.isnan(bare[:, names.index("rain_mm_h")]).all()
    assert np.isnan(bare[:, names.index("downstream_value")]).all()


def test_rolling_statistics_are_causal_and_skip_gaps():
    values = np.array([[1.0, np.nan, 3.0, 4.0, np.nan, np.nan, 10.0]])
    mean, std = rolling_mean_std(values, 3)
    expected = pd.Series(values[0]).rolling(3, min_periods=1)
    np.testing.assert_allclose(mean[0], expected.mean().to_numpy())
    np.testing.assert_allclose(std[0], expected.std(ddof=0).where(expected.count() > 1).to_numpy())


def test_neighbour_mean_averages_the_values_present():
    values = np.array([[1.0, 2.0], [3.0, np.nan], [5.0, 6.0]])
    means = neighbour_mean(values, [[1, 2], [], [1]])
    np.testing.assert_allclose(means, [[4.0, 6.0], [np.nan, np.nan], [3.0, np.nan]])
