"""Bench: events per second the simulator publishes, and how many traffic sensors it sustains at a 5 s cadence.

    .venv/bin/python bench/bench_simulator.py [--minutes 10] [--sensors 2000] [--kafka-url kafka://127.0.0.1:9092]

Part 1, throughput: the whole city (all eight streams, ``--sensors`` traffic sensors with scale-out replicas)
runs unpaced for ``--minutes`` of city time into (a) a sink that drops events, the cost of simulating and
encoding alone: the baseline, (b) the embedded file log, (c) Kafka. Every row simulates the same events (same
seed). Part 2, capacity: traffic only, at growing sensor counts, into Kafka: the wall time one 5 s tick of city
time takes. A count is sustained when a tick takes at most 5 s, i.e. the simulator keeps up with real time.
Kafka is the one named by ``--kafka-url``, else by ``SMARTCITY_BUS_URL`` when that is a ``kafka://`` URL, else
the local stack's (``smartcity stack up kafka``); when it cannot be reached its rows say so.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

from smartcity.backends.bus import open_bus
from smartcity.errors import ConfigurationError
from smartcity.events import TOPICS
from smartcity.privacy import Pseudonymizer
from smartcity.simulator.clock import CityClock
from smartcity.simulator.runner import RunReport, publish
from smartcity.simulator.simulation import CitySimulation, SimulatorOptions
from smartcity.simulator.sinks import BusSink, cloud_event
from smartcity.runtime.bindings import record_of

DEFAULT_KAFKA_URL = "kafka://127.0.0.1:9092"
START = datetime(2026, 3, 2, 7, 45, tzinfo=ZoneInfo("Europe/Berlin"))
CADENCE_S = 5


class EncodeOnlySink:
    """Encodes each event into its Kafka record like the bus sink, and drops it: the baseline."""

    def send(self, stream, events):
        for event in events:
            record_of(cloud_event(stream, event))

    def flush(self):
        pass

    def close(self):
        pass


def run(sink, minutes: float, sensors: int, streams=TOPICS) -> RunReport:
    options = SimulatorOptions(start=START, seed=1, sensors=sensors, duration_s=minutes * 60, streams=streams)
    with CitySimulation(options) as simulation:
        return publish(simulation.ticks(), sink, CityClock(START, speed=0))


def bus_sink(url: str) -> tuple[BusSink, list[str]]:
    prefix = f"bench-sim-{uuid.uuid4().hex[:8]}."
    sink = BusSink(open_bus(url), 3, lambda: Pseudonymizer(b"bench-key", 3), topic_prefix=prefix)
    return sink, [prefix + topic for topic in TOPICS]


def measured(url: str, minutes: float, sensors: int, streams=TOPICS) -> RunReport:
    sink, topics = bus_sink(url)
    try:
        return run(sink, minutes, sensors, streams)
    finally:
        sink.bus.delete_topics(topics)
        sink.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10, help="city minutes of the throughput runs")
    parser.add_argument("--sensors", type=int, default=2000, help="traffic sensors of the throughput runs")
    parser.add_argument("--sizes", default="2000,10000,25000,50000,100000", help="sensor counts of the capacity runs")
    parser.add_argument("--ticks", type=int, default=4, help="5 s ticks per capacity run")
    parser.add_argument("--kafka-url", default=None)
    args = parser.parse_args()
    env_url = os.environ.get("SMARTCITY_BUS_URL", "")
    kafka_url = args.kafka_url or (env_url if env_url.startswith("kafka://") else DEFAULT_KAFKA_URL)

    print(f"throughput: all 8 streams, {args.sensors} traffic sensors, {args.minutes:g} city minutes, unpaced")
    print(f"{'sink':<34} {'events':>9} {'wall s':>8} {'events/s':>10}")
    with tempfile.TemporaryDirectory() as folder:
        rows = [("encode only (baseline)", None), ("file log (embedded)", f"file://{folder}/bus"),
                (f"Kafka {kafka_url}", kafka_url)]
        for label, url in rows:
            try:
                report = run(EncodeOnlySink(), args.minutes, args.sensors) if url is None else \
                    measured(url, args.minutes, args.sensors)
            except ConfigurationError as error:
                print(f"{label:<34} skipped: {error}")
                continue
            print(f"{label:<34} {report.events:>9} {report.wall_s:>8.2f} {report.events_per_s:>10,.0f}")

    print(f"\ncapacity: traffic-sensors only into Kafka, {args.ticks} ticks of {CADENCE_S} s city time each")
    print(f"{'sensors':>8} {'wall s per tick':>16} {'events/s':>10}  sustained at {CADENCE_S} s?")
    best = 0
    for sensors in (int(size) for size in args.sizes.split(",")):
        try:
            report = measured(kafka_url, args.ticks * CADENCE_S / 60, sensors, streams=("traffic-sensors",))
        except ConfigurationError as error:
            print(f"{sensors:>8} skipped: {error}")
            break
        per_tick = report.wall_s / max(1, report.ticks)
        sustained = per_tick <= CADENCE_S
        best = max(best, sensors) if sustained else best
        print(f"{sensors:>8} {per_tick:>16.3f} {report.events_per_s:>10,.0f}  {'yes' if sustained else 'no'}")
        if not sustained:
            break
    if best:
        print(f"largest count measured as sustained: {best} sensors every {CADENCE_S} s")


if __name__ == "__main__":
    started = time.perf_counter()
    main()
    print(f"(bench took {time.perf_counter() - started:.0f} s)")
