"""JSON log lines carry the function and event id; metrics use the OpenFaaS gateway's names."""

from __future__ import annotations

import json
import logging

from smartcity.runtime.jsonlog import JsonFormatter, log_context
from smartcity.runtime.metrics import Metrics


def _line(logger: logging.Logger, record_factory) -> dict:
    record = record_factory()
    return json.loads(JsonFormatter().format(record))


def test_log_lines_are_json_with_the_event_id_in_context():
    logger = logging.getLogger("smartcity.functions.echo")
    make = lambda: logger.makeRecord(logger.name, logging.WARNING, __file__, 1, "slow: %s", ("db",), None)  # noqa: E731
    with log_context("echo", "event-7"):
        inside = _line(logger, make)
    outside = _line(logger, make)
    assert inside["message"] == "slow: db" and inside["level"] == "WARNING"
    assert (inside["function"], inside["event_id"]) == ("echo", "event-7")
    assert "event_id" not in outside and "function" not in outside


def test_metrics_count_invocations_by_code_and_time_them():
    metrics = Metrics()
    metrics.register("echo")
    metrics.observe("echo", 200, 0.01)
    metrics.observe("echo", 200, 0.02, count=3)
    metrics.observe("echo", 500, 0.5)
    text = metrics.exposition().decode()
    assert 'gateway_function_invocation_total{code="200",function_name="echo"} 4.0' in text
    assert 'gateway_function_invocation_total{code="500",function_name="echo"} 1.0' in text
    assert 'gateway_functions_seconds_count{code="200",function_name="echo"} 2.0' in text
    assert 'gateway_service_count{function_name="echo"} 1.0' in text
    assert metrics.invocation_count("echo") == 5
