"""Bench: events per second from Kafka into PostgreSQL through the store functions, with zero loss, and the age
of the latest state in Redis under that load; beside plain PostgreSQL writes of the same rows, in one run.

    .venv/bin/python bench/bench_storage.py [--events 20000] [--sensors 500] [--rate 0] [--seconds 20]
                                            [--consumers 3] [--ingest-only]

Needs the local stack (``smartcity stack up``). Everything runs on a database, a Redis database and topics of
the bench's own, removed afterwards. Rows are traffic-sensors events (the busiest stream), ``--sensors`` sensors
reporting in turn. Figures:

1. baseline: ``COPY`` of the rows into an unpartitioned copy of ``traffic_flow`` (the ceiling of one writer),
   then the storage writer alone (``TimeSeriesWriter``: ``INSERT ... ON CONFLICT DO NOTHING``, batches of 500);
2. capacity: ``--events`` records waiting on Kafka, then ``store-timeseries`` and ``store-latest`` (the real
   functions, through the runtime's Kafka trigger, in this process) drain them: events/s until every row is in
   PostgreSQL; the row count must equal the events sent (zero loss) and nothing may be dead-lettered;
3. ingest (issue 17's target: 50,000 events/s on 2 cores): ``--events`` records waiting on Kafka, drained into
   PostgreSQL by ``--consumers`` trigger processes of ``store-timeseries`` (``smartcity functions trigger``, one
   consumer group, one consumer per partition: the topic has as many partitions), beside its ceiling in the same
   run: a bare consumer that turns each record into its row (``model_validate_json``) and ``COPY``s the rows.
   Both figures run from the first row stored to the last; 0 lost and 0 duplicate rows are checked; the load
   average is printed with them, since other work on the machine lowers both;
4. under load: events produced at ``--rate`` per second (default: 70 % of the capacity measured) for
   ``--seconds``, while Redis is sampled every 50 ms: the age of a state is when it was read minus the event's
   time (each sensor reports every ``sensors / rate`` seconds, so ages include that period), and its store lag
   is when it was stored minus the event's time. Zero loss again at the end.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson
import psycopg

from smartcity import stack
from smartcity.backends.bus import open_bus
from smartcity.backends.cache import open_cache
from smartcity.backends.database import open_database
from smartcity.events import STREAMS, TrafficFlowObserved, city
from smartcity.runtime.loader import load_function
from smartcity.runtime.readings import publish_event, reading_event
from smartcity.runtime.stackfile import read_stack
from smartcity.runtime.trigger import Triggers
from smartcity.settings import DEAD_LETTER_TOPIC, PROJECT_ROOT, Settings
from smartcity.storage.envelope import StoredEvent
from smartcity.storage.migrate import migrate
from smartcity.storage.tables import stream_table
from smartcity.storage.timeseries import TimeSeriesWriter

sys.path.insert(0, str(PROJECT_ROOT))
from tests.storage_samples import drop_database, prefixed_stack  # noqa: E402

STREAM = "traffic-sensors"
FUNCTIONS = ("store-timeseries", "store-latest")
REDIS_DB = 14
SMARTCITY = Path(sys.executable).with_name("smartcity")
SEGMENT = "urn:ngsi-ld:RoadSegment:bench"


def reading(sensor: int, moment: datetime) -> TrafficFlowObserved:
    box = city()
    return TrafficFlowObserved(
        id=f"urn:ngsi-ld:TrafficFlowObserved:bench-{sensor}", dateObserved=moment,
        dateObservedFrom=moment - timedelta(seconds=5), dateObservedTo=moment,
        location={"type": "Point", "coordinates": [(box.west + box.east) / 2, (box.south + box.north) / 2]},
        refRoadSegment=SEGMENT, laneId=sensor % 3, zone="Z22", intensity=sensor % 7, intensityPerHour=720.0,
        occupancy=0.1, averageVehicleSpeed=42.0, congested=False)


def send(bus, topic: str, event: TrafficFlowObserved) -> None:
    """``event`` published as ingest publishes it (one recipe), with a fresh id: every bench event is new."""
    publish_event(bus, topic, reading_event(STREAMS[STREAM], event, "/bench", id=uuid.uuid4().hex))


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        env = {k.removeprefix("SMARTCITY_").lower(): v for k, v in stack.settings_env().items()}
        self.unique = uuid.uuid4().hex[:8]
        base = Settings(**env)
        with psycopg.connect(base.database_url, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "bench_{self.unique}"')
        self.settings = Settings(**{**env, "database_url": base.database_url.rsplit("/", 1)[0] + f"/bench_{self.unique}",
                                    "cache_url": base.cache_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"})
        self.prefix = f"bench-{self.unique}-"
        self.db = open_database(self.settings.database_url)
        self.bus = open_bus(self.settings.bus_url)
        self.cache = open_cache(self.settings.cache_url)
        migrate(self.db)
        self.bus.create_topics([self.prefix + t for t in STREAMS] + [self.prefix + DEAD_LETTER_TOPIC], 3)

    def close(self) -> None:
        self.bus.delete_topics([self.prefix + t for t in STREAMS] + [self.prefix + DEAD_LETTER_TOPIC])
        self.bus.close()
        self.db.close()
        for prefix in ("latest:", "dedup:"):
            if keys := self.cache.keys(prefix):
                self.cache.delete(*keys)
        drop_database(self.settings.database_url.rsplit("/", 1)[0] + "/postgres", f"bench_{self.unique}")

    def rows(self) -> int:
        return int(self.db.query("SELECT count(*) AS n FROM traffic_flow")[0]["n"])

    def triggers(self) -> Triggers:
        """The store functions of stack.yml, reading the bench's topics."""
        _, specs = read_stack(PROJECT_ROOT / "stack.yml")
        functions = []
        for spec in (s for s in specs if s.name in FUNCTIONS):
            spec = spec.model_copy(update={
                "topics": tuple(self.prefix + t for t in spec.topics),
                "delivery": spec.delivery.model_copy(update={"dead_letter_topic": self.prefix + DEAD_LETTER_TOPIC})})
            functions.append(load_function(spec, self.settings))
        return Triggers(functions)

    # 1. baselines
    def baseline(self, events: list[TrafficFlowObserved]) -> tuple[float, float]:
        table = stream_table(STREAM)
        rows = [table.row(uuid.uuid4().hex, e) for e in events]
        columns = [c.name for c in table.columns]
        self.db.execute("CREATE TABLE bench_copy (LIKE traffic_flow INCLUDING DEFAULTS INCLUDING INDEXES)")
        with psycopg.connect(self.settings.database_url) as connection:
            started = time.perf_counter()
            with connection.cursor().copy(f"COPY bench_copy ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row([row[c] for c in columns])
            connection.commit()
            copied = len(rows) / (time.perf_counter() - started)
        self.db.execute("DROP TABLE bench_copy")
        writer = TimeSeriesWriter(self.db)
        stored = [StoredEvent(STREAM, uuid.uuid4().hex, "/bench", e) for e in events]
        started = time.perf_counter()
        for start in range(0, len(stored), 500):
            writer.write(stored[start:start + 500])
        written = len(stored) / (time.perf_counter() - started)
        self.db.execute("TRUNCATE traffic_flow")
        return copied, written

    # 2. capacity
    def capacity(self, events: list[TrafficFlowObserved]) -> float:
        for event in events:
            send(self.bus, self.prefix + STREAM, event)
        self.bus.flush()
        with self.triggers() as triggers:
            deadline = time.monotonic() + 600
            while (first := self.rows()) == 0:  # the consumer groups' join is not counted
                time.sleep(0.01)
            started = time.perf_counter()
            while (rows := self.rows()) < len(events):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"only {rows} of {len(events)} rows after 600 s")
                time.sleep(0.05)
            rate = (len(events) - first) / (time.perf_counter() - started)
            self.wait_handled(triggers, len(events))
            self.check_no_loss(triggers, len(events))
        return rate

    def wait_handled(self, triggers: Triggers, count: int) -> None:
        deadline = time.monotonic() + 120
        while any(triggers.metrics.invocation_count(f) < count for f in FUNCTIONS):
            if time.monotonic() > deadline:
                raise RuntimeError("the store functions did not handle every event within 120 s")
            time.sleep(0.05)

    def check_no_loss(self, triggers: Triggers, rows: int) -> None:
        """Every event sent is a row, and no function dead-lettered (code 400 or 500) any."""
        dead = sum(triggers.metrics.registry.get_sample_value(
            "gateway_function_invocation_total", {"function_name": f, "code": code}) or 0
            for f in FUNCTIONS for code in ("400", "500"))
        if self.rows() != rows or dead:
            raise RuntimeError(f"loss: {rows} rows expected, {self.rows()} stored, {dead:.0f} dead-lettered")

    # 3. ingest: trigger processes of store-timeseries beside a bare consumer -> COPY
    def ceiling(self, count: int) -> float:
        """Events/s of a bare consumer that turns each record into its row and COPYs the rows, 500 at a time."""
        table = stream_table(STREAM)
        columns = [c.name for c in table.columns]
        self.db.execute("CREATE TABLE bench_ceiling (LIKE traffic_flow INCLUDING DEFAULTS INCLUDING INDEXES)")
        consumer = self.bus.consumer(f"{self.prefix}ceiling", [self.prefix + STREAM], from_beginning=True)
        done, started = 0, None
        try:
            with psycopg.connect(self.settings.database_url) as connection:
                while done < count:
                    records = consumer.poll(timeout_s=1.0, max_records=500)
                    if not records:
                        continue
                    started = started or time.perf_counter()  # from the first record: the group's join not counted
                    with connection.cursor().copy(f"COPY bench_ceiling ({', '.join(columns)}) FROM STDIN") as copy:
                        for record in records:
                            row = table.row(dict(record.headers)["ce_id"].decode(),
                                            TrafficFlowObserved.model_validate_json(record.value))
                            copy.write_row([row[c] for c in columns])
                    connection.commit()
                    consumer.commit(records)
                    done += len(records)
            return count / (time.perf_counter() - started)
        finally:
            consumer.close()
            self.db.execute("DROP TABLE bench_ceiling")

    def ingest(self, count: int, consumers: int) -> tuple[float, int]:
        """Events/s of ``consumers`` trigger processes draining the topic into traffic_flow; the distinct rows."""
        with tempfile.TemporaryDirectory() as folder:
            stack = prefixed_stack(Path(folder), self.prefix, ["store-timeseries"])
            env = {**os.environ, **{f"SMARTCITY_{k.upper()}": str(v) for k, v in (
                ("database_url", self.settings.database_url), ("bus_url", self.settings.bus_url),
                ("cache_url", self.settings.cache_url))}, "SMARTCITY_LOG_LEVEL": "WARNING"}
            command = [str(SMARTCITY), "functions", "trigger", "store-timeseries", "--stack", str(stack),
                       "--metrics-port", "0"]
            log = open(Path(folder) / "triggers.log", "wb")
            processes = [subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log)
                         for _ in range(consumers)]
            try:
                deadline = time.monotonic() + 600
                while (first := self.rows()) == 0:  # the processes' start and the group's join are not counted
                    if time.monotonic() > deadline or any(p.poll() is not None for p in processes):
                        raise RuntimeError("the trigger processes stored nothing:\n"
                                           + (Path(folder) / "triggers.log").read_text()[-3000:])
                    time.sleep(0.01)
                started = time.perf_counter()
                while (rows := self.rows()) < count:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"only {rows} of {count} rows after 600 s")
                    time.sleep(0.02)
                rate = (count - first) / (time.perf_counter() - started)
            finally:
                for process in processes:
                    process.terminate()
                for process in processes:
                    process.wait(60)
                log.close()
        distinct = int(self.db.query("SELECT count(DISTINCT event_id) AS n FROM traffic_flow")[0]["n"])
        return rate, distinct

    # 4. under load
    def under_load(self, rate: float, seconds: float, sensors: int, already: int) -> tuple[int, list[float], list[float]]:
        ages: list[float] = []
        lags: dict[str, float] = {}
        stop = threading.Event()
        keys = [f"latest:{STREAM}:urn:ngsi-ld:TrafficFlowObserved:bench-{s}" for s in range(sensors)]

        def sample() -> None:
            while not stop.is_set():
                values = self.cache.get_many(keys)
                now = datetime.now(timezone.utc)
                for value in filter(None, values):
                    state = orjson.loads(value)
                    moment = datetime.fromisoformat(state["time"])
                    ages.append((now - moment).total_seconds())
                    lags[state["event_id"]] = (datetime.fromisoformat(state["stored_at"]) - moment).total_seconds()
                stop.wait(0.05)

        self.cache.delete(*keys)  # the capacity run's states are an hour old: not this load's
        sent = 0
        with self.triggers() as triggers:
            sampler = threading.Thread(target=sample, daemon=True)
            started = time.perf_counter()
            sampler.start()
            while (elapsed := time.perf_counter() - started) < seconds:
                due = int(elapsed * rate) + 1
                while sent < due:
                    send(self.bus, self.prefix + STREAM, reading(sent % sensors, datetime.now(timezone.utc)))
                    sent += 1
                self.bus.flush()
                time.sleep(max(0.0, (sent / rate) - (time.perf_counter() - started)))
            self.wait_handled(triggers, sent)
            stop.set()
            sampler.join()
            self.check_no_loss(triggers, already + sent)
        return sent, ages, list(lags.values())


def percentile(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else float("nan")


def report_ingest(bench: Bench, events: list[TrafficFlowObserved], consumers: int) -> None:
    """Issue 17's ingest figure beside its ceiling, from the same records, with the machine's load average."""
    for event in events:
        send(bench.bus, bench.prefix + STREAM, event)
    bench.bus.flush()
    ceiling = bench.ceiling(len(events))
    load_before = os.getloadavg()[0]
    rate, distinct = bench.ingest(len(events), consumers)
    rows = bench.rows()
    print(f"{'ceiling: bare consumer -> row -> COPY (1 process)':<58} {ceiling:>10,.0f}")
    print(f"{f'Kafka -> trigger x{consumers} -> store-timeseries -> PostgreSQL':<58} {rate:>10,.0f}  "
          f"({len(events)} sent, {distinct} stored, {rows - distinct} duplicates, {len(events) - distinct} lost)")
    print(f"load average (1 min) {load_before:.2f} before the ingest run, {os.getloadavg()[0]:.2f} after; "
          f"{os.cpu_count()} CPUs")
    if distinct != len(events) or rows != distinct:
        raise RuntimeError(f"ingest: {len(events)} sent, {distinct} stored, {rows - distinct} duplicates")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000, help="events of the capacity run")
    parser.add_argument("--sensors", type=int, default=500)
    parser.add_argument("--rate", type=float, default=0, help="events/s under load; 0: 70%% of the capacity")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--consumers", type=int, default=3, help="trigger processes of the ingest run (3 partitions)")
    parser.add_argument("--ingest-only", action="store_true", help="only the ingest run and its ceiling")
    args = parser.parse_args()
    bench = Bench(args)
    try:
        start = datetime.now(timezone.utc) - timedelta(hours=1)
        events = [reading(i % args.sensors, start + timedelta(milliseconds=i)) for i in range(args.events)]
        if args.ingest_only:
            return report_ingest(bench, events, args.consumers)
        copied, written = bench.baseline(events)
        print(f"{args.events} traffic-sensors events, {args.sensors} sensors; PostgreSQL, Kafka and Redis of the local stack")
        print(f"{'path':<58} {'events/s':>10}")
        print(f"{'baseline: COPY into an unpartitioned copy of the table':<58} {copied:>10,.0f}")
        print(f"{'baseline: storage writer alone (INSERT ON CONFLICT, 500/batch)':<58} {written:>10,.0f}")
        capacity = bench.capacity(events)
        print(f"{'Kafka -> store-timeseries + store-latest -> PostgreSQL':<58} {capacity:>10,.0f}  (zero loss: "
              f"{args.events} sent, {args.events} rows, 0 dead letters)")
        bench.db.execute("TRUNCATE traffic_flow")
        report_ingest(bench, events, args.consumers)
        rate = args.rate or 0.7 * capacity
        sent, ages, lags = bench.under_load(rate, args.seconds, args.sensors, args.events)
        print(f"under load: {sent} events at {rate:,.0f}/s for {args.seconds:g} s, zero loss; each sensor every "
              f"{args.sensors / rate:.2f} s")
        print(f"  latest state in Redis, age when read:    p50 {percentile(ages, 50):.3f} s   p99 {percentile(ages, 99):.3f} s"
              f"   ({len(ages)} reads)")
        print(f"  latest state in Redis, lag when stored:  p50 {percentile(lags, 50):.3f} s   p99 {percentile(lags, 99):.3f} s"
              f"   ({len(lags)} states)")
    finally:
        bench.close()


if __name__ == "__main__":
    main()
