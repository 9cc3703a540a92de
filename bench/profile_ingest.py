"""Profile: CPU time per event of each stage of the Kafka trigger's loop, one trigger in one process.

    .venv/bin/python bench/profile_ingest.py [--events 20000] [--function store-timeseries] [--cprofile] [--top 30]

Over bench_storage.py's stores (a database, a Redis database and topics of its own on the local stack, removed at
the end): ``--events`` traffic-sensors records are published as ingest publishes them, then the real trigger of
``--function`` (``FunctionTrigger.run``, as ``smartcity functions trigger`` runs it) drains them in this thread and
stops once every record is committed. The heap is settled first, as that command settles it
(:mod:`smartcity.runtime.heap`). Each stage is timed by wrapping what the trigger calls: the consumer's ``poll``
and ``commit``, decoding a record, validating its data, dedup, the handler (split into its own steps for the store
functions: envelope, rows, the sensors reference, partitions, the database write), publishing results; the
garbage collector's passes are a stage of their own. A stage's figure is its own thread CPU time
(``time.thread_time``, a nested stage's time taken out) per event; "trigger (rest)" is what the loop spent outside
every stage; the cost of the timing itself is measured and taken out. The CPU time of the process's other threads
(librdkafka's fetchers) is printed beside it. CPU time per event means the same on a shared machine, where
events/s do not (though a loaded machine still inflates it: compare runs made one after the other).
``--cprofile`` runs the loop under cProfile instead and prints its ``--top`` functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import importlib
import pstats
import sys
import threading
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
from smartcity.runtime import heap  # noqa: E402
from smartcity.runtime import trigger as trigger_module  # noqa: E402
from smartcity.runtime.trigger import FunctionTrigger  # noqa: E402
from smartcity.storage.partitions import PartitionKeeper  # noqa: E402
from smartcity.storage.tables import StreamTable  # noqa: E402
from smartcity.storage.timeseries import TimeSeriesWriter  # noqa: E402


class Stages:
    """Own CPU time per stage: a stage's time, less that of the stages called inside it and of the timing itself.

    Reading a thread's CPU clock is a system call (about 1.4 us here), so timing a per-event call costs more than
    some stages do: :meth:`calibrate` measures what one timed call adds to its own stage and to its caller's, and
    :meth:`figures` takes that out."""

    def __init__(self) -> None:
        self.own: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.nested: dict[str, int] = defaultdict(int)  # timed calls made inside each stage
        self._stack: list[float] = []  # per open stage: the time its nested stages took
        self._names: list[str] = []
        self.cost_inside = self.cost_outside = 0.0

    def wrap(self, stage: str, function: Callable[..., Any]) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            self._stack.append(0.0)
            self._names.append(stage)
            try:
                return function(*args, **kwargs)
            finally:
                nested = self._stack.pop()
                self._names.pop()
                spent = time.thread_time() - started
                self.own[stage] += spent - nested
                self.calls[stage] += 1
                if self._stack:
                    self._stack[-1] += spent
                    self.nested[self._names[-1]] += 1
        return timed

    def patch(self, owner: Any, name: str, stage: str) -> None:
        setattr(owner, name, self.wrap(stage, getattr(owner, name)))

    def calibrate(self, calls: int = 20_000) -> None:
        """What a timed call of nothing adds to its stage (inside) and to the stage around it (outside)."""
        probe = Stages()
        inner = probe.wrap("inner", lambda: None)
        probe.wrap("outer", lambda: [inner() for _ in range(calls)])()
        self.cost_inside, self.cost_outside = probe.own["inner"] / calls, probe.own["outer"] / calls

    def figures(self, thread: float) -> dict[str, float]:
        """Seconds per stage, the timing's cost taken out; "trigger (rest)" what the thread spent outside all."""
        own = {stage: seconds - self.calls[stage] * self.cost_inside - self.nested[stage] * self.cost_outside
               for stage, seconds in self.own.items()}
        calls = sum(self.calls.values())
        untimed = thread - calls * (self.cost_inside + self.cost_outside) - sum(own.values())
        return {**own, "trigger (rest)": own.get("trigger (rest)", 0.0) + untimed}


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
    stages.patch(TimeSeriesWriter, "_add_sensors", "handler: sensors")
    stages.patch(StreamTable, "values", "handler: rows")
    stages.patch(PartitionKeeper, "ensure", "handler: partitions")
    stages.patch(PostgresDatabase, "insert_new", "handler: COPY")
    stages.patch(trigger, "process", "trigger (rest)")


def time_gc(stages: Stages) -> None:
    """The garbage collector's passes as a stage of their own (they run inside whatever allocates)."""
    started: list[float] = []
    loop = threading.get_ident()

    def callback(phase: str, _info: dict) -> None:
        if threading.get_ident() != loop:  # another thread's pass: not this thread's CPU
            return
        if phase == "start":
            started.append(time.thread_time())
        elif started:
            spent = time.thread_time() - started.pop()
            stages.own["gc"] += spent
            if stages._stack:  # taken out of the stage it interrupted
                stages._stack[-1] += spent

    gc.callbacks.append(callback)


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
        heap.settle()  # as `smartcity functions trigger` does before its loop starts (before the collector is timed)
        stages = Stages()
        if not args.cprofile:
            stages.calibrate()
            instrument(trigger, stages)
            time_gc(stages)
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
        other = (process - thread) / args.events * 1e6
        print(f"the process's other threads (librdkafka's): {other:.1f} us/event; "
              f"the loop's thread as measured (timing or cProfile included): {thread / args.events * 1e6:.1f} us/event; "
              f"wall {wall:.1f} s for {args.events} events")
        stored = bench.rows() if args.function == "store-timeseries" else None
        if stored is not None and stored != args.events:
            raise RuntimeError(f"{args.events} events sent, {stored} rows stored")
    finally:
        bench.close()


def report(stages: Stages, events: int, function: str, thread: float) -> None:
    print(f"{function}: {events} traffic-sensors events, CPU time per event by stage (this thread; the timing's own "
          f"{stages.cost_inside * 1e6:.2f} + {stages.cost_outside * 1e6:.2f} us per timed call taken out)")
    print(f"{'stage':<24} {'us/event':>9} {'share':>6}")
    rows = stages.figures(thread)
    total = sum(rows.values())
    for stage, seconds in sorted(rows.items(), key=lambda item: -item[1]):
        print(f"{stage:<24} {seconds / events * 1e6:>9.1f} {seconds / total:>6.0%}")
    print(f"{'total':<24} {total / events * 1e6:>9.1f}")


if __name__ == "__main__":
    main()
