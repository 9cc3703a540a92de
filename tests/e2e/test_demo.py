"""The README's first command, end to end: `smartcity demo` on embedded defaults, called over its REST API.

The demo runs as its own process (as a person runs it) on free ports and a temporary data folder; while it runs,
the test calls the API with a token signed by the demo's keys and waits for data from each stage: the simulator's
events stored (latest traffic state, history), and the Spark job's 5-minute mobility index per zone.

The demo's forecasting is checked apart, without Spark and the simulator, in this process: the first live forecast
needs weeks of history, a trained model, then a window closed past the streaming watermark (2 min), minutes more
than this test takes. So here the demo runs without history and training; the second test runs its history and
training, then calls the forecast-traffic function with a window continuing that history, and the forecast routes,
then the forecasts that follow a promotion at once (every sensor's newest closed window).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from contextlib import ExitStack
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from smartcity.api.auth import KeyRing, Role, issue_token
from smartcity.settings import Settings
from tests.ports import free_port

pytestmark = pytest.mark.e2e


def wait_for(describe: str, probe, timeout_s: float, process: subprocess.Popen):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the demo exited ({process.returncode}) before {describe}"
        try:
            value = probe()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        time.sleep(2)
    raise AssertionError(f"no {describe} within {timeout_s:.0f} s")


def test_demo_serves_what_the_simulated_city_sends(tmp_path: Path):
    gateway_port, internal_port, metrics_port, trigger_port = free_port(), free_port(), free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMARTCITY_")}
    env.update(SMARTCITY_GATEWAY_PORT=str(gateway_port), SMARTCITY_GATEWAY_INTERNAL_PORT=str(internal_port),
               SMARTCITY_STREAMING_METRICS_PORT=str(metrics_port), SMARTCITY_TRIGGER_METRICS_PORT=str(trigger_port))
    log = (tmp_path / "demo.log").open("w")
    demo = subprocess.Popen(
        [sys.executable, "-m", "smartcity.cli", "demo", "--duration", "150s", "--data-dir", str(tmp_path / "data"),
         "--status-every", "5", "--no-history", "--no-training", "--start", "now"],  # the routes' default: the last hour
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{gateway_port}"
        settings = Settings(secrets_dir=tmp_path / "data" / "secrets")
        token = wait_for("signing keys", lambda: (settings.secrets_dir / "jwt-hs256-key").exists()
                         and issue_token(KeyRing(settings), "e2e", Role.viewer), 60, demo)
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=10)

        def items(path: str, key: str = "items"):
            response = client.get(path)
            return response.status_code == 200 and response.json().get(key)

        sensors = wait_for("latest sensor states", lambda: items("/v1/traffic/sensors?limit=5"), 120, demo)
        assert all(0 <= sensor["occupancy"] <= 1 for sensor in sensors)
        assert client.get("/v1/traffic/sensors").status_code == 200
        assert httpx.get(f"{base}/v1/traffic/sensors").status_code == 401
        assert httpx.get(f"http://127.0.0.1:{internal_port}/healthz").text == "OK"  # health: on the internal port
        assert httpx.get(f"{base}/healthz").status_code == 404
        assert wait_for("traffic history", lambda: items("/v1/traffic/history?bucket=1m"), 30, demo)
        zones = wait_for("the streaming job's mobility index", lambda: items("/v1/mobility/index", "zones"), 150, demo)
        assert all(0 <= zone["mobility_index"] <= 100 for zone in zones), zones
    finally:
        demo.terminate()
        demo.wait(timeout=60)
        log.close()
    output = (tmp_path / "demo.log").read_text()
    assert "simulator: the city from" in output, output[-3000:]
    assert "forecast-traffic <- kafka traffic-windows" in output  # the forecasts' trigger runs in the demo
    assert f'"{base}/v1/traffic/forecast?segment_id=urn:ngsi-ld:RoadSegment:' in output


def test_the_demo_generates_history_trains_a_model_and_serves_its_forecasts(tmp_path: Path):
    from models.registry import Registry
    from smartcity.backends.bus import open_bus
    from smartcity.backends.database import open_database
    from smartcity.backends.objects import open_objects
    from smartcity.demo import Demo, DemoOptions
    from smartcity.events.derived import TRAFFIC_WINDOWS, TrafficWindow
    from smartcity.simulator.history import floor_to_step
    from tests.fixtures.functions.helpers import embedded_settings

    settings = embedded_settings(tmp_path, gateway_port=free_port(), gateway_internal_port=free_port(),
                                 secrets_dir=tmp_path / "secrets")
    said: list[str] = []
    # 6 days: the least a training run takes (3 to train, 3 held out); the demo's default is 28
    demo = Demo(settings, DemoOptions(data_dir=tmp_path, history_days=6, training_models="xgboost"), say=said.append)
    demo.prepare()
    bus = open_bus(settings.bus_url)
    assert bus.partitions("traffic-windows") and bus.partitions("forecasts")
    bus.close()

    demo.forecasting.generate_missing_history()
    database = open_database(settings.database_url)
    end = floor_to_step(demo.start)
    span = database.query("SELECT min(window_start) AS first, max(window_start) AS last FROM traffic_segment_5min")[0]
    assert (span["first"], span["last"]) == ((end - timedelta(days=6)).isoformat(),
                                             (end - timedelta(minutes=5)).isoformat())  # the live city continues it
    demo.forecasting.generate_missing_history()
    assert said[-1].startswith("history: 6 days stored before"), said  # a second start generates nothing

    schedule = demo.forecasting.start_training()
    deadline = time.monotonic() + 240
    while not schedule.results and schedule.last_error is None and time.monotonic() < deadline:
        time.sleep(0.5)
    schedule.stop()
    assert schedule.results, schedule.last_error or said
    [version] = schedule.results[0].versions.values()
    if schedule.results[0].promoted is None:  # on 6 days XGBoost need not beat the historical average: an operator's
        objects = open_objects(settings.objects_url)  # `smartcity models promote`
        Registry(objects, settings=settings).promote("segment-speed", version)
        objects.close()

    with ExitStack() as stack:
        demo.start_gateway(stack)
        instructions = demo.how_to_call()
        token = re.search(r"export TOKEN=(\S+)", instructions)[1]
        forecast_url = re.search(r'"(http\S+/v1/traffic/forecast\?segment_id=\S+)"', instructions)[1]
        client = httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30)
        operator = issue_token(KeyRing(settings), "test", Role.operator)
        segment = httpx.URL(forecast_url).params["segment_id"]

        def window_closes(start: str) -> None:
            """POST the segment's first sensor window at ``start`` to forecast-traffic, as its trigger would."""
            [window] = database.query("SELECT * FROM traffic_sensor_5min WHERE segment_id = :segment AND "
                                      "window_start = :start LIMIT 1", {"segment": segment, "start": start})
            posted = client.post(f"{demo.base_url}/function/forecast-traffic",
                                 content=TrafficWindow.model_validate(window).model_dump_json(),
                                 headers={"authorization": f"Bearer {operator}",  # its caller-role in stack.yml
                                          "ce-specversion": "1.0", "ce-type": TRAFFIC_WINDOWS.ce_type,
                                          "ce-source": "/tests", "ce-id": uuid.uuid4().hex,
                                          "content-type": "application/json"})
            assert posted.status_code < 300, posted.text

        # 15 minutes before the last window, then the last: its actual scores the first's 15-minute forecasts
        window_closes((end - timedelta(minutes=20)).isoformat())
        window_closes(span["last"])

        response = client.get(forecast_url)
        assert response.status_code == 200, response.text
        forecast = response.json()
        assert forecast["entity_id"] == segment
        assert datetime.fromisoformat(forecast["origin"]) == end - timedelta(minutes=5)
        assert forecast["served"]["model"] == "xgboost" and forecast["served"]["model_version"] == version
        assert [f["horizon_min"] for f in forecast["served"]["forecasts"]] == [15, 30, 60]
        assert forecast["baseline"]["model"] == "historical-average"
        accuracy = client.get(f"{demo.base_url}/v1/traffic/forecast/accuracy?hours=1").json()
        assert {(row["model"], row["horizon_min"]) for row in accuracy["horizons"]} == {
            ("xgboost", 15), ("historical-average", 15)}
        status = demo.status_line()
        assert "12 forecasts issued (speed MAE over the last hour, km/h: " in status, status

        # a run that promotes a model is followed at once by forecasts from every sensor's newest closed window
        demo.forecasting.forecast_at_once(replace(schedule.results[0], promoted=version))
        origin = end - timedelta(minutes=10)  # the newest stored window may still be filling: the one before it
        assert said[-1].startswith("forecasts: forecast-traffic forecast from the "), said
        assert f"{origin:%H:%M} UTC" in said[-1]
        segments = {row["segment_id"] for row in database.query(
            "SELECT DISTINCT segment_id FROM traffic_sensor_5min WHERE window_start = :start",
            {"start": origin.isoformat()})}
        forecast_rows = database.query("SELECT entity_id, model, horizon_min FROM traffic_forecasts "
                                       "WHERE origin = :origin", {"origin": origin.isoformat()})
        assert {row["entity_id"] for row in forecast_rows} == segments and len(segments) > 100
        assert len(forecast_rows) == len(segments) * 3 * 2  # three horizons, the model and the historical average
    database.close()
