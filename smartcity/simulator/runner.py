"""The publishing loop: ticks of the city (simulated or replayed) go to a sink, paced by the city clock.

Pacing never drops anything: when the sink or the rate cap is slower than the city clock, the city falls
behind the wall clock (``max_lag_s`` says by how much) instead of losing events.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, Iterable

from smartcity.simulator.clock import CityClock, RateLimiter
from smartcity.simulator.recording import Recorder
from smartcity.simulator.simulation import Tick
from smartcity.simulator.sinks import Sink

FLUSH_EVERY_S = 1.0


@dataclass
class RunReport:
    """What a run published: events per topic, ticks, wall and city seconds, and the worst lag."""

    by_topic: Counter = field(default_factory=Counter)
    ticks: int = 0
    wall_s: float = 0.0
    city_s: float = 0.0
    max_lag_s: float = 0.0

    @property
    def events(self) -> int:
        return sum(self.by_topic.values())

    @property
    def events_per_s(self) -> float:
        return self.events / self.wall_s if self.wall_s else 0.0


def publish(ticks: Iterable[Tick], sink: Sink, clock: CityClock, limiter: RateLimiter | None = None,
            recorder: Recorder | None = None, on_tick: Callable[[Tick, RunReport], None] | None = None) -> RunReport:
    """Send every tick's events to ``sink`` when the city clock reaches the tick's time; flush at the end."""
    report, started, last_flush = RunReport(), time.monotonic(), time.monotonic()
    first = None
    try:
        for tick in ticks:
            first = first or tick.time
            clock.wait_until(tick.time)
            report.max_lag_s = max(report.max_lag_s, clock.lag_s(tick.time))
            for stream, events in tick.events:
                if limiter is not None:
                    limiter.take(len(events))
                sink.send(stream, events)
                report.by_topic[stream.topic] += len(events)
            if recorder is not None:
                recorder.write(tick)
            report.ticks += 1
            report.city_s = (tick.time - first).total_seconds()
            if time.monotonic() - last_flush >= FLUSH_EVERY_S:
                sink.flush()
                last_flush = time.monotonic()
            if on_tick is not None:
                on_tick(tick, report)
        sink.flush()
    finally:
        report.wall_s = time.monotonic() - started
    return report
