"""`smartcity functions gateway --workers N`: N processes, each building the gateway from the settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx

from smartcity.settings import Settings
from smartcity.stack.processes import alive_processes, process_tree
from tests.credentials import admin_headers
from tests.ports import free_port

CALLS = 24


def test_the_gateway_runs_in_several_worker_processes_serving_the_functions_named(tmp_path):
    port, internal_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMARTCITY_")}
    env["SMARTCITY_SECRETS_DIR"] = str(tmp_path)
    env["PROMETHEUS_MULTIPROC_DIR"] = str(counts := tmp_path / "metrics")  # the workers' shared counts, seen here
    counts.mkdir()
    admin = admin_headers(Settings(secrets_dir=tmp_path))  # /system/* needs an admin token
    gateway = subprocess.Popen(
        [sys.executable, "-m", "smartcity.cli", "functions", "gateway", "ingest-weather", "api-traffic",
         "--workers", "2", "--port", str(port), "--internal-port", str(internal_port)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    children: list[int] = []
    try:
        deadline, answer = time.monotonic() + 60, None
        while time.monotonic() < deadline and answer is None:
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/system/functions", headers=admin,
                                   timeout=2).raise_for_status().json()
            except httpx.HTTPError:
                time.sleep(0.5)
        assert answer is not None, "the gateway did not answer within 60 s"
        assert sorted(function["name"] for function in answer) == ["api-traffic", "ingest-weather"]
        # calls on connections of their own, so both workers take some: the function refuses them (401), counted
        calls = [threading.Thread(target=httpx.post, args=(f"http://127.0.0.1:{port}/function/ingest-weather",),
                                  kwargs={"json": []}) for _ in range(CALLS)]
        for call in calls:
            call.start()
        for call in calls:
            call.join(30)
        # every worker serves the internal port too (the supervisor handed it both sockets), and only there; its
        # /metrics sums what every worker counted
        for _ in range(6):
            metrics = httpx.get(f"http://127.0.0.1:{internal_port}/metrics", timeout=2).text
            assert f'gateway_function_invocation_total{{code="401",function_name="ingest-weather"}} {CALLS}.0' in metrics
            assert 'gateway_service_count{function_name="ingest-weather"} 1.0' in metrics
            assert httpx.get(f"http://127.0.0.1:{internal_port}/healthz", timeout=2).text == "OK"
            assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 404
        assert len({path.stem.rsplit("_", 1)[1] for path in counts.glob("gauge_max_*.db")}) == 2  # one per worker
        children = process_tree(gateway.pid)[1:]
        workers = [pid for pid in children if b"spawn_main" in open(f"/proc/{pid}/cmdline", "rb").read()]
        assert len(workers) == 2
    finally:
        os.killpg(gateway.pid, signal.SIGTERM)
        gateway.wait(timeout=30)
    deadline = time.monotonic() + 15  # the workers may finish their own exit a moment after the parent
    while alive_processes(children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert alive_processes(children) == []
