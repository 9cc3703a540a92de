"""Per-function metrics under the OpenFaaS gateway's names, so its Grafana dashboards work unchanged.

``gateway_function_invocation_total{function_name, code}``, ``gateway_functions_seconds{function_name, code}``
(a histogram of durations), ``gateway_function_invocation_started{function_name}`` and
``gateway_service_count{function_name}`` (replicas; 1 for a function loaded in this process). For triggered
invocations ``code`` is the HTTP status the same outcome would have had: 200 handled, 400 invalid, 500 failed.

Metrics a function defines about its own work (a forecast's error, say) go in :data:`FUNCTION_METRICS`; every
gateway and trigger process exposes them beside its own, on the same ``/metrics``.

A gateway of several worker processes (``smartcity functions gateway --workers N``) counts in prometheus_client's
multiprocess mode (:func:`shared_across_processes`): each worker writes its counters and histograms to files in one
folder, and whichever worker answers ``/metrics`` sums them all, so a scrape is complete whichever it reaches.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from contextlib import contextmanager
from typing import Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = ["CONTENT_TYPE_LATEST", "FUNCTION_METRICS", "Metrics", "shared_across_processes"]

FUNCTION_METRICS = CollectorRegistry(auto_describe=True)
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client's: set before a process imports it


@contextmanager
def shared_across_processes() -> Iterator[str]:
    """Within: processes started from here count in multiprocess mode, in a fresh folder removed afterwards (or in
    the folder ``PROMETHEUS_MULTIPROC_DIR`` already names, left as it is)."""
    given = os.environ.get(MULTIPROCESS_DIR)
    folder = given or tempfile.mkdtemp(prefix="smartcity-metrics-")
    os.environ[MULTIPROCESS_DIR] = folder
    try:
        yield folder
    finally:
        if not given:
            os.environ.pop(MULTIPROCESS_DIR, None)
            shutil.rmtree(folder, ignore_errors=True)


class _FunctionMetrics:
    """A collector that yields what the functions of this process put in :data:`FUNCTION_METRICS`."""

    def collect(self):
        return FUNCTION_METRICS.collect()


class _AllProcesses:
    """What every process counted in the multiprocess folder, summed, and this process's collectors that keep no
    file there (the replication lag, read when asked)."""

    def collect(self):
        shared = list(MultiProcessCollector(None).collect())
        names = {family.name for family in shared}
        yield from shared
        yield from (family for family in FUNCTION_METRICS.collect() if family.name not in names)


class Metrics:
    """The metrics of one gateway or trigger process, in a registry of their own."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        labels = ["function_name", "code"]
        self.invocations = Counter("gateway_function_invocation", "Function invocations", labels, registry=self.registry)
        self.seconds = Histogram("gateway_functions_seconds", "Function time taken", labels, registry=self.registry)
        self.started = Counter(
            "gateway_function_invocation_started", "Function invocations started", ["function_name"], registry=self.registry
        )
        self.replicas = Gauge("gateway_service_count", "Replicas of each function", ["function_name"],
                              registry=self.registry, multiprocess_mode="max")  # 1 in every worker: 1
        self.registry.register(_FunctionMetrics())
        self._children: dict[tuple[str, int], tuple] = {}  # labelled once per function and code: a hot path

    def register(self, function: str) -> None:
        self.replicas.labels(function_name=function).set(1)

    def start(self, function: str) -> None:
        self.started.labels(function_name=function).inc()

    def observe(self, function: str, code: int, seconds: float, count: int = 1) -> None:
        """Record ``count`` invocations (the events of a batch) that ended with ``code`` in ``seconds`` in all."""
        children = self._children.get((function, code))
        if children is None:
            labels = {"function_name": function, "code": str(code)}
            children = self._children[function, code] = (self.invocations.labels(**labels),
                                                          self.seconds.labels(**labels))
        children[0].inc(count)
        children[1].observe(seconds)

    def invocation_count(self, function: str) -> int:
        total = 0.0
        for metric in self.invocations.collect():
            for sample in metric.samples:
                if sample.name.endswith("_total") and sample.labels.get("function_name") == function:
                    total += sample.value
        return int(total)

    def exposition(self) -> bytes:
        """The text format of this process's metrics, or of every process's in multiprocess mode."""
        if os.environ.get(MULTIPROCESS_DIR):
            return generate_latest(_AllProcesses())
        return generate_latest(self.registry)
