"""Prometheus metrics of the streaming jobs, served on ``settings.streaming_metrics_port`` (9108) at /metrics.

Processing lag is the time from an event's ``dateObserved`` until the aggregate that counts it can be queried,
i.e. until the micro-batch that read it has written its sinks. Each job observes, on its input, the event-time
quantiles of every micro-batch (:data:`LAG_QUANTILES`); when the batch is done, :func:`record_batch_lag` turns
them into lags and adds the batch's events to the histogram, each share of events at the largest lag of its
share (so the histogram's quantiles err on the high side, never the low one). Shares are whole events
(:func:`quantile_shares`), so every bucket counts events, never fractions of one.

Late events: ``smartcity_streaming_late_events_total{outcome="counted"}`` are events from before the newest window
seen that still landed in an open window; ``outcome="dropped"`` are those whose window the watermark had already
closed, which Spark would otherwise drop silently. Duplicates: ``smartcity_streaming_duplicates_total`` counts the
copies of an event (same CloudEvent source and id) each job left out (see :func:`streaming.runner.counted_once`).
"""

from __future__ import annotations

import threading
from typing import Iterable, Sequence

from prometheus_client import REGISTRY, Counter, Gauge, start_http_server
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

# Event-time quantiles taken of each micro-batch's input (0 is the oldest event, 1 the newest).
LAG_QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
LAG_BUCKETS_S = (1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300, 600, 900, 1800, 3600)


class WeightedHistogram(Collector):
    """A Prometheus histogram whose observations carry a weight (a whole number of events), per job."""

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.name, self.documentation = name, documentation
        self.buckets = tuple(float(b) for b in buckets)
        self._lock = threading.Lock()
        self._counts: dict[str, list[int]] = {}
        self._sums: dict[str, float] = {}

    def observe(self, job: str, value: float, weight: int = 1) -> None:
        with self._lock:
            counts = self._counts.setdefault(job, [0] * (len(self.buckets) + 1))
            index = next((i for i, bound in enumerate(self.buckets) if value <= bound), len(self.buckets))
            counts[index] += weight
            self._sums[job] = self._sums.get(job, 0.0) + value * weight

    def collect(self) -> Iterable[HistogramMetricFamily]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=["job"])
        with self._lock:
            for job, counts in self._counts.items():
                cumulative, running = [], 0
                for bound, count in zip((*map(str, self.buckets), "+Inf"), counts):
                    running += count
                    cumulative.append((bound, running))
                family.add_metric([job], cumulative, self._sums[job])
        yield family


PROCESSING_LAG = WeightedHistogram(
    "smartcity_streaming_processing_lag_seconds",
    "Seconds from an event's time until the aggregate counting it could be queried",
    LAG_BUCKETS_S,
)
REGISTRY.register(PROCESSING_LAG)
BATCH_LAG = Gauge(
    "smartcity_streaming_batch_lag_seconds",
    "Processing lag of the last micro-batch's events at an event-time quantile (0.01 is near the oldest)",
    ["job", "quantile"],
)
EVENTS = Counter("smartcity_streaming_events_total", "Events read by a job (all of them, late or not)", ["job"])
LATE_EVENTS = Counter(
    "smartcity_streaming_late_events_total",
    "Out-of-order events: counted in a still-open window, or dropped because the watermark had closed it",
    ["job", "topic", "outcome"],
)
DUPLICATES = Counter(
    "smartcity_streaming_duplicates_total",
    "Copies of an event a job had already read (same CloudEvent source and id), left out of its windows", ["job"],
)
DEAD_LETTERED = Counter(
    "smartcity_streaming_dead_lettered_total", "Unusable records sent to the dead-letter topic", ["topic"]
)
WATERMARK = Gauge("smartcity_streaming_watermark_seconds", "A job's event-time watermark (Unix time)", ["job"])
BATCH_DURATION = Gauge("smartcity_streaming_batch_duration_seconds", "Duration of a job's last micro-batch", ["job"])
ANOMALIES = Counter("smartcity_streaming_anomalies_total", "Anomalies flagged", ["metric"])

_server_lock = threading.Lock()
_served_ports: set[int] = set()


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve /metrics on ``host:port`` (once per process; 0 serves nothing): ``SMARTCITY_INTERNAL_HOST``, 0.0.0.0 in
    a container so Prometheus reaches it."""
    with _server_lock:
        if port and port not in _served_ports:
            start_http_server(port, addr=host)
            _served_ports.add(port)


def batch_lags(done_at_s: float, event_time_quantiles_s: Sequence[float]) -> list[float]:
    """Lag at each of :data:`LAG_QUANTILES` of a batch: ``done_at - event time``, oldest event first."""
    return [done_at_s - event_time for event_time in event_time_quantiles_s]


def quantile_shares(events: int) -> list[int]:
    """How many of ``events`` lie between each two consecutive :data:`LAG_QUANTILES`, in whole events.

    The share up to quantile q is ``round(events * q)``, so the shares add up to ``events`` exactly."""
    ranks = [round(events * quantile) for quantile in LAG_QUANTILES]
    return [high - low for low, high in zip(ranks, ranks[1:])]


def record_batch_lag(job: str, events: int, done_at_s: float, event_time_quantiles_s: Sequence[float]) -> list[float]:
    """Add a finished batch's ``events`` to the lag histogram and gauges; return the lags per quantile."""
    lags = batch_lags(done_at_s, event_time_quantiles_s)
    EVENTS.labels(job).inc(events)
    for share, lag in zip(quantile_shares(events), lags):
        # the events between two quantiles are at most as old as the lower one: count them at its lag
        if share:
            PROCESSING_LAG.observe(job, max(lag, 0.0), share)
    for quantile, lag in zip(LAG_QUANTILES, lags):
        BATCH_LAG.labels(job, str(quantile)).set(lag)
    return lags
