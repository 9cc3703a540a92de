"""Bench: the REST API through the gateway at 100k requests per minute, beside a bare FastAPI JSON endpoint.

    .venv/bin/python bench/bench_api.py [--rate 1667] [--seconds 10] [--connections 64]

Two servers, each uvicorn with ``--workers`` processes (default 1) on loopback, all started by this run: a bare FastAPI app
answering ``{"ok": true}`` (the baseline, measured in the same run), and the gateway over the five API functions over the sample city
(SQLite and the in-process memory cache, plus ``HISTORY_SENSORS`` sensors with two days of 5-minute readings, and the
traffic streaming job's 5-minute windows of them, written with its sink).
An open-loop load generator sends requests at ``--rate`` per second (1667/s is 100k/minute) for ``--seconds``,
over ``--connections`` keep-alive connections, and times each request from the moment it was due (so a server
that falls behind shows its queueing). The scenarios:

- ``bare FastAPI JSON``: GET /json on the bare app;
- ``gateway cached read``: GET /v1/traffic/segments with a viewer token (JWT checked on every request; the body
  comes from the read cache, recomputed when its 5 s TTL runs out);
- ``gateway uncached history``: GET /v1/traffic/history for one sensor over the last 24 h in 1 h buckets (on every
  request, a SQL aggregation of the sensor's 288 windows of ``traffic_sensor_5min`` into 24 buckets).

It prints requests per second achieved, p50/p95/p99 latency, the non-2xx count, how far p95 is below the design's
500 ms target, and the machine's load average before and after (the CPUs may be shared). Every loop is bounded: at
most ``rate * seconds`` requests, and a hard deadline.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the sample city is test data: tests.api_samples
HISTORY_SENSORS = 20
HISTORY_DAYS = 2
TARGET_P95_MS = 500.0
DIRECTORY_VARIABLE = "BENCH_API_DIRECTORY"


def bare_app():
    """The baseline: the smallest FastAPI JSON endpoint."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/json")
    def json() -> dict:
        return {"ok": True}

    return app


def gateway_app():
    """The gateway over the API functions, the sample city and the bench's history seeded in this process."""
    from tests.api_samples.gateway import backends_of, open_sample_api

    sample_api = open_sample_api(Path(os.environ[DIRECTORY_VARIABLE]))
    seed_history(backends_of(sample_api.gateway)["database"], sample_api.sample.now)
    return sample_api.gateway


def seed_history(database, now: datetime) -> None:
    """``HISTORY_SENSORS`` sensors ``h01``... with ``HISTORY_DAYS`` of 5-minute intervals, in ``traffic_flow``, and
    their 5-minute windows in ``traffic_sensor_5min`` and ``traffic_segment_5min``."""
    from tests.api_samples.sample_city import SOURCE, zone_point
    from tests.api_samples.sample_streaming import traffic_windows, write_traffic_windows
    from smartcity.events import TrafficFlowObserved
    from smartcity.storage.envelope import StoredEvent
    from smartcity.storage.timeseries import TimeSeriesWriter

    step = timedelta(minutes=5)
    events = []
    for sensor in range(1, HISTORY_SENSORS + 1):
        for n in range(HISTORY_DAYS * 288):
            end = now - n * step
            event = TrafficFlowObserved(
                id=TrafficFlowObserved.make_id(f"h{sensor:02d}"), dateObserved=end, dateObservedFrom=end - step,
                dateObservedTo=end, location=zone_point("Z22"), refRoadSegment="urn:ngsi-ld:RoadSegment:H",
                laneId=sensor % 3, zone="Z22", intensity=n % 40, intensityPerHour=12.0 * (n % 40), occupancy=0.3,
                averageVehicleSpeed=30.0 + n % 20, congested=n % 7 == 0,
            )
            events.append(StoredEvent("traffic-sensors", f"bench:{event.id}:{n}", SOURCE, event))
    TimeSeriesWriter(database).write(events)
    write_traffic_windows(database, *traffic_windows((stored.event for stored in events), updated_at=now))


@dataclass
class Result:
    scenario: str
    sent: int
    seconds: float
    latencies_ms: list[float]
    statuses: Counter

    def percentile(self, q: float) -> float:
        return statistics.quantiles(self.latencies_ms, n=1000, method="inclusive")[int(q * 10) - 1]

    @property
    def rps(self) -> float:
        return len(self.latencies_ms) / self.seconds

    @property
    def failures(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One request on a keep-alive connection; the response's status code (its body is read and dropped)."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def load(port: int, path: str, headers: dict[str, str], rate: float, seconds: float, connections: int,
               scenario: str) -> Result:
    """Open-loop: request ``i`` is due at ``start + i / rate``; its latency counts from then."""
    lines = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{lines}\r\n".encode()
    idle: asyncio.Queue = asyncio.Queue()
    for _ in range(connections):
        idle.put_nowait(await asyncio.open_connection("127.0.0.1", port))
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    statuses: Counter = Counter()

    async def one(due: float) -> None:
        reader, writer = await idle.get()
        try:
            statuses[await _exchange(reader, writer, request)] += 1
        finally:
            idle.put_nowait((reader, writer))
        latencies.append((loop.time() - due) * 1000)

    total = int(rate * seconds)
    start = loop.time() + 0.05
    tasks = []
    for i in range(total):
        due = start + i / rate
        if due > loop.time():
            await asyncio.sleep(due - loop.time())
        tasks.append(asyncio.create_task(one(due)))
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=seconds + 60)
    elapsed = loop.time() - start
    while not idle.empty():
        idle.get_nowait()[1].close()
    return Result(scenario, total, elapsed, latencies, statuses)


def serve(factory: str, port: int, workers: int, env: dict[str, str]) -> subprocess.Popen:
    command = [sys.executable, "-m", "uvicorn", "--factory", f"bench_api:{factory}", "--app-dir", str(HERE),
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning",
               "--no-access-log", "--loop", "uvloop", "--http", "httptools"]
    return subprocess.Popen(command, env={**os.environ, **env})


def wait_ready(port: int, path: str, deadline_s: float = 120) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.3)
    raise RuntimeError(f"the server on port {port} did not answer {path} within {deadline_s} s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def print_table(results: list[Result], rate: float, workers: int, load_before: str) -> None:
    print(f"\nload: {rate:.0f} requests/s offered ({rate * 60:,.0f}/minute), {workers} uvicorn worker(s) per server, "
          f"loopback, {os.cpu_count()} CPUs; load average (1, 5, 15 min) {load_before} before, {load_average()} after\n")
    print(f"{'scenario':28} {'sent':>7} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'non-2xx':>8}  p95 vs 500 ms")
    for r in results:
        p95 = r.percentile(95)
        verdict = f"{TARGET_P95_MS / p95:,.0f}x below" if p95 < TARGET_P95_MS else f"{p95 - TARGET_P95_MS:,.0f} ms over"
        print(f"{r.scenario:28} {r.sent:>7} {r.rps:>8.0f} {r.percentile(50):>8.2f} {p95:>8.2f} {r.percentile(99):>8.2f}"
              f" {r.failures:>8}  {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100_000 / 60, help="Requests per second offered (1667 = 100k/min).")
    parser.add_argument("--seconds", type=float, default=10.0, help="How long each scenario runs.")
    parser.add_argument("--connections", type=int, default=64, help="Keep-alive connections of the load generator.")
    parser.add_argument("--workers", type=int, default=1,
                        help="uvicorn worker processes of each server (replicas of a function; each has its own memory cache).")
    args = parser.parse_args()
    try:
        import uvloop
        uvloop.install()
    except ImportError:
        pass

    from smartcity.api.auth import KeyRing, Role, create_local_keys, issue_token
    from tests.api_samples.gateway import sample_settings

    directory = Path(tempfile.mkdtemp(prefix="bench-api-"))
    create_local_keys(directory / "secrets")
    token = issue_token(KeyRing(sample_settings(directory)), "bench", Role.viewer, ttl=timedelta(hours=1))
    auth = {"Authorization": f"Bearer {token}"}
    now = datetime.now(timezone.utc)
    history = (f"/v1/traffic/history?sensor_id=urn:ngsi-ld:TrafficFlowObserved:h01&bucket=1h&limit=100"
               f"&from={(now - timedelta(hours=24)).strftime('%Y-%m-%dT%H:%M:%SZ')}&to={now.strftime('%Y-%m-%dT%H:%M:%SZ')}")
    bare_port, gateway_port = free_port(), free_port()
    servers = [serve("bare_app", bare_port, args.workers, {}),
               serve("gateway_app", gateway_port, args.workers, {DIRECTORY_VARIABLE: str(directory)})]
    try:
        wait_ready(bare_port, "/json")
        wait_ready(gateway_port, "/healthz")
        for path in ("/v1/traffic/segments", history):  # warm: imports, the first cache fill, SQLite's pages
            assert httpx.get(f"http://127.0.0.1:{gateway_port}{path}", headers=auth).status_code == 200
        load_before = load_average()
        scenarios = [
            ("bare FastAPI JSON", bare_port, "/json", {}),
            ("gateway cached read", gateway_port, "/v1/traffic/segments", auth),
            ("gateway uncached history", gateway_port, history, auth),
        ]
        results = []
        for name, port, path, headers in scenarios:
            results.append(asyncio.run(load(port, path, headers, args.rate, args.seconds, args.connections, name)))
            print(f"  {name}: done", flush=True)
        print_table(results, args.rate, args.workers, load_before)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
