"""forecast-traffic, loaded through the real loader over embedded stores: it forecasts from the promoted model
beside the historical average, picks up a newly promoted version without a restart, and scores each forecast
once its window has closed."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from cloudevents.core.v1.event import CloudEvent

from models import baselines
from models.baselines import HistoricalAverage, Persistence
from models.xgboost_model import XGBoostForecaster
from models.registry import Registry
from models.schedule import TrainingSchedule
from models.training import TrainingOptions
from smartcity.events import city
from smartcity.events.derived import TRAFFIC_WINDOWS
from smartcity.runtime.loader import load_stack
from smartcity.runtime.runner import FunctionRunner
from smartcity.storage.prepare import prepare_storage
from tests.fixtures.functions.helpers import embedded_settings
from tests.models_helpers import synthetic_panel
from tests.models_storage import store_segment_panel

STACK = Path(__file__).resolve().parents[2] / "stack.yml"
SEGMENTS = [f"urn:ngsi-ld:RoadSegment:fc{i}" for i in range(3)]
START = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a Monday
DAYS = 8


def window_event(segment: str, start: datetime, speed: float) -> CloudEvent:
    data = {"sensor_id": segment.replace("RoadSegment", "TrafficFlowObserved"), "segment_id": segment,
            "zone_id": "Z11", "lane_id": 0, "lon": 6.95, "lat": 50.97, "window_start": start.isoformat(),
            "window_end": (start + timedelta(minutes=5)).isoformat(), "flow_per_hour": 600.0,
            "mean_speed_kmh": speed, "mean_occupancy": 0.2, "congestion_index": 0.3}
    # a fresh id: the runner drops an event whose (source, id) it has seen, and memory:// outlives a test
    return CloudEvent({"type": TRAFFIC_WINDOWS.ce_type, "source": "/tests", "id": uuid.uuid4().hex}, data)


@pytest.fixture
def setup(tmp_path):
    settings = embedded_settings(tmp_path, forecast_reload_s=0)
    prepare_storage(settings)
    [function] = load_stack(STACK, settings, ["forecast-traffic"])
    panel = synthetic_panel(n_series=len(SEGMENTS), days=DAYS, step_min=5, seed=4, start=START.isoformat())
    panel.series_ids, panel.timezone = SEGMENTS, city().timezone  # as the training loader reads them
    # the last segment is pure noise around a constant: no learned model beats its historical average
    panel.values[-1] = np.random.default_rng(4).normal(50, 15, panel.n_times).clip(0)
    store_segment_panel(function.context.database, panel)
    return function, panel


def test_a_scheduled_training_run_is_picked_up_by_the_function(setup, monkeypatch):
    function, panel = setup
    # the model's anchor unsmoothed: smoothed, it beats the noise segment's raw historical average (its cells hold
    # 8 days of noise), and this test is about the fallback reaching the function
    monkeypatch.setattr(baselines, "SMOOTHING_SLOTS", (0,))
    schedule = TrainingSchedule(function.context.settings, TrainingOptions(models=("xgboost",), days=DAYS,
                                                                          holdout_days=1, seed=1), poll_s=0.1)
    schedule.run_once()
    [result] = schedule.results
    assert result.promoted == result.versions["xgboost"], result.decision
    card = Registry(function.context.objects).card("segment-speed", result.promoted)
    assert card["model"] == "xgboost" and card["params"]["model"] == "xgboost"
    fallback = card["fallback"]  # trained inside WithFallback: the noise segment falls back, every one is calibrated
    assert fallback["series"] == [SEGMENTS[-1]] and fallback["count"] == 1 and fallback["of"] == len(SEGMENTS)
    assert fallback["calibrated"]["series"] == len(SEGMENTS) and set(fallback["holdout_mae"]) == {
        "xgboost", "historical-average"}
    runner = FunctionRunner(function)
    origin = START + timedelta(minutes=5 * (panel.n_times - 1))
    published = [event.get_data() for event in
                 runner.run([runner.typed(window_event(segment, origin, 0.0)) for segment in SEGMENTS[1:]])]
    assert {(data["model"], data["model_version"]) for data in published} == {
        ("xgboost", result.promoted), ("historical-average", result.promoted)}
    p50 = {(data["entity_id"], data["model"], data["horizon_min"]): data["p50"] for data in published}
    for horizon in (15, 30, 60):  # the served model gives the historical average's P50 where it falls back
        assert p50[SEGMENTS[-1], "xgboost", horizon] == p50[SEGMENTS[-1], "historical-average", horizon]
    assert any(p50[SEGMENTS[1], "xgboost", h] != p50[SEGMENTS[1], "historical-average", h] for h in (15, 30, 60))


def promote(function, model) -> str:
    registry = Registry(function.context.objects)
    version = registry.save("segment-speed", model, {"note": "handler test"})
    registry.promote("segment-speed", version)
    return version


def test_forecasts_from_the_promoted_model_beside_the_historical_average(setup):
    function, panel = setup
    train_end = panel.n_times - 12
    model = XGBoostForecaster(seed=1).fit(panel, train_end)
    version = promote(function, model)
    runner = FunctionRunner(function)
    origin = START + timedelta(minutes=5 * (panel.n_times - 1))

    published = runner.run([runner.typed(window_event(s, origin, 0.0)) for s in SEGMENTS])

    rows = function.context.database.query(
        "SELECT * FROM traffic_forecasts ORDER BY entity_id, model, horizon_min")
    assert {(r["entity_id"], r["model"], r["horizon_min"]) for r in rows} == {
        (s, m, h) for s in SEGMENTS for m in ("xgboost", "historical-average") for h in (15, 30, 60)}
    expected = model.predict(panel, np.array([panel.n_times - 1]))
    xgb = [r for r in rows if r["model"] == "xgboost" and r["horizon_min"] == 30]
    assert [r["p50"] for r in xgb] == pytest.approx(np.round(expected[:, 0, 1, 1], 3), abs=2e-3)
    assert all(r["model_version"] == version and r["p10"] <= r["p50"] <= r["p90"] for r in rows)
    expected_ha = HistoricalAverage().fit(panel, train_end).predict(panel, np.array([panel.n_times - 1]))
    ha = [r for r in rows if r["model"] == "historical-average" and r["horizon_min"] == 60]
    assert [r["p50"] for r in ha] == pytest.approx(np.round(expected_ha[:, 0, 2, 1], 3))
    assert len(published) == len(rows)


def test_a_new_promotion_is_served_without_a_restart_and_actuals_are_scored(setup):
    function, panel = setup
    train_end = panel.n_times - 24
    promote(function, XGBoostForecaster(seed=1).fit(panel, train_end))
    runner = FunctionRunner(function)
    origin = START + timedelta(minutes=5 * (panel.n_times - 4))
    runner.run([runner.typed(window_event(SEGMENTS[0], origin, 0.0))])

    version = promote(function, Persistence().fit(panel, train_end))
    # the window 15 minutes later closes: the first forecasts are scored, the next come from the new version
    later = origin + timedelta(minutes=15)
    runner.run([runner.typed(window_event(SEGMENTS[0], later, 0.0))])

    database = function.context.database
    scored = database.query("SELECT model, horizon_min, actual, abs_error, p50 FROM traffic_forecasts "
                            "WHERE abs_error IS NOT NULL ORDER BY model")
    assert [(r["model"], r["horizon_min"]) for r in scored] == [("historical-average", 15), ("xgboost", 15)]
    actual = panel.values[0, panel.n_times - 1]
    assert all(r["actual"] == pytest.approx(actual) and r["abs_error"] == pytest.approx(abs(r["p50"] - actual))
               for r in scored)
    newest = database.query("SELECT DISTINCT model_version FROM traffic_forecasts WHERE origin = :o",
                            {"o": later})
    assert [r["model_version"] for r in newest] == [version]


def test_nothing_is_forecast_before_a_model_is_promoted(setup):
    function, panel = setup
    runner = FunctionRunner(function)
    origin = START + timedelta(minutes=5 * (panel.n_times - 1))
    assert runner.run([runner.typed(window_event(SEGMENTS[0], origin, 30.0))]) == []
    assert function.context.database.query("SELECT count(*) AS n FROM traffic_forecasts")[0]["n"] == 0
