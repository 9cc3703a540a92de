"""Profile: CPU time per event of each stage of the Kafka trigger's loop, one trigger in one process.

    .venv/bin/python bench/profile_ingest.py [--events 20000] [--function store-timeseries] [--cprofile] [--top 30]

Over bench_storage.py's stores (a database, a Redis database and topics of its own on the local stack, removed at
the end): ``--events`` traffic-sensors records are published as ingest publishes them, then the real trigger of
``--function`` (``FunctionTrigger.run``, as ``smartcity functions trigger`` runs it) drains them in this thread and
stops once every record is committed. Each stage is timed by wrapping what the trigger calls: the consumer's
``poll`` and ``commit``, decoding a record, validating its data, dedup, the handler (split into its own steps for
the store functions: envelope, rows, partitions, the database write), publishing results. A stage's figure is its
own thread CPU time (``time.thread_time``, a nested stage's time taken out) per event; "trigger (rest)" is what
the loop spent outside every stage. The process's CPU (every thread: librdkafka's fetchers too) is printed
beside it. CPU time per event means the same on a shared machine, where events/s do not. ``--cprofile`` runs
the loop under cProfile instead and prints its ``--top`` functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import importlib
import pstats
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from bench_storage import STREAM, Bench, reading, send  # noqa: E402

from smartcity.backends.bus.kafka import KafkaConsumer  # noqa: E402
from smartcity.backends.database.postgres import PostgresDatabase  # noqa: E402
from smartcity.runtime import trigger as trigger_module  # noqa: E402
from smartcity.runtime.trigger import FunctionTrigger  # noqa: E402
from smartcity.storage.partitions import PartitionKeeper  # noqa: E402
from smartcity.storage.tables import StreamTable  # noqa: E402
from smartcity.storage.timeseries import TimeSeriesWriter  # noqa: E402


class Stages:
    """Own CPU time per stage: a stage's time, less that of the stages called inside it."""

    def __init__(self) -> None:
        self.own: dict[str, float] = defaultdict(float)
        self._stack: list[float] = []  # per open stage: the time its nested stages took

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            self._stack.append(0.0)
            try:
                return function(*args, **kwargs)
            finally:
                nested = self._stack.pop()
                spent = time.thread_time() - started
                self.own[stage] += spent - nested
                if self._stack:
                    self._stack[-1] += spent
        return timed

    def patch(self, owner: Any, name: str, stage: str) -> None:
        setattr(owner, name, self.wrap(stage, getattr(owner, name)))


def instrument(trigger: FunctionTrigger, stages: Stages) -> None:
    """Wrap every stage the trigger's loop goes through (class attributes: this process runs one trigger)."""
    runner = trigger.runner
    stages.patch(KafkaConsumer, "poll", "poll")
    stages.patch(KafkaConsumer, "commit", "commit")
    stages.patch(trigger_module, "event_from_record", "decode")
    stages.patch(runner, "typed", "validate")
    stages.patch(runner.dedup, "unseen", "dedup")
    stages.patch(runner.dedup, "mark", "dedup")
    stages.patch(runner, "handle", "handler (rest)")
    stages.patch(runner.publisher, "publish", "publish")
    stages.patch(runner.publisher, "flush", "publish")
    handler = importlib.import_module(runner.handler.handle.__module__)
    if hasattr(handler, "stored_events"):
        stages.patch(handler, "stored_events", "handler: envelope")
    stages.patch(TimeSeriesWriter, "write", "handler: rows")
    stages.patch(StreamTable, "row", "handler: rows")
    stages.patch(PartitionKeeper, "ensure", "handler: partitions")
    stages.patch(PostgresDatabase, "insert_new", "handler: COPY")
    stages.patch(trigger, "process", "trigger (rest)")


def drain(trigger: FunctionTrigger, count: int) -> None:
    """Run the trigger until ``count`` records are handled (the loop commits them before it sees the stop)."""
    process = trigger.process
    handled = 0

    def counting(records):
        nonlocal handled
        outcome = process(records)
        handled += outcome.handled + outcome.dead_lettered
        if handled >= count:
            trigger.stop()
        return outcome

    trigger.process = counting
    trigger.run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--sensors", type=int, default=500)
    parser.add_argument("--function", default="store-timeseries", choices=("store-timeseries", "store-latest"))
    parser.add_argument("--cprofile", action="store_true", help="cProfile the loop instead of timing stages")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    bench = Bench(args)
    try:
        start = datetime.now(timezone.utc) - timedelta(hours=1)
        for i in range(args.events):
            send(bench.bus, bench.prefix + STREAM, reading(i % args.sensors, start + timedelta(milliseconds=i)))
        bench.bus.flush()
        (trigger,) = [t for t in bench.triggers().triggers if t.name == args.function]
        trigger.runner.function.context.database  # opened now: the connection is not part of the first poll
        stages = Stages()
        if not args.cprofile:
            instrument(trigger, stages)
        profiler = cProfile.Profile() if args.cprofile else None
        thread0, process0, wall0 = time.thread_time(), time.process_time(), time.perf_counter()
        if profiler:
            profiler.runcall(drain, trigger, args.events)
        else:
            drain(trigger, args.events)
        thread = time.thread_time() - thread0
        process, wall = time.process_time() - process0, time.perf_counter() - wall0
        if profiler:
            pstats.Stats(profiler).sort_stats("tottime").print_stats(args.top)
        else:
            report(stages, args.events, args.function, thread)
        print(f"loop thread {thread / args.events * 1e6:.1f} us/event; whole process {process / args.events * 1e6:.1f} "
              f"us/event (librdkafka's threads too); wall {wall:.1f} s for {args.events} events")
        stored = bench.rows() if args.function == "store-timeseries" else None
        if stored is not None and stored != args.events:
            raise RuntimeError(f"{args.events} events sent, {stored} rows stored")
    finally:
        bench.close()


def report(stages: Stages, events: int, function: str, thread: float) -> None:
    print(f"{function}: {events} traffic-sensors events, CPU time per event by stage (this thread)")
    print(f"{'stage':<24} {'us/event':>9} {'share':>6}")
    timed = sum(stages.own.values())
    rows = {**stages.own, "trigger (rest)": stages.own.get("trigger (rest)", 0.0) + thread - timed}
    for stage, seconds in sorted(rows.items(), key=lambda item: -item[1]):
        print(f"{stage:<24} {seconds / events * 1e6:>9.1f} {seconds / thread:>6.0%}")


if __name__ == "__main__":
    main()
