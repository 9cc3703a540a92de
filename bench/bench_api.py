"""Bench: the REST API through the gateway on PostgreSQL + Redis, beside a bare FastAPI JSON endpoint, under wrk.

    .venv/bin/python bench/bench_api.py [--seconds 10] [--workers N] [--connections 64]
                                        [--cached-rate 5000] [--history-rate 1667]

Needs the local stack (``smartcity stack up``): everything is written to a PostgreSQL database of the bench's own
(``bench_api_<id>``, dropped at the end) and to Redis database ``REDIS_DB`` (refused unless empty; emptied at the end).
Two servers on loopback, each with ``--workers`` processes (default: one per CPU, as the gateway's
``SMARTCITY_GATEWAY_WORKERS=0``), started by this run:

- the bare app: the smallest FastAPI app answering ``{"ok": true}`` on GET /json, served as the gateway is (the
  baseline, measured in the same run);
- the gateway, as ``smartcity functions gateway`` serves the five API functions, over the sample city plus
  ``HISTORY_SENSORS`` sensors with two days of 5-minute readings and the traffic job's windows of them. Its rate
  limit is off (``SMARTCITY_GATEWAY_RATE_PER_S=0``): the bench measures the API, not the limiter; so is its access
  log (``SMARTCITY_GATEWAY_ACCESS_LOG=false``), as the bare app's is (uvicorn at ``--log-level warning``).

The scenarios, each ``--seconds`` long: ``bare FastAPI JSON`` (GET /json); ``gateway cached read`` (GET
/v1/traffic/segments with a viewer token, JWT checked on every request, the body from Redis's read cache);
``gateway uncached history`` (GET /v1/traffic/history for one sensor over the last 24 h in 1 h buckets: a SQL
aggregation of 288 windows of ``traffic_sensor_5min`` on every request). Each runs twice: at the peak (as fast as
the server answers over ``--connections``) and at a fixed rate (``--cached-rate`` for the first two,
``--history-rate`` for the history), where p95 is checked against the 20 ms target.

The load generator is wrk (Debian's package, installed by ``infra/local/install-debian-packages.sh wrk``), which
leaves the servers the CPU; without it a Python fallback runs, and the table says so (it shares the CPUs and
measures less than the servers can do). The load average before and after is printed: the CPUs may be shared.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterator

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # the sample city is test data: tests.api_samples
sys.path.insert(0, str(HERE))

from api_load import Result, load_generator, run_load  # noqa: E402
from machine import load_average  # noqa: E402
from smartcity.runtime.readiness import wait_until_ready  # noqa: E402

HISTORY_SENSORS = 20
HISTORY_DAYS = 2
TARGET_P95_MS = 20.0
REDIS_DB = 12  # 13 and 14 are tests' and bench_storage's
API_FUNCTIONS = ("api-traffic", "api-transport", "api-mobility", "api-incidents", "api-analytics")


def bare_app():
    """The baseline: the smallest FastAPI JSON endpoint."""
    from fastapi import FastAPI

    app = FastAPI()

    @app.get("/json")
    def json() -> dict:
        return {"ok": True}

    return app


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


def history_path(now: datetime) -> str:
    """The history scenario's request: sensor ``h01`` over the 24 h before ``now`` in 1 h buckets."""
    return (f"/v1/traffic/history?sensor_id=urn:ngsi-ld:TrafficFlowObserved:h01&bucket=1h&limit=100"
            f"&from={(now - timedelta(hours=24)).strftime('%Y-%m-%dT%H:%M:%SZ')}&to={now.strftime('%Y-%m-%dT%H:%M:%SZ')}")


class Stores:
    """The bench's PostgreSQL database and Redis database, on the local stack; :meth:`close` removes both."""

    def __init__(self, directory: Path, redis_db: int = REDIS_DB) -> None:
        import psycopg
        import redis

        from smartcity import stack
        from tests.api_samples.gateway import sample_settings

        env = stack.settings_env()
        self.admin_url = env["SMARTCITY_DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
        self.name = f"bench_api_{uuid.uuid4().hex[:8]}"
        cache_url = env["SMARTCITY_CACHE_URL"].rsplit("/", 1)[0] + f"/{redis_db}"
        self.redis = redis.Redis.from_url(cache_url)
        if self.redis.dbsize():
            raise SystemExit(f"Redis database {redis_db} ({cache_url}) is not empty: the bench owns it and empties it")
        with psycopg.connect(self.admin_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{self.name}"')
        self.settings = sample_settings(directory, database_url=self.admin_url.rsplit("/", 1)[0] + f"/{self.name}",
                                        cache_url=cache_url, gateway_rate_per_s=0)

    def seed(self, now: datetime) -> None:
        """The sample city and the history, written once, before any server starts."""
        from tests.api_samples.gateway import backends_of, open_sample_api

        sample_api = open_sample_api(Path(self.settings.secrets_dir).parent, now,
                                     **self.settings.model_dump(include={"database_url", "cache_url"}))
        backends = backends_of(sample_api.gateway)
        seed_history(backends["database"], now)
        for backend in backends.values():
            backend.close()

    def environment(self) -> dict[str, str]:
        """The gateway's settings as its environment (each worker process reads them)."""
        names = ("database_url", "cache_url", "documents_url", "bus_url", "objects_url", "secrets_dir")
        env = {f"SMARTCITY_{name.upper()}": str(getattr(self.settings, name)) for name in names}
        return {**env, "SMARTCITY_GATEWAY_RATE_PER_S": "0", "SMARTCITY_GATEWAY_ACCESS_LOG": "false",
                "SMARTCITY_LOGS_URL": "", "SMARTCITY_GATEWAY_INTERNAL_PORT": "0"}  # /healthz on the gateway's port

    def close(self) -> None:
        from tests.storage_samples import drop_database

        self.redis.flushdb()
        self.redis.close()
        drop_database(self.admin_url, self.name)


def serve_gateway(port: int, workers: int, env: dict[str, str]) -> subprocess.Popen:
    command = [str(Path(sys.executable).with_name("smartcity")), "functions", "gateway", *API_FUNCTIONS,
               "--port", str(port), "--workers", str(workers)]
    return subprocess.Popen(command, env={**os.environ, **env}, stdout=subprocess.DEVNULL)


def serve_bare(port: int, workers: int) -> subprocess.Popen:
    """The bare app as the gateway's server runs it: uvicorn, uvloop and httptools, ``workers`` processes."""
    command = [sys.executable, "-m", "uvicorn", "--factory", "bench_api:bare_app", "--app-dir", str(HERE),
               "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers), "--log-level", "warning"]
    return subprocess.Popen(command)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def print_table(results: list[Result], workers: int, load_before: str) -> None:
    generator = load_generator()
    note = "" if generator == "wrk" else " (wrk missing: the Python fallback, on the same CPUs, measures less)"
    print(f"\nPostgreSQL + Redis; {workers} worker process(es) per server, no access log, loopback, {os.cpu_count()} CPUs; load "
          f"generator: {generator}{note}; load average (1, 5, 15 min) {load_before} before, {load_average()} after\n")
    print(f"{'scenario':26} {'offered/s':>9} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'failed':>7}  "
          f"p95 vs {TARGET_P95_MS:.0f} ms")
    for r in results:
        offered = f"{r.offered:.0f}" if r.offered else "peak"
        verdict = "" if not r.offered else ("met" if r.p95_ms <= TARGET_P95_MS and r.rps >= 0.95 * r.offered
                                            else "NOT met")
        print(f"{r.scenario:26} {offered:>9} {r.rps:>8.0f} {r.p50_ms:>8.2f} {r.p95_ms:>8.2f} {r.p99_ms:>8.2f} "
              f"{r.failures:>7}  {verdict}")


@dataclass
class Servers:
    """The two servers of a bench run: the bare app's and the gateway's base URLs, a viewer's Authorization header
    and the history query's path."""

    bare: str
    gateway: str
    authorization: str
    history: str

    def scenarios(self) -> dict[str, tuple[str, str]]:
        """Each scenario's URL and Authorization header (see the module docstring)."""
        return {"bare FastAPI JSON": (f"{self.bare}/json", ""),
                "gateway cached read": (f"{self.gateway}/v1/traffic/segments", self.authorization),
                "gateway uncached history": (f"{self.gateway}{self.history}", self.authorization)}


@contextmanager
def api_servers(workers: int) -> Iterator[Servers]:
    """The bench's stores seeded, the bare app and the gateway serving with ``workers`` processes each, every
    worker warmed; the servers stopped and the stores removed afterwards (bench/soak_api.py uses it too)."""
    from smartcity.api.auth import KeyRing, Role, issue_token

    directory = Path(tempfile.mkdtemp(prefix="bench-api-"))
    stores = Stores(directory)
    processes: list[subprocess.Popen] = []
    try:
        now = datetime.now(timezone.utc).replace(microsecond=0)
        stores.seed(now)
        token = issue_token(KeyRing(stores.settings), "bench", Role.viewer, ttl=timedelta(hours=2))
        history = history_path(now)
        bare_port, gateway_port = free_port(), free_port()
        servers = Servers(f"http://127.0.0.1:{bare_port}", f"http://127.0.0.1:{gateway_port}", f"Bearer {token}",
                          history)
        processes = [serve_bare(bare_port, workers), serve_gateway(gateway_port, workers, stores.environment())]
        wait_until_ready(f"{servers.bare}/json", 120, processes[0])
        wait_until_ready(f"{servers.gateway}/healthz", 120, processes[1])
        for path in ("/v1/traffic/segments", history):  # every worker: imports, pools, the first cache fill
            for _ in range(4 * workers):
                response = httpx.get(f"{servers.gateway}{path}", headers={"Authorization": servers.authorization})
                assert response.status_code == 200, (path, response.status_code, response.text[:300])
        yield servers
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
        stores.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="How long each scenario runs.")
    parser.add_argument("--connections", type=int, default=64, help="Keep-alive connections of the load generator.")
    parser.add_argument("--workers", type=int, default=None,
                        help="Worker processes of each server (each with its own database pool); default: one per CPU.")
    parser.add_argument("--cached-rate", type=float, default=5000, help="Fixed rate of the bare and cached reads.")
    parser.add_argument("--history-rate", type=float, default=100_000 / 60, help="Fixed rate of the history query.")
    args = parser.parse_args()

    from smartcity.cli.functions import worker_count

    args.workers = worker_count(args.workers, 0)
    rates = {"bare FastAPI JSON": args.cached_rate, "gateway cached read": args.cached_rate,
             "gateway uncached history": args.history_rate}
    with api_servers(args.workers) as servers:
        load_before = load_average()
        results = []
        for name, (url, auth) in servers.scenarios().items():
            for offered in (None, rates[name]):
                results.append(run_load(name, url, auth, offered, args.seconds, args.connections))
                print(f"  {name} at {f'{offered:.0f}/s' if offered else 'peak'}: done", flush=True)
        print_table(results, args.workers, load_before)

if __name__ == "__main__":
    main()
