"""Faults: N traffic readings through gateway -> Kafka -> trigger -> store-timeseries -> PostgreSQL and through
Kafka -> the Spark traffic job -> PostgreSQL while one component at a time is killed with SIGKILL and restarted;
then 0 lost, 0 duplicate rows and the same aggregates as the run without faults (issue 17 item 4).

    .venv/bin/python bench/faults.py [--events 100000] [--batch 100] [--down-s 3] [--only broker,trigger]
                                     [--spark | --no-spark] [--resend-every 100]

Everything runs on servers of its own, started here on free ports in a folder of its own under the stack folder,
and removed at the end: a Kafka broker and a PostgreSQL (``smartcity.stack``'s services, as the tests'
``private_stack`` fixture does), a gateway serving ``ingest-traffic-sensors`` and a trigger of
``store-timeseries`` (``smartcity functions gateway`` / ``trigger`` processes) and, with ``--spark`` (the
default), the traffic streaming job (``smartcity streaming run traffic``, checkpoints in the harness's folder:
bench/faults_spark.py), so killing them leaves the shared local stack alone. One run per row: first without
faults (the reference), then killing the broker, PostgreSQL, the trigger, the gateway and the Spark job (its
Python driver and JVM, one process group). Each run feeds both paths: the trigger stores the readings in
``traffic_flow``, the job reads the same Kafka topic and upserts 5-minute windows in ``traffic_sensor_5min`` and
``traffic_segment_5min``. Each run sends its own readings (entity ids and the road segment name the run; values
are the same in every run; event times too, shifted by whole windows from one run to the next, so the job's
watermark never drops a later run's readings), in batches, as a client would: a batch refused or unanswered is sent
again until accepted, which is safe since a reading's event id derives from its entity and time. Besides, every
``--resend-every``-th reading (1 % by default; 0: none) is sent twice, in a second request after its batch was
accepted, as a client retrying a POST whose answer it lost: both paths must count it once. A third of the way
through (the Spark job: once it has also counted some of the run's readings), the component is killed;
``--down-s`` later it is started again. Columns of the functions table:

- sent: readings accepted by the gateway (each once); resent: those sent a second time; stored: distinct event ids
  in ``traffic_flow``; duplicates: rows minus distinct ids; aggregate difference: the run's sum of vehicles and of
  speeds minus the reference run's;
- recovery: seconds from the kill until the rows stored exceed the readings accepted before the kill (what was
  in flight is stored and new readings flow again; all of them, if every reading was accepted before the kill).

The Spark table, per run: windows (rows of the run in both window tables; the tables' keys make a duplicate window
impossible, so a reading delivered twice shows as a count, not a row); events counted (the sensor windows'
``event_count`` summed: more than sent means readings counted twice, fewer means lost); flow (vehicles summed);
windows differing from the reference run's (by entity and offset from the run's start; any measure: count, flow,
mean speed and occupancy, speed percentiles); recovery (from the kill until the job has counted more readings
than were accepted before it); job exits (times the job's process ended by itself and was started again from its
checkpoint, as a supervisor would: a job whose micro-batch cannot write to PostgreSQL fails and exits).

PostgreSQL runs durable, as in production (fsync and synchronous_commit on, unlike the local development server:
a commit acknowledged and then lost in the crash would be counted lost). A SIGKILLed trigger's partitions wait
for its consumer session to time out: 10 s (``smartcity.backends.bus.kafka.SESSION_TIMEOUT_MS``).

Every wait is bounded (``DRAIN_TIMEOUT_S`` per run and path, ``READY_TIMEOUT_S`` for the gateway), so the harness
stops by itself; a run that did not converge shows as lost readings or differing windows. The 10-minute 100,000
requests/min run of issue 17 item 4 is bench/soak_api.py.
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
from typing import Callable

import httpx

PROJECT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT))

from smartcity.backends.bus import open_bus  # noqa: E402
from smartcity.backends.database import open_database  # noqa: E402
from smartcity.events import TrafficFlowObserved, city  # noqa: E402
from smartcity.runtime.readiness import wait_until_ready  # noqa: E402
from smartcity.settings import Settings, get_settings  # noqa: E402
from smartcity.stack.base import LocalService  # noqa: E402
from smartcity.stack.kafka import KafkaService  # noqa: E402
from smartcity.stack.postgres import DATABASE, ROLE, PostgresService  # noqa: E402
from smartcity.storage.migrate import migrate  # noqa: E402
from tests.ports import free_port  # noqa: E402

sys.path.insert(0, str(PROJECT / "bench"))
import faults_spark  # noqa: E402

SMARTCITY = Path(sys.executable).with_name("smartcity")
COMPONENTS = ("broker", "postgres", "trigger", "gateway", "spark")
DRAIN_TIMEOUT_S = 300
READY_TIMEOUT_S = 120
TOPIC = "traffic-sensors"
RESEND_EVERY = 100  # every 100th reading is sent twice (1 %)


def reading(run: str, i: int, start: datetime) -> dict:
    """The i-th reading of a run starting at ``start``: 200 sensors reporting in turn, values depending on i alone."""
    box = city()
    moment = start + timedelta(seconds=faults_spark.READING_EVERY_S * i)
    event = TrafficFlowObserved(
        id=f"urn:ngsi-ld:TrafficFlowObserved:faults-{run}-{i % 200}", dateObserved=moment,
        dateObservedFrom=moment - timedelta(seconds=5), dateObservedTo=moment,
        location={"type": "Point", "coordinates": [(box.west + box.east) / 2, (box.south + box.north) / 2]},
        refRoadSegment=f"urn:ngsi-ld:RoadSegment:faults-{run}", zone="Z22", laneId=i % 3, intensity=i % 7,
        intensityPerHour=720.0, occupancy=(i % 10) / 10,
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
    """A ``smartcity ...`` process of the harness, in a session of its own (killed as a group)."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.args, self.env, self.log = args, env, log
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen([str(SMARTCITY), *self.args], env=self.env,
                                            stdout=log, stderr=log, start_new_session=True)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def exited(self) -> bool:
        return self.process is not None and self.process.poll() is not None

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
    resent: int
    stored: int
    duplicates: int
    vehicles: int
    speeds: float
    recovery_s: float | None
    windows: faults_spark.Windows | None = None
    spark_recovery_s: float | None = None
    job_exits: int = 0


class Harness:
    def __init__(self, folder: Path, spark: bool) -> None:
        self.folder, self.job_exits = folder, 0
        ports = {name: free_port() for name in ("kafka_port", "kafka_controller_port", "postgres_port")}
        self.settings = Settings(stack_dir=folder, **ports)
        self.kafka, self.postgres = KafkaService(self.settings), DurablePostgres(self.settings)
        self.database_url = f"postgresql://{ROLE}@127.0.0.1:{ports['postgres_port']}/{DATABASE}"
        self.gateway_port = free_port()
        env = self.env = {
            **os.environ, "SMARTCITY_BUS_URL": f"kafka://127.0.0.1:{ports['kafka_port']}",
            "SMARTCITY_DATABASE_URL": self.database_url, "SMARTCITY_CACHE_URL": "memory://",
            "SMARTCITY_STACK_DIR": str(folder), "SMARTCITY_INGEST_ALLOW_ANONYMOUS": "true",
            "SMARTCITY_GATEWAY_RATE_PER_S": "0", "SMARTCITY_LOGS_URL": "", "SMARTCITY_LOG_LEVEL": "WARNING",
            "SMARTCITY_GATEWAY_INTERNAL_PORT": "0"}  # /healthz on the gateway's port: no fixed port to collide on
        self.gateway = Process(["functions", "gateway", "ingest-traffic-sensors", "--port", str(self.gateway_port)],
                               env, folder / "gateway.log")
        self.trigger = Process(["functions", "trigger", "store-timeseries", "--metrics-port", "0"], env,
                               folder / "trigger.log")
        self.spark = Process(faults_spark.JOB_ARGS, faults_spark.job_environment(env, str(folder / "checkpoints")),
                             folder / "spark.log") if spark else None

    def up(self) -> None:
        for service in (self.kafka, self.postgres):
            print(f"starting a private {service.name} on port {service.port}", flush=True)
            service.start()
        self.db = open_database(self.database_url)
        migrate(self.db)
        bus = open_bus(self.env["SMARTCITY_BUS_URL"])
        bus.create_topics([TOPIC], self.settings.topic_partitions)  # before the job subscribes to it
        bus.close()
        for process in self.processes():
            process.start()
        wait_until_ready(f"http://127.0.0.1:{self.gateway_port}/healthz", READY_TIMEOUT_S, self.gateway.process,
                         log=self.gateway.log)

    def processes(self) -> list[Process]:
        return [self.gateway, self.trigger, *([self.spark] if self.spark else [])]

    def down(self) -> None:
        for process in self.processes():
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
    def run(self, component: str | None, events: int, batch: int, down_s: float, start: datetime,
            resend_every: int = RESEND_EVERY) -> Row:
        run = component or "none"
        accepted = resent = 0
        done = threading.Event()

        def post(client: httpx.Client, indexes: list[int]) -> None:
            body = [reading(run, i, start) for i in indexes]
            while not self._accepted(client, body):
                time.sleep(0.2)

        def send() -> None:
            nonlocal accepted, resent
            with httpx.Client(base_url=f"http://127.0.0.1:{self.gateway_port}", timeout=30) as client:
                for first in range(0, events, batch):
                    indexes = list(range(first, min(first + batch, events)))
                    post(client, indexes)
                    accepted += len(indexes)
                    if again := resent_indexes(indexes, resend_every):
                        post(client, again)
                        resent += len(again)
            done.set()

        exits_before = self.job_exits
        sender = threading.Thread(target=send, daemon=True)
        sender.start()
        paths = {"functions": lambda: self._rows(run)}
        if self.spark:
            paths["spark"] = lambda: self._counted(run, start)
        recovery: dict[str, float] = {}
        if component is not None:
            while accepted < events // 3 and not done.is_set():
                time.sleep(0.01)
            if component == "spark":  # kill it mid-stream: once it has counted some of this run's readings
                self._wait({"spark": 1}, paths, time.monotonic())
            before, killed_at = accepted, time.monotonic()
            self.kill(component)
            time.sleep(down_s)
            self.restart(component)
            recovery = self._wait(dict.fromkeys(paths, min(before + 1, events)), paths, killed_at)
        sender.join(DRAIN_TIMEOUT_S)
        self._wait(dict.fromkeys(paths, events), paths, time.monotonic())
        time.sleep(2 + (3 if self.spark else 0))  # anything redelivered late would show (the job: a few batches)
        windows = faults_spark.read_windows(self.db, run, start) if self.spark else None
        return Row(run, accepted, resent, *self._counts(run), recovery_s=recovery.get("functions"), windows=windows,
                   spark_recovery_s=recovery.get("spark"), job_exits=self.job_exits - exits_before)

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

    def _counted(self, run: str, start: datetime) -> int:
        """Readings of the run the Spark job has counted in its sensor windows so far."""
        try:
            return faults_spark.read_windows(self.db, run, start).events
        except Exception:  # noqa: BLE001 - PostgreSQL is down in the run that kills it
            return 0

    def _wait(self, targets: dict[str, int], counts: dict[str, Callable[[], int]], since: float) -> dict[str, float]:
        """Seconds from ``since`` until each path's count reaches its target (those still short after
        ``DRAIN_TIMEOUT_S``: the seconds waited); the Spark job is started again whenever it exited by itself."""
        deadline, reached = time.monotonic() + DRAIN_TIMEOUT_S, {}
        while len(reached) < len(targets) and time.monotonic() < deadline:
            for path, target in targets.items():
                if path not in reached and counts[path]() >= target:
                    reached[path] = time.monotonic() - since
            self._supervise()
            time.sleep(0.05)
        return {path: reached.get(path, time.monotonic() - since) for path in targets}

    def _supervise(self) -> None:
        """Start the job again from its checkpoint if it exited (a micro-batch failed), as a supervisor would."""
        if self.spark and self.spark.exited():
            self.job_exits += 1
            print(f"  the Spark job exited ({self.spark.process.returncode}); starting it again", flush=True)
            self.spark.start()

    def _counts(self, run: str) -> tuple[int, int, int, float]:
        [row] = self.db.query(
            "SELECT count(DISTINCT event_id) AS stored, count(*) - count(DISTINCT event_id) AS duplicates, "
            "coalesce(sum(intensity), 0) AS vehicles, coalesce(sum(average_vehicle_speed), 0) AS speeds "
            "FROM traffic_flow WHERE entity_id LIKE :run", {"run": f"%:faults-{run}-%"})
        return int(row["stored"]), int(row["duplicates"]), int(row["vehicles"]), float(row["speeds"])


def resent_indexes(indexes: list[int], every: int) -> list[int]:
    """The readings of a batch (their indexes) sent a second time: every ``every``-th of the run (none for 0)."""
    return [i for i in indexes if every and i % every == 0]


def seconds(value: float | None) -> str:
    return f"{value:.1f} s" if value is not None else "-"


def print_table(rows: list[Row]) -> None:
    reference = rows[0]
    print("\nfunctions path: gateway -> Kafka -> trigger -> store-timeseries -> traffic_flow")
    print(f"{'component killed':<18} {'sent':>8} {'resent':>7} {'stored':>8} {'duplicates':>10} "
          f"{'aggregate difference':>24} {'recovery':>10}")
    for row in rows:
        difference = f"{row.vehicles - reference.vehicles:+d} veh, {row.speeds - reference.speeds:+.1f} km/h"
        print(f"{row.component:<18} {row.sent:>8} {row.resent:>7} {row.stored:>8} {row.duplicates:>10} "
              f"{difference:>24} {seconds(row.recovery_s):>10}")
    if reference.windows is None:
        return
    print("\nSpark path: Kafka -> traffic job -> traffic_sensor_5min / traffic_segment_5min")
    print(f"{'component killed':<18} {'sent':>8} {'windows':>8} {'events counted':>14} {'flow':>9} "
          f"{'windows != reference':>20} {'recovery':>10} {'job exits':>9}")
    for row in rows:
        windows = row.windows
        print(f"{row.component:<18} {row.sent:>8} {windows.rows:>8} {windows.events:>14} {windows.flow:>9} "
              f"{windows.differing(reference.windows):>20} {seconds(row.spark_recovery_s):>10} {row.job_exits:>9}")


def failures(rows: list[Row], events: int) -> list[str]:
    """The runs that lost, duplicated or changed anything, on either path."""
    reference = rows[0]
    bad = []
    for row in rows:
        if row.stored != events or row.duplicates or \
                (row.vehicles, round(row.speeds, 3)) != (reference.vehicles, round(reference.speeds, 3)):
            bad.append(f"{row.component} (functions path)")
        if row.windows is not None and (row.windows.events != events or row.windows.differing(reference.windows)):
            bad.append(f"{row.component} (Spark path)")
    return bad


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=100, help="readings per ingest request")
    parser.add_argument("--down-s", type=float, default=3.0, help="seconds a killed component stays down")
    parser.add_argument("--only", default=None, help=f"components to kill, of {', '.join(COMPONENTS)} (default: all; "
                                                     "without spark when --no-spark)")
    parser.add_argument("--resend-every", type=int, default=RESEND_EVERY,
                        help="send every Nth reading twice, as a client retrying a POST (0: none)")
    parser.add_argument("--spark", action=argparse.BooleanOptionalAction, default=True,
                        help="run the traffic streaming job beside the functions and compare its windows")
    args = parser.parse_args()
    known = COMPONENTS if args.spark else tuple(name for name in COMPONENTS if name != "spark")
    chosen = [name.strip() for name in (args.only or ",".join(known)).split(",") if name.strip()]
    if unknown := sorted(set(chosen) - set(known)):
        parser.error(f"--only: unknown {', '.join(unknown)}; the components are {', '.join(known)}"
                     + ("" if args.spark else " (spark needs --spark)"))
    if args.resend_every < 0:
        parser.error("--resend-every: 0 (no resends) or more")
    folder = get_settings().stack_dir / "faults-runs" / uuid.uuid4().hex[:8]
    harness = Harness(folder, args.spark)
    runs = [None, *chosen]
    first = faults_spark.first_start(len(runs), args.events, datetime.now(timezone.utc))
    rows: list[Row] = []
    if args.resend_every:
        print(f"resends: every {args.resend_every}th reading is sent twice (a second POST, as a client retrying one "
              "whose answer it lost); both paths must count it once", flush=True)
    try:
        harness.up()
        for number, component in enumerate(runs):
            print(f"run: {component or 'no fault'} ({args.events} readings)", flush=True)
            start = first + number * faults_spark.run_span(args.events)
            rows.append(harness.run(component, args.events, args.batch, args.down_s, start, args.resend_every))
    finally:
        harness.down()
        shutil.rmtree(folder, ignore_errors=True)
    print_table(rows)
    if bad := failures(rows, args.events):
        print(f"FAILED: lost, duplicated or different aggregates in the runs killing {', '.join(bad)}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
