"""Bench: the traffic streaming job's sustained throughput under the design's processing-lag target (p99 < 60 s).

    .venv/bin/python bench/bench_streaming.py [--seconds 40] [--rates 200,500,1000,2000,4000] [--embedded]

On the real local stack (Kafka, PostgreSQL, Redis; ``smartcity stack up`` is run) unless ``--embedded`` (file bus,
SQLite, memory cache). Spark local mode, 2 cores, the settings' trigger interval (5 s) and watermark (120 s).
Every topic, checkpoint and cache key is this run's own; its rows are deleted at the end.

1. Capacity on a backlog, with its baseline measured in the same run: ``--backlog`` events are published first,
   then read by a parse-only query (read + JSON parse + count, no window, no sink: the baseline) and by the
   traffic job (windows, percentiles, upserts, cache), each as fast as it can (availableNow); rows/s of each.
2. The simulator's default load: the city simulator (one sensor per lane, every 5 s, paced to the wall clock)
   feeds the running job for ``--seconds``; processing lag p50/p99 (event time -> aggregate upserted).
3. Rising load: synthetic sensors reporting every 5 s with event time = now, at each of ``--rates`` events/s
   for ``--seconds`` each, into the same running job; p50/p99 lag of each step. The highest rate whose p99
   stays under 60 s (and which the producer achieved) is the sustained throughput.

Lag comes from the job's own metric (streaming/metrics.py): each micro-batch's event-time quantiles against the
moment its sinks were written, each share of events counted at its oldest lag (so p99 errs high).
Every loop is bounded by its duration; the run stops by itself.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from smartcity.backends.database import open_database  # noqa: E402
from smartcity.settings import Settings  # noqa: E402
from smartcity.storage.migrate import migrate  # noqa: E402
from streaming import metrics, samples  # noqa: E402
from streaming.app import JOBS, close_context, open_context, start_jobs  # noqa: E402
from streaming.runner import await_all, listen  # noqa: E402
from streaming.session import build_session  # noqa: E402
from streaming.sources import read_events  # noqa: E402

TARGET_P99_S = 60.0
TOPIC = "traffic-sensors"


def stack_settings(embedded: bool, folder: Path) -> Settings:
    if embedded:
        return Settings(bus_url=f"file://{folder}/bus", database_url=f"sqlite:///{folder}/smartcity.db",
                        cache_url="memory://", streaming_checkpoint_dir=folder / "checkpoints", streaming_metrics_port=0)
    from smartcity import stack

    stack.up()
    env = {name.removeprefix("SMARTCITY_").lower(): value for name, value in stack.settings_env().items()}
    return Settings(**env, streaming_checkpoint_dir=folder / "checkpoints", streaming_metrics_port=0)


class SyntheticSensors:
    """``rate`` events/s from ``rate * 5`` sensors reporting every 5 s, event time = now; binary CloudEvents."""

    def __init__(self, bus, topic: str, prefix: str) -> None:
        self.bus, self.topic, self.prefix = bus, topic, prefix
        template = samples.traffic("x", datetime.now(timezone.utc), intensity=3, speed=42.0, occupancy=0.12,
                                   segment=f"{prefix}seg", zone="Z22")
        self.template = template.model_dump(mode="json")
        self.headers = [("ce_specversion", b"1.0"), ("ce_type", b"city.traffic.flow.observed.v1"),
                        ("ce_source", b"/bench/streaming"), ("content-type", b"application/json")]

    def record(self, sensor: int, at: datetime) -> tuple[bytes, bytes, list]:
        event = dict(self.template)
        stamp, start = at.isoformat(), (at - timedelta(seconds=5)).isoformat()
        event.update(id=f"urn:ngsi-ld:TrafficFlowObserved:{self.prefix}s{sensor}", dateObserved=stamp,
                     dateObservedTo=stamp, dateObservedFrom=start,
                     refRoadSegment=f"urn:ngsi-ld:RoadSegment:{self.prefix}seg{sensor // 4}")
        headers = [*self.headers, ("ce_id", uuid.uuid4().hex.encode()), ("ce_time", stamp.encode())]
        return event["id"].encode(), orjson.dumps(event), headers

    def run(self, rate: float, seconds: float) -> int:
        """Publish at ``rate`` for ``seconds`` in 100 ms slices; return how many were sent."""
        sensors, sent, started = max(1, int(rate * 5)), 0, time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            due = int(rate * elapsed) + 1
            now = datetime.now(timezone.utc)
            for index in range(sent, due):
                key, value, headers = self.record(index % sensors, now)
                self.bus.publish(self.topic, value, key=key, headers=headers)
            sent = max(sent, due)
            self.bus.flush()
            time.sleep(0.1)
        return sent


def simulator_load(bus, topic: str, prefix: str, seconds: float) -> int:
    """The city simulator's traffic sensors at its default size, paced to the wall clock; return events sent."""
    from smartcity.runtime.readings import publish_event, reading_event
    from smartcity.events import STREAMS
    from smartcity.simulator.simulation import CitySimulation, SimulatorOptions

    stream = STREAMS[TOPIC]
    start = datetime.now(timezone.utc).replace(microsecond=0)
    sent, begun = 0, time.monotonic()
    with CitySimulation(SimulatorOptions(start=start, streams=(TOPIC,))) as simulation:
        for tick in simulation.ticks():
            wait = (tick.time - start).total_seconds() - (time.monotonic() - begun)
            if wait > 0:
                time.sleep(wait)
            if time.monotonic() - begun > seconds:
                break
            for _, events in tick.events:
                for event in events:
                    event = event.model_copy(update={"id": event.id.replace(":TrafficFlowObserved:", f":TrafficFlowObserved:{prefix}")})
                    publish_event(bus, topic, reading_event(stream, event, "/bench/simulator"))
                    sent += 1
            bus.flush()
    return sent


def lag_percentiles(batches: list[tuple[int, list[float]]], wanted=(0.5, 0.99)) -> list[float | None]:
    """Percentiles of lag over the events of ``batches`` (each share of a batch at its oldest lag)."""
    weighted = []
    for events, lags in batches:
        for (low, high), lag in zip(zip(metrics.LAG_QUANTILES, metrics.LAG_QUANTILES[1:]), lags):
            weighted.append((lag, events * (high - low)))
    weighted.sort()
    total = sum(weight for _, weight in weighted)
    result = []
    for quantile in wanted:
        running, value = 0.0, None
        for lag, weight in weighted:
            running += weight
            if running >= quantile * total:
                value = lag
                break
        result.append(value)
    return result


def capacity(ctx, spark, backlog: int, generator: SyntheticSensors) -> tuple[float, float]:
    """rows/s of the parse-only baseline and of the traffic job, each over the same backlog."""
    generator.run(rate=backlog / 5.0, seconds=5.0)  # the backlog, stamped over 5 s
    started = time.monotonic()
    parse_only = (read_events(spark, ctx.source, [TOPIC]).where("problem IS NULL").writeStream.queryName("parse_only")
                  .option("checkpointLocation", str(ctx.checkpoint_dir / "parse_only")).trigger(availableNow=True)
                  .foreachBatch(lambda batch, batch_id: batch.count()).start())
    parse_only.awaitTermination(600)
    baseline = backlog / (time.monotonic() - started)
    started = time.monotonic()
    await_all(start_jobs(ctx, [JOBS["traffic"]], audit=False), timeout_s=600)
    return baseline, backlog / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=40.0, help="duration of each load step")
    parser.add_argument("--rates", default="200,500,1000,2000,4000", help="synthetic events/s of each step")
    parser.add_argument("--backlog", type=int, default=30000, help="events of the capacity step")
    parser.add_argument("--embedded", action="store_true", help="file bus, SQLite, memory cache instead of the stack")
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="bench-streaming-"))
    settings = stack_settings(args.embedded, folder)
    migrate(open_database(settings.database_url))
    spark = build_session(settings)
    prefix = f"bench-{uuid.uuid4().hex[:6]}-"
    print(f"bus {settings.bus_url}  database {settings.database_url.split('@')[-1]}  spark {settings.spark_master}  "
          f"trigger {settings.streaming_trigger_s}s  watermark {settings.streaming_watermark_s}s")

    backlog_ctx = open_context(settings, spark, trigger_s=None, topic_prefix=f"{prefix}backlog-",
                               checkpoint_dir=folder / "backlog")
    backlog_ctx.bus.create_topics([backlog_ctx.topic(TOPIC)], settings.topic_partitions)
    baseline, job_rate = capacity(backlog_ctx, spark, args.backlog,
                                  SyntheticSensors(backlog_ctx.bus, backlog_ctx.topic(TOPIC), f"{prefix}backlog-"))
    print(f"\ncapacity on a backlog of {args.backlog} events (availableNow, as fast as it goes):")
    print(f"  baseline: parse-only query          {baseline:10.0f} events/s")
    print(f"  traffic job (windows + sinks)       {job_rate:10.0f} events/s  ({job_rate / baseline:.0%} of baseline)")

    ctx = open_context(settings, spark, trigger_s=settings.streaming_trigger_s, topic_prefix=prefix,
                       checkpoint_dir=folder / "live")
    ctx.bus.create_topics([ctx.topic(TOPIC)], settings.topic_partitions)
    listener = listen(ctx)
    queries = start_jobs(ctx, [JOBS["traffic"]], audit=False)
    rows = []
    try:
        time.sleep(settings.streaming_trigger_s * 3)  # the query's first (empty) batches
        steps = [("simulator default load", None)] + [(f"{rate} events/s", float(rate)) for rate in args.rates.split(",")]
        generator = SyntheticSensors(ctx.bus, ctx.topic(TOPIC), prefix)
        for name, rate in steps:
            before = len(listener.lags.get("traffic", []))
            started = time.monotonic()
            if rate is None:
                sent = simulator_load(ctx.bus, ctx.topic(TOPIC), prefix, args.seconds)
            else:
                sent = generator.run(rate, args.seconds)
            achieved = sent / (time.monotonic() - started)
            time.sleep(settings.streaming_trigger_s * 2 + 5)  # let the last events' batch finish
            p50, p99 = lag_percentiles(listener.lags.get("traffic", [])[before:])
            rows.append((name, achieved, p50, p99))
            print(f"  {name:<24} achieved {achieved:8.0f} events/s   lag p50 {p50 or float('nan'):6.1f} s   "
                  f"p99 {p99 or float('nan'):6.1f} s", flush=True)
            if p99 is None or p99 >= TARGET_P99_S or (rate and achieved < 0.9 * rate):
                break
    finally:
        for query in queries:
            query.stop()
        for context, like in ((ctx, prefix), (backlog_ctx, prefix)):
            context.database.execute("DELETE FROM traffic_sensor_5min WHERE sensor_id LIKE :p", {"p": f"%{like}%"})
            context.database.execute("DELETE FROM traffic_segment_5min WHERE segment_id LIKE :p", {"p": f"%{like}%"})
            if hasattr(context.bus, "delete_topics"):
                context.bus.delete_topics([context.topic(TOPIC)])
            close_context(context)
        spark.stop()

    sustained = [row for row in rows[1:] if row[3] is not None and row[3] < TARGET_P99_S]
    print("\nsummary (traffic job, Spark local[2] on this machine):")
    if rows:
        name, achieved, p50, p99 = rows[0]
        print(f"  simulator default load: {achieved:.0f} events/s, processing lag p50 {p50:.1f} s, p99 {p99:.1f} s")
    if sustained:
        best = max(sustained, key=lambda row: row[1])
        print(f"  highest sustained load with p99 < {TARGET_P99_S:.0f} s: {best[1]:.0f} events/s (p99 {best[3]:.1f} s)")
    else:
        print(f"  no synthetic step kept p99 under {TARGET_P99_S:.0f} s")


if __name__ == "__main__":
    main()
