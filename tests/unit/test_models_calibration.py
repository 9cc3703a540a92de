"""The P10-P90 interval of a model run inside WithFallback is calibrated on held-out training days (split conformal):
an interval far too narrow comes out near its nominal 80 % coverage on later data, and the P50 does not move."""

from __future__ import annotations

import numpy as np

from models.baselines import Persistence
from models.fallback import INTERVAL_COVERAGE, MIN_CALIBRATION_PAIRS, WithFallback, conformal_offsets, widened
from models.metrics import actuals, score
from tests.models_helpers import synthetic_panel

HORIZONS = (30, 60)


class PointPersistence(Persistence):
    """Persistence with a zero-width interval: P10 = P50 = P90, the overconfident model calibration must mend."""

    name = "point-persistence"

    def predict(self, panel, origins):
        forecasts = super().predict(panel, origins)
        return np.repeat(forecasts[..., 1:2], 3, axis=-1)


def test_a_zero_width_interval_is_widened_to_about_its_nominal_coverage_and_the_p50_stays():
    panel = synthetic_panel(n_series=4, days=28, step_min=30, phi=0.97, sigma=0.2, seed=3)
    train_end = 20 * 48
    origins = np.arange(train_end, panel.n_times - 1)
    raw = PointPersistence(HORIZONS).fit(panel, train_end)
    model = WithFallback(PointPersistence(HORIZONS)).fit(panel, train_end)
    kept = [row for row, series in enumerate(panel.series_ids) if series not in model.fallback_series]
    assert len(kept) >= 2  # persistence beats the historical average on most of these series
    before, after = raw.predict(panel, origins), model.predict(panel, origins)
    np.testing.assert_array_equal(after[kept, ..., 1], before[kept, ..., 1])
    assert max(row["coverage"] for row in score(panel.subset(kept), origins, before[kept], HORIZONS)) < 0.1
    for row in score(panel, origins, after, HORIZONS):
        assert 0.7 <= row["coverage"] <= 0.9, row
    calibrated = model.info["fallback"]["calibrated"]
    assert calibrated["series"] == 4 and calibrated["holdout_coverage_before"] < 0.5
    assert calibrated["holdout_coverage_after"] >= INTERVAL_COVERAGE


def test_the_offsets_are_the_conformal_quantile_of_how_far_actuals_fall_outside():
    n = 99
    actual = np.zeros((1, n, 1))
    forecasts = np.zeros((1, n, 1, 3))
    forecasts[0, :, 0, 0], forecasts[0, :, 0, 2] = -1.0, 1.0
    actual[0, :, 0] = np.arange(1, n + 1) + 1.0  # each actual 1..99 above the P90
    offsets = conformal_offsets(actual, forecasts)
    # ceil((99 + 1) * 0.8) = 80: the 80th smallest score, 80
    assert offsets[0, 0] == 80.0
    covered = widened(forecasts, offsets)
    inside = (covered[..., 0] <= actual) & (actual <= covered[..., 2])
    assert inside.mean() >= INTERVAL_COVERAGE


def test_an_interval_too_wide_narrows_but_never_past_the_p50_and_too_few_pairs_leave_it_alone():
    few = MIN_CALIBRATION_PAIRS - 1
    actual = np.zeros((2, 200, 1))
    forecasts = np.zeros((2, 200, 1, 3))
    forecasts[..., 0], forecasts[..., 2] = -50.0, 50.0  # every actual 0, deep inside: scores all -50
    actual[1, few:] = np.nan  # the second series has too few pairs
    offsets = conformal_offsets(actual, forecasts)
    assert offsets[0, 0] == -50.0 and np.isnan(offsets[1, 0])
    narrowed = widened(forecasts, offsets)
    assert (narrowed[0, ..., 0] == 0).all() and (narrowed[0, ..., 2] == 0).all()  # at the P50, not past it
    np.testing.assert_array_equal(narrowed[1], forecasts[1])
