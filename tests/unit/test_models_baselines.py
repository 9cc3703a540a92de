"""The learned models' anchor: their profiles smoothed over neighbouring slots where held-out training days show
it pays; the profiles themselves, the historical average they issue beside them, are not."""

from __future__ import annotations

import numpy as np

from models.baselines import HistoricalAverage, Profiles, smoothing_width
from models.panel import Panel
from tests.models_helpers import altered_after, synthetic_panel


def mae_on(profiles: Profiles, panel: Panel, start: int) -> float:
    steps = np.arange(start, panel.n_times)
    return float(np.nanmean(np.abs(profiles.expected(panel, steps) - panel.values[:, start:])))


def test_noisy_five_minute_cells_are_smoothed_and_then_err_less_on_later_days():
    panel = synthetic_panel(n_series=4, days=21, step_min=5, phi=0.0, sigma=0.3, seed=2)
    train_end = 14 * 288
    profiles, raw = Profiles.fit_smoothed(panel, train_end), Profiles.fit(panel, train_end)
    assert profiles.smoothing_slots == smoothing_width(panel, train_end) > 0
    assert mae_on(profiles.anchor(), panel, train_end) < 0.97 * mae_on(raw, panel, train_end)
    np.testing.assert_array_equal(profiles.mean, raw.mean)  # the historical average stays as it is
    assert np.allclose(profiles.anchor().level, raw.level)  # the series' scale does not move


def test_a_profile_whose_neighbouring_slots_truly_differ_is_left_as_it_is():
    panel = synthetic_panel(n_series=3, days=14, step_min=5, phi=0.0, sigma=0.0)
    values = panel.values * (1 + 0.5 * (-1.0) ** np.arange(panel.n_times))  # every other slot half again
    sawtooth = Panel(panel.series_ids, panel.start, panel.step_min, values)
    profiles = Profiles.fit_smoothed(sawtooth, 10 * 288)
    assert profiles.smoothing_slots == 0 and profiles.anchor() is profiles


def test_hourly_cells_are_never_smoothed_nor_is_the_historical_average_baseline():
    hourly = synthetic_panel(n_series=3, days=21, step_min=60, phi=0.0, sigma=0.5)
    assert smoothing_width(hourly, 14 * 24) == 0  # the narrowest smoothing would reach an hour each side
    noisy = synthetic_panel(n_series=3, days=21, step_min=5, phi=0.0, sigma=0.3)
    assert HistoricalAverage((15,)).fit(noisy, 14 * 288).profiles.smoothing_slots == 0


def test_the_smoothing_reads_only_the_training_part():
    panel = synthetic_panel(n_series=3, days=21, step_min=5, phi=0.0, sigma=0.3, seed=4)
    train_end = 14 * 288
    before, after = (Profiles.fit_smoothed(p, train_end) for p in (panel, altered_after(panel, train_end - 1)))
    assert before.smoothing_slots == after.smoothing_slots
    np.testing.assert_array_equal(before.anchor().mean, after.anchor().mean)


def test_the_smoothing_goes_round_in_the_profiles_file():
    panel = synthetic_panel(n_series=2, days=21, step_min=5, phi=0.0, sigma=0.3)
    profiles = Profiles.fit_smoothed(panel, 14 * 288)
    again = Profiles.from_json(profiles.to_json())
    assert again.smoothing_slots == profiles.smoothing_slots > 0
    np.testing.assert_allclose(again.anchor().mean, profiles.anchor().mean)
    assert not np.allclose(again.mean, again.anchor().mean)
    written_before = {key: value for key, value in profiles.to_json().items() if key != "smoothing_slots"}
    assert Profiles.from_json(written_before).smoothing_slots == 0


def test_profiles_without_a_known_series_go_round_in_the_profiles_file():
    panel = synthetic_panel(n_series=2, days=3, step_min=15, phi=0.0, sigma=0.3)
    panel.values[:, :96] = np.nan  # no value in the training day: no series is known
    profiles = Profiles.fit(panel, 96)
    again = Profiles.from_json(profiles.to_json())
    assert again.series_ids == [] and again.mean.shape == (0, 2, 96)
    assert again.scales(panel, 97).tolist() == profiles.scales(panel, 97).tolist()
