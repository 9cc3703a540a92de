"""detect-anomalies, loaded through the real loader over embedded stores: an anomalous window is published on
incidents as an Alert (score, model@version, contributions) and a normal one is not; every score is stored; a new
promotion serves without a restart; the Alert goes the incident flow's way (store functions, /v1/incidents)."""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from cloudevents.core.v1.event import CloudEvent

from models.anomaly.base import ALERT_THRESHOLD
from models.anomaly.catalog import AnomalyRegistry
from models.anomaly.history import load_frame
from models.anomaly.isolation_forest import IsolationForestDetector
from models.anomaly.zscore import ZScoreDetector
from tests.api_samples.gateway import sample_settings
from smartcity.events import Alert, stream_for_topic
from smartcity.events.derived import TRAFFIC_WINDOWS
from smartcity.runtime.loader import load_stack
from smartcity.runtime.runner import FunctionRunner
from smartcity.storage.prepare import prepare_storage
from smartcity.storage.upsert import upsert

STACK = Path(__file__).resolve().parents[2] / "stack.yml"
SENSORS = [f"urn:ngsi-ld:TrafficFlowObserved:da{i}" for i in range(3)]
SEGMENT = "urn:ngsi-ld:RoadSegment:da"
START = datetime(2026, 3, 2, tzinfo=timezone.utc)  # a Monday
DAYS = 8
STEPS = DAYS * 288
NOW = START + timedelta(minutes=5 * STEPS)  # the first window after the stored history
TARGET = "anomaly-sensor"


def usual(step: int, sensor: int, rng: np.random.Generator) -> dict:
    """A quiet window: a daily speed and flow cycle, small noise."""
    phase = np.sin(2 * np.pi * (step % 288) / 288)
    return {"mean_speed_kmh": 45 + 5 * phase + sensor + rng.normal(0, 1.5),
            "flow_per_hour": 600 + 200 * phase + rng.normal(0, 30), "mean_occupancy": 0.2 + rng.normal(0, 0.01)}


def store_history(database) -> None:
    rng = np.random.default_rng(3)
    rows = []
    for sensor_number, sensor in enumerate(SENSORS):
        for step in range(STEPS):
            start = START + timedelta(minutes=5 * step)
            rows.append({"sensor_id": sensor, "window_start": start, "window_end": start + timedelta(minutes=5),
                         "segment_id": SEGMENT, "zone_id": "Z22", "lane_id": sensor_number, "lon": 6.957,
                         "lat": 50.969, "event_count": 60, "flow": 50, **usual(step, sensor_number, rng),
                         "speed_p50_kmh": None, "speed_p85_kmh": None, "speed_p95_kmh": None,
                         "congestion_index": 0.2, "last_event_at": start + timedelta(minutes=5), "updated_at": start})
    upsert(database, "traffic_sensor_5min", rows, key=("sensor_id", "window_start"))


def window_event(sensor: str, start: datetime, speed: float, occupancy: float) -> CloudEvent:
    data = {"sensor_id": sensor, "segment_id": SEGMENT, "zone_id": "Z22", "lane_id": SENSORS.index(sensor),
            "lon": 6.957, "lat": 50.969, "window_start": start.isoformat(),
            "window_end": (start + timedelta(minutes=5)).isoformat(), "flow_per_hour": 600.0,
            "mean_speed_kmh": speed, "mean_occupancy": occupancy, "congestion_index": 0.3}
    return CloudEvent({"type": TRAFFIC_WINDOWS.ce_type, "source": "/tests", "id": uuid.uuid4().hex}, data)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    settings = sample_settings(tmp_path_factory.mktemp("detect-anomalies"), anomaly_reload_s=0)
    prepare_storage(settings)
    [function] = load_stack(STACK, settings, ["detect-anomalies"])
    store_history(function.context.database)
    history = load_frame(function.context.database, TARGET, START, NOW)
    return settings, function, history


def promote(function, detector) -> str:
    registry = AnomalyRegistry(function.context.objects)
    version = registry.save(TARGET, detector, {"note": "handler test"})
    registry.promote(TARGET, version)
    return version


def scores(function) -> list[dict]:
    return function.context.database.query("SELECT * FROM anomaly_scores ORDER BY window_start, entity_id, model")


def test_an_anomalous_window_is_published_and_a_normal_one_is_not(setup):
    _, function, history = setup
    version = promote(function, ZScoreDetector().fit(history))
    runner = FunctionRunner(function)
    rng = np.random.default_rng(9)
    quiet = usual(STEPS, 0, rng)

    normal = runner.run([runner.typed(window_event(SENSORS[0], NOW, quiet["mean_speed_kmh"], 0.2))])
    assert normal == []
    jam = window_event(SENSORS[1], NOW, 4.0, 0.85)
    [published] = runner.run([runner.typed(jam)])

    assert published.get_type() == stream_for_topic("incidents").ce_type
    alert = Alert.model_validate(published.get_data())
    assert published.get_id() == alert.id and alert.id.startswith("urn:ngsi-ld:Alert:anomaly-")
    assert (alert.subCategory, alert.status, alert.refRoadSegment, alert.laneId) == ("trafficJam", "active", SEGMENT, 1)
    assert alert.anomalyScore >= ALERT_THRESHOLD and alert.detectedBy == f"zscore@{version}"
    assert alert.contributions and sum(alert.contributions.values()) == pytest.approx(1, abs=0.01)
    assert alert.validFrom == NOW and alert.alertSource == "/smartcity/functions/detect-anomalies"

    rows = [row for row in scores(function) if row["model"] == "zscore"]
    assert [(r["entity_id"], bool(r["flagged"])) for r in rows] == [(SENSORS[0], False), (SENSORS[1], True)]
    assert rows[0]["score"] < ALERT_THRESHOLD <= rows[1]["score"] and rows[0]["alert_id"] is None
    assert rows[1]["alert_id"] == alert.id and json.loads(rows[1]["contributions"]) == alert.contributions
    assert (rows[1]["model_version"], rows[1]["target"], rows[1]["basis"]) == (version, TARGET, "series")

    # a redelivered window (new event id, same window) publishes the same alert id and rewrites its row
    [again] = runner.run([runner.typed(window_event(SENSORS[1], NOW, 4.0, 0.85))])
    assert again.get_id() == alert.id and len(scores(function)) == 2


def test_a_new_promotion_is_served_without_a_restart(setup):
    _, function, history = setup
    runner = FunctionRunner(function)
    version = promote(function, IsolationForestDetector(seed=1).fit(history))
    later = NOW + timedelta(minutes=5)
    [published] = runner.run([runner.typed(window_event(SENSORS[2], later, 3.0, 0.9))])
    assert Alert.model_validate(published.get_data()).detectedBy == f"isolation-forest@{version}"
    newest = [row for row in scores(function) if row["window_start"] == later.isoformat()]
    assert [(row["model"], row["model_version"]) for row in newest] == [("isolation-forest", version)]


def test_the_alert_takes_the_incident_flow_into_the_api(setup):
    from fastapi.testclient import TestClient

    from smartcity.api.auth import KeyRing, Role, issue_token
    from tests.api_samples.gateway import api_gateway

    settings, function, _ = setup
    runner = FunctionRunner(function)
    [published] = runner.run([runner.typed(window_event(SENSORS[0], NOW + timedelta(minutes=10), 2.0, 0.95))])
    for name in ("store-documents", "store-timeseries"):
        [store] = load_stack(STACK, settings, [name])
        store_runner = FunctionRunner(store)
        store_runner.run([store_runner.typed(published)])
    alert_id = published.get_id()
    [report] = function.context.database.query(
        "SELECT anomaly_score, detected_by, contributions FROM incident_reports WHERE entity_id = :id", {"id": alert_id})
    assert report["detected_by"].startswith("isolation-forest@") and json.loads(report["contributions"])

    token = issue_token(KeyRing(settings), "tests", Role("viewer"), "HS256", timedelta(hours=1),
                        datetime.now(timezone.utc))
    with TestClient(api_gateway(settings)) as client:
        headers = {"Authorization": f"Bearer {token}"}
        listing = client.get("/v1/incidents", params={"source": "stream"}, headers=headers).json()["items"]
        assert alert_id in [item["incident_id"] for item in listing]
        case = client.get(f"/v1/incidents/{alert_id}", headers=headers).json()
        assert (case["category"], case["state"], case["reported_by"]) == (
            "trafficJam", "open", "/smartcity/functions/detect-anomalies")
        anomalies = client.get("/v1/incidents/anomalies", params={
            "from": NOW.isoformat(), "to": (NOW + timedelta(hours=1)).isoformat()}, headers=headers).json()["items"]
        assert alert_id in [item["incident_id"] for item in anomalies]


def test_the_threshold_setting_defaults_to_the_detectors_alert_threshold():
    from smartcity.settings import Settings

    assert Settings.model_fields["anomaly_threshold"].default == ALERT_THRESHOLD


def test_nothing_is_scored_before_a_detector_is_promoted(tmp_path):
    settings = sample_settings(tmp_path, anomaly_reload_s=0)
    prepare_storage(settings)
    [function] = load_stack(STACK, settings, ["detect-anomalies"])
    runner = FunctionRunner(function)
    assert runner.run([runner.typed(window_event(SENSORS[0], NOW, 3.0, 0.9))]) == []
    assert scores(function) == []


def test_the_serving_path_works_without_torch(setup):
    """In a fresh process where torch cannot be imported (a function image has none), the service loads a promoted
    isolation forest and scores a window. (Where torch is installed, skops imports it through scikit-learn.)"""
    import subprocess
    import sys

    settings, function, history = setup
    promote(function, IsolationForestDetector(seed=2).fit(history))
    code = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(f"No module named {{name!r}}")
sys.meta_path.insert(0, NoTorch())
from datetime import datetime
from models.anomaly.base import ALERT_THRESHOLD
from models.anomaly.catalog import AnomalyRegistry
from models.anomaly.serving import AnomalyService
from smartcity.backends.database import open_database
from smartcity.backends.objects import open_objects
from smartcity.events.derived import TrafficWindow
service = AnomalyService(open_database({settings.database_url!r}), AnomalyRegistry(open_objects({settings.objects_url!r})),
                         threshold=0.99, reload_s=0)
window = TrafficWindow(sensor_id={SENSORS[0]!r}, segment_id={SEGMENT!r}, zone_id="Z22", lane_id=0, lon=6.957, lat=50.969,
                       window_start=datetime.fromisoformat({NOW.isoformat()!r}),
                       window_end=datetime.fromisoformat({(NOW + timedelta(minutes=5)).isoformat()!r}),
                       flow_per_hour=600.0, mean_speed_kmh=2.0, mean_occupancy=0.9, congestion_index=0.9)
[alert] = service.handle([window])
assert alert.detectedBy.startswith("isolation-forest@") and "torch" not in sys.modules
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
