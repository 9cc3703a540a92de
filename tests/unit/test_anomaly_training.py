"""Anomaly training over stored windows (SQLite): detectors evaluated beside the z-score on a holdout, saved with
their cards, promoted by the documented rule; ``smartcity models train-anomaly`` and its errors (exit code 2)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from models.anomaly.base import Detector, json_file, read_json_file, scores_frame
from models.anomaly.catalog import DETECTORS, AnomalyRegistry
from models.anomaly.training import MAX_FALSE_ALARM_FACTOR, AnomalyTrainingOptions, evaluate, train_detectors
from models.training import TrainingError
from smartcity.backends.database import open_database
from smartcity.backends.objects import open_objects
from smartcity.cli import app
from smartcity.events import Alert, Location
from smartcity.storage.envelope import StoredEvent
from smartcity.storage.migrate import migrate
from smartcity.storage.timeseries import TimeSeriesWriter
from smartcity.storage.upsert import upsert

SENSORS = [f"urn:ngsi-ld:TrafficFlowObserved:at{i}" for i in range(4)]
SEGMENTS = [f"urn:ngsi-ld:RoadSegment:at{i}" for i in range(4)]
START = datetime(2026, 3, 2, tzinfo=timezone.utc)
DAYS = 5
END = START + timedelta(days=DAYS)
INCIDENT = (END - timedelta(hours=10), END - timedelta(hours=9))  # in the last (holdout) day, on sensor 0's segment


def store(database, with_incident: bool) -> None:
    rng = np.random.default_rng(5)
    rows = []
    for number, (sensor, segment) in enumerate(zip(SENSORS, SEGMENTS)):
        for step in range(DAYS * 288):
            start = START + timedelta(minutes=5 * step)
            phase = np.sin(2 * np.pi * (step % 288) / 288)
            jammed = with_incident and number == 0 and INCIDENT[0] <= start < INCIDENT[1]
            rows.append({"sensor_id": sensor, "window_start": start, "window_end": start + timedelta(minutes=5),
                         "segment_id": segment, "zone_id": "Z22", "lane_id": 0, "lon": 6.957, "lat": 50.969,
                         "event_count": 60, "flow": 50, "flow_per_hour": 600 + 150 * phase + rng.normal(0, 25),
                         "mean_speed_kmh": 5.0 if jammed else 45 + 5 * phase + rng.normal(0, 1.5),
                         "mean_occupancy": 0.8 if jammed else 0.2 + rng.normal(0, 0.01),
                         "speed_p50_kmh": None, "speed_p85_kmh": None, "speed_p95_kmh": None,
                         "congestion_index": 0.2, "last_event_at": start, "updated_at": start})
    upsert(database, "traffic_sensor_5min", rows, key=("sensor_id", "window_start"))
    if with_incident:
        alert = Alert(id="urn:ngsi-ld:Alert:at-crash", dateObserved=INCIDENT[0], category="traffic",
                      subCategory="carAccident", severity="high", status="active", description="crash",
                      location=Location.at(6.957, 50.969), zone="Z22", refRoadSegment=SEGMENTS[0],
                      dateIssued=INCIDENT[0], validFrom=INCIDENT[0], validTo=INCIDENT[1], alertSource="operator")
        TimeSeriesWriter(database).write([StoredEvent("incidents", "at-crash", "/tests", alert)])


@pytest.fixture
def stores(tmp_path):
    database = open_database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    migrate(database)
    objects = open_objects(f"file://{tmp_path / 'objects'}")
    yield database, AnomalyRegistry(objects), tmp_path
    database.close()
    objects.close()


OPTIONS = AnomalyTrainingOptions(detectors=("isolation-forest",), days=DAYS, holdout_days=1, seed=1)


def test_a_first_detector_is_saved_with_its_card_and_promoted(stores):
    database, registry, _ = stores
    store(database, with_incident=False)
    result = train_detectors(database, registry, OPTIONS)
    version = result.versions["isolation-forest"]
    assert result.promoted == version == registry.promoted_version("anomaly-sensor")
    assert "first detector" in result.decision
    card = registry.card("anomaly-sensor", version)
    assert card["evaluation"]["windows"] == len(SENSORS) * 288 and card["evaluation"]["incident_recall"] is None
    assert card["baselines"]["zscore"]["flag_rate"] is not None and card["data"]["series"] == len(SENSORS)
    assert card["evaluation"]["flag_rate"] < 0.05  # calibrated: about 1 % of normal windows
    loaded = registry.load("anomaly-sensor", version)
    assert loaded.name == "isolation-forest"

    again = train_detectors(database, registry, OPTIONS)  # a holdout without incidents cannot rank them
    assert again.promoted is None and "no reported incident" in again.decision


class SpeedThreshold(Detector):
    """A detector for the promotion rule's tests: flags every window slower than ``below`` km/h, nothing else."""

    name = "speed-threshold"

    def __init__(self, seed: int = 0, below: float = 10.0) -> None:
        super().__init__(seed)
        self.below = below

    def fit(self, frame: pd.DataFrame) -> SpeedThreshold:
        return self

    def score(self, frame: pd.DataFrame) -> pd.DataFrame:
        slow = (frame["mean_speed_kmh"] < self.below).to_numpy()
        return scores_frame(frame, np.where(slow, 1.0, 0.5), self.name, ["series"] * len(frame), [{}] * len(frame))

    def to_files(self) -> dict[str, bytes]:
        return {"params.json": json_file({"below": self.below})}

    @classmethod
    def load_files(cls, files: dict[str, bytes]) -> SpeedThreshold:
        return cls(below=read_json_file(files, "params.json")["below"])


class FlagsEverything(SpeedThreshold):
    name = "flags-everything"

    def __init__(self, seed: int = 0, below: float = 1000.0) -> None:
        super().__init__(seed, below)


@pytest.fixture
def with_test_detectors(monkeypatch):
    monkeypatch.setitem(DETECTORS, "speed-threshold", f"{__name__}:SpeedThreshold")
    monkeypatch.setitem(DETECTORS, "flags-everything", f"{__name__}:FlagsEverything")


def test_incident_windows_rank_a_detector_against_the_z_score_and_the_promoted_one(stores, with_test_detectors):
    database, registry, _ = stores
    store(database, with_incident=True)
    options = replace(OPTIONS, detectors=("speed-threshold",))
    result = train_detectors(database, registry, options)
    perfect, zscore = result.evaluation["speed-threshold"], result.evaluation["zscore"]
    assert perfect["incident_windows"] == zscore["incident_windows"] == 12
    assert (perfect["incident_recall"], perfect["false_alarm_rate"], perfect["separation"]) == (1.0, 0.0, 1.0)
    assert zscore["separation"] < 1.0
    assert result.promoted == result.versions["speed-threshold"] and "separation 1.000 (z-score: 0.9" in result.decision

    again = train_detectors(database, registry, options)  # as good as the promoted one: no promotion
    assert again.promoted is None and f"promoted speed-threshold {result.promoted}" in again.decision
    assert again.evaluation["promoted speed-threshold"]["separation"] == 1.0



def test_a_detector_that_flags_too_much_is_not_promoted(stores, with_test_detectors):
    database, registry, _ = stores
    store(database, with_incident=True)
    result = train_detectors(database, registry, replace(OPTIONS, detectors=("flags-everything",)))
    assert result.evaluation["flags-everything"]["false_alarm_rate"] == 1.0
    limit = MAX_FALSE_ALARM_FACTOR * (1 - OPTIONS.threshold)
    assert result.promoted is None and f"flags more than {limit:.1%}" in result.decision


def test_evaluation_scores_each_holdout_window_from_its_own_context(stores):
    from models.anomaly.history import load_frame
    from models.anomaly.zscore import ZScoreDetector

    database, _, _ = stores
    store(database, with_incident=False)
    frame = load_frame(database, "anomaly-sensor", START, END)
    holdout = frame["window_start"] >= END - timedelta(days=1)
    detector = ZScoreDetector().fit(frame[~holdout])
    figures = evaluate(detector, frame, holdout, np.zeros(int(holdout.sum()), dtype=bool), 0.99)
    assert figures["windows"] == int(holdout.sum()) and figures["incident_windows"] == 0
    assert figures["false_alarm_rate"] == figures["flag_rate"] and figures["separation"] is None


def test_too_little_history_is_an_error(stores):
    database, registry, _ = stores
    with pytest.raises(TrainingError, match="no stored history"):
        train_detectors(database, registry, OPTIONS)
    store(database, with_incident=False)
    with pytest.raises(TrainingError, match="too little history"):
        train_detectors(database, registry, AnomalyTrainingOptions(days=30, holdout_days=10))


def test_the_command_trains_and_refuses_bad_flags_with_exit_code_2(stores, monkeypatch):
    database, _, directory = stores
    store(database, with_incident=False)
    urls = ["--database-url", f"sqlite:///{directory / 'db.sqlite'}", "--objects-url", f"file://{directory / 'objects'}"]
    runner = CliRunner()
    trained = runner.invoke(app, ["models", "train-anomaly", "--detectors", "isolation-forest", "--days", "5",
                                  "--holdout-days", "1", *urls])
    assert trained.exit_code == 0, trained.output
    assert "promoted isolation-forest" in trained.output
    unknown = runner.invoke(app, ["models", "train-anomaly", "--detectors", "prophet", *urls])
    assert unknown.exit_code == 2 and "--detectors" in unknown.output and "isolation-forest" in unknown.output
    target = runner.invoke(app, ["models", "train-anomaly", "--target", "anomaly-zone", *urls])
    assert target.exit_code == 2 and "--target" in target.output
    short = runner.invoke(app, ["models", "train-anomaly", "--days", "40", "--holdout-days", "5", *urls])
    assert short.exit_code == 2 and "too little history" in short.output
