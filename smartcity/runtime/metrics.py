"""Per-function metrics under the OpenFaaS gateway's names, so its Grafana dashboards work unchanged.

``gateway_function_invocation_total{function_name, code}``, ``gateway_functions_seconds{function_name, code}``
(a histogram of durations), ``gateway_function_invocation_started{function_name}`` and
``gateway_service_count{function_name}`` (replicas; 1 for a function loaded in this process). For triggered
invocations ``code`` is the HTTP status the same outcome would have had: 200 handled, 400 invalid, 500 failed.

Metrics a function defines about its own work (a forecast's error, say) go in :data:`FUNCTION_METRICS`; every
gateway and trigger process exposes them beside its own, on the same ``/metrics``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

__all__ = ["CONTENT_TYPE_LATEST", "FUNCTION_METRICS", "Metrics"]

FUNCTION_METRICS = CollectorRegistry(auto_describe=True)


class _FunctionMetrics:
    """A collector that yields what the functions of this process put in :data:`FUNCTION_METRICS`."""

    def collect(self):
        return FUNCTION_METRICS.collect()


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
        self.replicas = Gauge("gateway_service_count", "Replicas of each function", ["function_name"], registry=self.registry)
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
        return generate_latest(self.registry)
