"""The anomaly detectors on simulated traffic: calibrated scores, one row per window, a jam flagged and normal
windows not, cold start for a series never seen, calibration, road classes, and the round trip through
to_files / the registry into a fresh process (the autoencoder loads and scores without torch)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.anomaly.autoencoder import AutoencoderDetector
from models.anomaly.base import (
    ALERT_THRESHOLD, SCORE_COLUMNS, Calibration, road_class, segment_road_classes, top_contributions,
)
from models.anomaly.isolation_forest import IsolationForestDetector
from models.anomaly.zscore import ZScoreDetector, streaming_flags
from models.panel import BadSeriesInput
from models.registry import Registry
from smartcity.backends.objects import open_objects
from smartcity.simulator.history import simulate_history

ROOT = Path(__file__).resolve().parents[2]
TIMEZONE = "Europe/Berlin"
DETECTORS = {"zscore": ZScoreDetector, "isolation-forest": IsolationForestDetector, "autoencoder": AutoencoderDetector}
SEGMENTS = 24


@pytest.fixture(scope="module")
def history() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Eight simulated days without incidents, some segments: seven days train, the last one is scored."""
    segments = simulate_history(8, end=datetime(2024, 3, 7, tzinfo=timezone.utc), seed=5, incidents_per_day=0).segments
    frame = segments.rename(columns={"segment_id": "series_id"})
    frame["road_class"] = frame["series_id"].map(segment_road_classes())
    keep = sorted(frame["series_id"].unique())[:SEGMENTS]
    frame = frame[frame["series_id"].isin(keep)][
        ["series_id", "window_start", "flow_per_hour", "mean_speed_kmh", "mean_occupancy", "road_class"]]
    cut = frame["window_start"].max().normalize()
    return frame[frame["window_start"] < cut].reset_index(drop=True), frame[frame["window_start"] >= cut]


@pytest.fixture(scope="module")
def fitted(history):
    train, _ = history
    return {name: cls(seed=1, timezone=TIMEZONE, **({"epochs": 4} if name == "autoencoder" else {})).fit(train)
            for name, cls in DETECTORS.items()}


def jammed(test: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """``test`` with a busy segment jammed for 30 minutes at midday (speed down to a fifth, occupancy x4,
    flow a third); the mask of the jammed rows."""
    frame = test.copy()
    busiest = frame.groupby("series_id")["flow_per_hour"].mean().idxmax()
    local = frame["window_start"].dt.tz_convert(TIMEZONE)
    rows = ((frame["series_id"] == busiest) & (local.dt.hour == 12) & (local.dt.minute < 30)).to_numpy()
    frame.loc[rows, "mean_speed_kmh"] /= 5
    frame.loc[rows, "mean_occupancy"] = np.minimum(frame.loc[rows, "mean_occupancy"] * 4, 0.9)
    frame.loc[rows, "flow_per_hour"] /= 3
    return frame, rows


@pytest.mark.parametrize("name", DETECTORS)
def test_scores_are_calibrated_one_row_per_window(fitted, history, name):
    _, test = history
    scores = fitted[name].score(test)
    assert list(scores.columns) == list(SCORE_COLUMNS) and scores.index.equals(test.index)
    assert scores["anomaly_score"].between(0, 1).all() and (scores["model"] == name).all()
    # the z-score falls back to the road class in an hour where a series had too few windows (no speed at night)
    assert (scores["basis"] == "series").mean() > (0.9 if name == "zscore" else 0.999)
    # no incident, no fault: few windows above the alert threshold (a simulated day has its own peak jams, which a
    # week of training knows only roughly; the z-score's same-hour baseline mixes weekends and weekdays)
    assert (scores["anomaly_score"] >= ALERT_THRESHOLD).mean() < (0.15 if name == "zscore" else 0.08)
    for weights in scores["contributions"]:
        assert len(weights) <= 3 and (not weights or abs(sum(weights.values()) - 1) < 0.01)


@pytest.mark.parametrize("name", ["isolation-forest", "autoencoder"])
def test_a_jam_scores_above_the_threshold(fitted, history, name):
    _, test = history
    frame, rows = jammed(test)
    scores = fitted[name].score(frame)["anomaly_score"].to_numpy()
    assert np.median(scores[rows]) >= ALERT_THRESHOLD
    assert np.median(scores[~rows]) < 0.9


def test_the_zscore_baseline_flags_the_jam_as_the_streaming_job_would(fitted, history):
    _, test = history
    frame, rows = jammed(test)
    detector = fitted["zscore"]
    assert streaming_flags(detector.robust_z(frame))[rows].all()
    assert detector.score(frame)["anomaly_score"].to_numpy()[rows].min() >= ALERT_THRESHOLD


@pytest.mark.parametrize("name", DETECTORS)
def test_cold_start_a_new_series_gets_its_road_class_or_the_global_model(fitted, history, name):
    _, test = history
    frame, rows = jammed(test)
    frame["series_id"] = "new-" + frame["series_id"]
    detector = fitted[name]
    by_class = detector.score(frame)
    assert (by_class["basis"] == "road-class").all()
    # from the first hour of the new sensor: only its first hour before the jam, and the jam
    busiest = frame.loc[rows, "series_id"].iloc[0]
    first = frame.loc[rows, "window_start"].min()
    fresh = frame[(frame["series_id"] == busiest) & (frame["window_start"] >= first - pd.Timedelta(hours=1))]
    flagged = detector.score(fresh)["anomaly_score"].to_numpy()[pd.Series(rows, frame.index)[fresh.index].to_numpy()]
    assert flagged.max() >= ALERT_THRESHOLD
    unknown = detector.score(frame.drop(columns="road_class"))
    assert (unknown["basis"] == "global").all()


@pytest.mark.parametrize("name", DETECTORS)
def test_round_trip_in_a_fresh_process_without_torch(fitted, history, tmp_path, name):
    _, test = history
    detector = fitted[name]
    registry = Registry(open_objects(f"file://{tmp_path}/objects"))
    version = registry.save(f"anomaly-{name}", detector, {"note": "test"})
    for file_name, data in registry.files(f"anomaly-{name}", version).items():
        (tmp_path / file_name).write_bytes(data)
    test.to_parquet(tmp_path / "frame.parquet")
    module, cls = type(detector).__module__, type(detector).__name__
    script = textwrap.dedent(f"""
        import json, sys
        from pathlib import Path
        import pandas as pd
        from {module} import {cls}
        folder = Path({str(tmp_path)!r})
        files = {{p.name: p.read_bytes() for p in folder.iterdir() if p.is_file() and p.name != "frame.parquet"}}
        scores = {cls}.load_files(files).score(pd.read_parquet(folder / "frame.parquet"))
        print(json.dumps({{"scores": scores["anomaly_score"].tolist(), "torch": "torch" in sys.modules}}))
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    # skops (the forest's format) imports all of scikit-learn, which imports torch where it is installed
    assert not loaded["torch"] or name == "isolation-forest"
    np.testing.assert_allclose(loaded["scores"], detector.score(test)["anomaly_score"], atol=1e-6)


def test_context_steps_are_enough_to_score_a_window_as_with_all_history(fitted, history):
    _, test = history
    detector = fitted["isolation-forest"]
    whole = detector.score(test)
    last = test["window_start"].max()
    context = test[test["window_start"] > last - pd.Timedelta(minutes=5 * (detector.context_steps() + 1))]
    np.testing.assert_allclose(detector.score(context)["anomaly_score"].to_numpy()[context["window_start"] == last],
                               whole["anomaly_score"].to_numpy()[test["window_start"] == last], atol=1e-9)


def test_a_frame_without_a_metric_names_it(fitted, history):
    _, test = history
    with pytest.raises(BadSeriesInput) as error:
        fitted["zscore"].score(test.drop(columns="mean_occupancy"))
    assert error.value.field == "mean_occupancy"


def test_calibration_is_the_training_cdf_with_a_tail():
    raw = np.random.default_rng(0).normal(size=10_000)
    calibration = Calibration.fit(raw)
    scores = calibration(np.array([-10, 0, np.quantile(raw, 0.99), raw.max(), raw.max() + 1, raw.max() + 5]))
    assert scores[0] == 0 and abs(scores[1] - 0.5) < 0.02 and abs(scores[2] - 0.99) < 0.002
    assert np.all(np.diff(scores) > 0) and scores[-1] < 1.0 + 1e-12
    again = Calibration.from_json(json.loads(json.dumps(calibration.to_json())))
    np.testing.assert_array_equal(again(raw[:50]), calibration(raw[:50]))


def test_top_contributions_keep_the_three_heaviest_normalised():
    weights = top_contributions(np.array([[1.0, 0, 3, 4, 2], [0, 0, 0, 0, 0]]), list("abcde"))
    assert weights[0] == {"d": 0.444, "c": 0.333, "e": 0.222} and weights[1] == {}


def test_road_classes_from_segment_fields():
    assert road_class(priority=4, lanes=1, speed=30 / 3.6) == "local"
    assert road_class(priority=4, lanes=1, speed=50 / 3.6) == "collector"
    assert road_class(priority=6, lanes=2, speed=50 / 3.6) == "arterial"
    assert road_class(priority=9, lanes=1, speed=50 / 3.6) == "arterial"
    assert road_class(priority=13, lanes=3, speed=100 / 3.6) == "highway"
    assert set(segment_road_classes().values()) <= {"local", "collector", "arterial", "highway"}
