"""Faults: N traffic readings through gateway -> Kafka -> trigger -> store-timeseries -> PostgreSQL while one
component at a time is killed with SIGKILL and restarted; then 0 lost, 0 duplicate rows and the same aggregates
as the run without faults (issue 17 item 4).

    .venv/bin/python bench/faults.py [--events 100000] [--batch 100] [--down-s 3] [--only broker,trigger]

Everything runs on servers of its own, started here on free ports in a folder of its own under the stack folder,
and removed at the end: a Kafka broker and a PostgreSQL (``smartcity.stack``'s services, as the tests'
``private_stack`` fixture does), a gateway serving ``ingest-traffic-sensors`` and a trigger of
``store-timeseries`` (``smartcity functions gateway`` / ``trigger`` processes), so killing them leaves the
shared local stack alone. One run per row: first without faults (the reference), then killing the broker,
PostgreSQL, the trigger and the gateway. Each run sends its own readings (entity ids name the run; values are the
same in every run), in batches, as a client would: a batch refused or unanswered is sent again until accepted,
which is safe since a reading's event id derives from its entity and time. A third of the way through, the
component is killed; ``--down-s`` later it is started again. Columns:

- sent: readings accepted by the gateway; stored: distinct event ids in ``traffic_flow``; duplicates: rows minus
  distinct ids; aggregate difference: the run's sum of vehicles and of speeds minus the reference run's;
- recovery: seconds from the kill until the rows stored exceed the readings accepted before the kill (what was
  in flight is stored and new readings flow again).

PostgreSQL runs durable, as in production (fsync and synchronous_commit on, unlike the local development server:
a commit acknowledged and then lost in the crash would be counted lost). A SIGKILLed trigger's partitions wait
for its consumer session to time out: 10 s (``smartcity.backends.bus.kafka.SESSION_TIMEOUT_MS``).

Not covered: the Spark streaming jobs (``smartcity streaming``): a JVM job per kill was too heavy for the time
this harness was written in; the 10-minute 100,000 requests/min run of issue 17 item 4 is not here either.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from smartcity.backends.database import open_database  # noqa: E402
from smartcity.events import TrafficFlowObserved, city  # noqa: E402
from smartcity.runtime.readiness import wait_until_ready  # noqa: E402
from smartcity.settings import Settings, get_settings  # noqa: E402
from smartcity.stack.base import LocalService  # noqa: E402
from smartcity.stack.kafka import KafkaService  # noqa: E402
from smartcity.stack.postgres import DATABASE, ROLE, PostgresService  # noqa: E402
from smartcity.storage.migrate import migrate  # noqa: E402
from tests.ports import free_port  # noqa: E402

SMARTCITY = Path(sys.executable).with_name("smartcity")
COMPONENTS = ("broker", "postgres", "trigger", "gateway")
START = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(hours=1)
DRAIN_TIMEOUT_S = 300


def reading(run: str, i: int) -> dict:
    """The i-th reading of a run: 200 sensors reporting in turn, values depending on i alone."""
    box = city()
    moment = START + timedelta(milliseconds=10 * i)
    event = TrafficFlowObserved(
        id=f"urn:ngsi-ld:TrafficFlowObserved:faults-{run}-{i % 200}", dateObserved=moment,
        dateObservedFrom=moment - timedelta(seconds=5), dateObservedTo=moment,
        location={"type": "Point", "coordinates": [(box.west + box.east) / 2, (box.south + box.north) / 2]},
        refRoadSegment="urn:ngsi-ld:RoadSegment:faults", zone="Z22", laneId=i % 3, intensity=i % 7, intensityPerHour=720.0, occupancy=(i % 10) / 10,
        averageVehicleSpeed=float(20 + i % 50), congested=False)
    return event.model_dump(mode="json", exclude_none=True)


class DurablePostgres(PostgresService):
    """PostgreSQL as in production: a commit it acknowledged survives a SIGKILL. The local development server runs
    with fsync and synchronous_commit off, which loses the last commits in a crash: the trigger, told they were
    stored, has committed their offsets, and the harness would count them lost."""

    def command(self) -> list[str]:
        volatile = ("--fsync=", "--synchronous-commit=", "--full-page-writes=")
        return [flag for flag in super().command() if not flag.startswith(volatile)]


class Process:
    """A ``smartcity functions ...`` process of the harness, in a session of its own (killed as a group)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([str(SMARTCITY), "functions", *self.args], env=self.env,
                                            stdout=log, stderr=log, start_new_session=True)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@dataclass
class Row:
    component: str
    sent: int
    stored: int
    duplicates: int
    vehicles: int
    speeds: float
    recovery_s: float | None


class Harness:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        ports = {name: free_port() for name in ("kafka_port", "kafka_controller_port", "postgres_port")}
        self.settings = Settings(stack_dir=folder, **ports)
        self.kafka, self.postgres = KafkaService(self.settings), DurablePostgres(self.settings)
        self.database_url = f"postgresql://{ROLE}@127.0.0.1:{ports['postgres_port']}/{DATABASE}"
        self.gateway_port = free_port()
        env = {**os.environ, "SMARTCITY_BUS_URL": f"kafka://127.0.0.1:{ports['kafka_port']}",
               "SMARTCITY_DATABASE_URL": self.database_url, "SMARTCITY_CACHE_URL": "memory://",
               "SMARTCITY_STACK_DIR": str(folder), "SMARTCITY_INGEST_ALLOW_ANONYMOUS": "true",
               "SMARTCITY_GATEWAY_RATE_PER_S": "0", "SMARTCITY_LOGS_URL": "", "SMARTCITY_LOG_LEVEL": "WARNING"}
        self.gateway = Process(["gateway", "ingest-traffic-sensors", "--port", str(self.gateway_port)], env,
                               folder / "gateway.log")
        self.trigger = Process(["trigger", "store-timeseries", "--metrics-port", "0"], env, folder / "trigger.log")

    def up(self) -> None:
        for service in (self.kafka, self.postgres):
            print(f"starting a private {service.name} on port {service.port}", flush=True)
            service.start()
        self.db = open_database(self.database_url)
        migrate(self.db)
        self.gateway.start()
        self.trigger.start()
        wait_until_ready(f"http://127.0.0.1:{self.gateway_port}/healthz", 120, self.gateway.process,
                         log=self.gateway.log)

    def down(self) -> None:
        for process in (self.gateway, self.trigger):
            process.stop()
        if getattr(self, "db", None) is not None:
            self.db.close()
        for service in (self.postgres, self.kafka):
            service.stop()

    # --- the faults --------------------------------------------------------------------------------------
    def kill(self, component: str) -> None:
        if component in ("broker", "postgres"):
            service = self.kafka if component == "broker" else self.postgres
            os.killpg(service.pid(), signal.SIGKILL)
        else:
            getattr(self, component).kill()

    def restart(self, component: str) -> None:
        service: LocalService | Process = {"broker": self.kafka, "postgres": self.postgres}.get(component) \
            or getattr(self, component)
        service.start()

    # --- one run -----------------------------------------------------------------------------------------
    def run(self, component: str | None, events: int, batch: int, down_s: float) -> Row:
        run = component or "none"
        accepted = 0
        done = threading.Event()

        def send() -> None:
            nonlocal accepted
            with httpx.Client(base_url=f"http://127.0.0.1:{self.gateway_port}", timeout=30) as client:
                for start in range(0, events, batch):
                    body = [reading(run, i) for i in range(start, min(start + batch, events))]
                    while not self._accepted(client, body):
                        time.sleep(0.2)
                    accepted += len(body)
            done.set()

        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        recovery = None
        if component is not None:
            while accepted < events // 3 and not done.is_set():
                time.sleep(0.01)
            before, killed_at = accepted, time.monotonic()
            self.kill(component)
            time.sleep(down_s)
            self.restart(component)
            recovery = self._wait_rows(run, before + 1, killed_at)
        sender.join(DRAIN_TIMEOUT_S)
        self._wait_rows(run, events, time.monotonic())
        time.sleep(2)  # anything redelivered late would show as a duplicate
        return Row(run, accepted, *self._counts(run), recovery_s=recovery)

    @staticmethod
    def _accepted(client: httpx.Client, body: list[dict]) -> bool:
        try:
            response = client.post("/function/ingest-traffic-sensors", json=body)
        except httpx.HTTPError:
            return False
        if response.status_code == 422:
            raise RuntimeError(f"readings refused: {response.text[:2000]}")
        return response.status_code < 300

    def _rows(self, run: str) -> int:
        try:
            return int(self.db.query("SELECT count(*) AS n FROM traffic_flow WHERE entity_id LIKE :run",
                                     {"run": f"%:faults-{run}-%"})[0]["n"])
        except Exception:  # noqa: BLE001 - PostgreSQL is down in the run that kills it
            return 0

    def _wait_rows(self, run: str, count: int, since: float) -> float:
        deadline = time.monotonic() + DRAIN_TIMEOUT_S
        while self._rows(run) < count:
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        return time.monotonic() - since

    def _counts(self, run: str) -> tuple[int, int, int, float]:
        [row] = self.db.query(
            "SELECT count(DISTINCT event_id) AS stored, count(*) - count(DISTINCT event_id) AS duplicates, "
            "coalesce(sum(intensity), 0) AS vehicles, coalesce(sum(average_vehicle_speed), 0) AS speeds "
            "FROM traffic_flow WHERE entity_id LIKE :run", {"run": f"%:faults-{run}-%"})
        return int(row["stored"]), int(row["duplicates"]), int(row["vehicles"]), float(row["speeds"])


def print_table(rows: list[Row]) -> None:
    reference = rows[0]
    print(f"{'component killed':<18} {'sent':>8} {'stored':>8} {'duplicates':>10} {'aggregate difference':>24} "
          f"{'recovery':>10}")
    for row in rows:
        difference = f"{row.vehicles - reference.vehicles:+d} veh, {row.speeds - reference.speeds:+.1f} km/h"
        recovery = f"{row.recovery_s:.1f} s" if row.recovery_s is not None else "-"
        print(f"{row.component:<18} {row.sent:>8} {row.stored:>8} {row.duplicates:>10} {difference:>24} {recovery:>10}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100, help="readings per ingest request")
    parser.add_argument("--down-s", type=float, default=3.0, help="seconds a killed component stays down")
    parser.add_argument("--only", default=",".join(COMPONENTS), help=f"components to kill, of {', '.join(COMPONENTS)}")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    if unknown := sorted(set(chosen) - set(COMPONENTS)):
        parser.error(f"--only: unknown {', '.join(unknown)}; the components are {', '.join(COMPONENTS)}")
    folder = get_settings().stack_dir / "faults-runs" / uuid.uuid4().hex[:8]
    harness = Harness(folder)
    rows: list[Row] = []
    try:
        harness.up()
        for component in [None, *chosen]:
            print(f"run: {component or 'no fault'} ({args.events} readings)", flush=True)
            rows.append(harness.run(component, args.events, args.batch, args.down_s))
    finally:
        harness.down()
        shutil.rmtree(folder, ignore_errors=True)
    print_table(rows)
    bad = [r.component for r in rows if r.stored != args.events or r.duplicates
           or (r.vehicles, round(r.speeds, 3)) != (rows[0].vehicles, round(rows[0].speeds, 3))]
    if bad:
        print(f"FAILED: lost, duplicated or different aggregates in the runs killing {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
