"""The README's first command, end to end: `smartcity demo` on embedded defaults, called over its REST API.

The demo runs as its own process (as a person runs it) on free ports and a temporary data folder; while it runs,
the test calls the API with a token signed by the demo's keys and waits for data from each stage: the simulator's
events stored (latest traffic state, history), and the Spark job's 5-minute mobility index per zone.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
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
    gateway_port, metrics_port, trigger_port = free_port(), free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMARTCITY_")}
    env.update(SMARTCITY_GATEWAY_PORT=str(gateway_port), SMARTCITY_STREAMING_METRICS_PORT=str(metrics_port),
               SMARTCITY_TRIGGER_METRICS_PORT=str(trigger_port))
    log = (tmp_path / "demo.log").open("w")
    demo = subprocess.Popen(
        [sys.executable, "-m", "smartcity.cli", "demo", "--duration", "150s", "--data-dir", str(tmp_path / "data"),
         "--status-every", "5"],
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
        assert wait_for("traffic history", lambda: items("/v1/traffic/history?bucket=1m"), 30, demo)
        zones = wait_for("the streaming job's mobility index", lambda: items("/v1/mobility/index", "zones"), 150, demo)
        assert all(0 <= zone["mobility_index"] <= 100 for zone in zones), zones
    finally:
        demo.terminate()
        demo.wait(timeout=60)
        log.close()
    output = (tmp_path / "demo.log").read_text()
    assert "simulator: the city from" in output, output[-3000:]
