"""W3C trace context through the runtime: the gateway's request id and trace, the events functions make, the
trigger's deliveries and dead letters, and the log lines written on the way."""

from __future__ import annotations

import json
import logging

import httpx
import pytest
from cloudevents.core.bindings import http as sdk_http
from cloudevents.core.formats.json import JSONFormat

from smartcity.backends.bus import open_bus
from smartcity.runtime.bindings import record_of
from smartcity.runtime import tracing
from smartcity.runtime.events import new_event
from smartcity.runtime.gateway import build_gateway
from smartcity.runtime.jsonlog import JsonFormatter
from smartcity.runtime.loader import load_stack
from smartcity.runtime.trigger import FunctionTrigger
from tests.fixtures.functions.helpers import embedded_settings, read_all, reading, serving, write_stack
from tests.problem_assertions import answered_problem

PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


class Lines(logging.Handler):
    """The root logger's records as the JSON lines the platform writes."""

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(JsonFormatter())
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))


@pytest.fixture
def log_lines():
    handler, root = Lines(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield handler.lines
    root.removeHandler(handler)
    root.setLevel(level)


def _traceparent(headers) -> tracing.TraceContext:
    values = {name.lower(): value.decode() if isinstance(value, bytes) else value for name, value in headers}
    trace = tracing.parse(values.get("ce_traceparent") or values.get("ce-traceparent"))
    assert trace is not None, values
    return trace


@pytest.mark.parametrize("value", [
    None, "", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7", "00-" + "0" * 32 + "-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01", "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e473z-00f067aa0ba902b7-01",
])
def test_an_absent_or_invalid_traceparent_is_no_trace(value):
    assert tracing.parse(value) is None


def test_a_child_span_keeps_the_trace_and_its_state():
    parent = tracing.parse(PARENT.upper(), "vendor=abc")
    child = parent.child()
    assert (child.trace_id, child.flags, child.tracestate) == (TRACE_ID, "01", "vendor=abc")
    assert child.span_id != parent.span_id and len(child.span_id) == 16
    assert child.attributes() == {"traceparent": child.traceparent, "tracestate": "vendor=abc"}


def test_a_batch_continues_its_one_trace_and_names_every_trace_of_a_mixed_one():
    other = "00-" + "a" * 32 + "-00f067aa0ba902b7-01"
    same = [new_event("test.made.v1", "/tests", traceparent=PARENT, tracestate="vendor=abc"),
            new_event("test.made.v1", "/tests", traceparent="not-a-traceparent"),
            new_event("test.made.v1", "/tests", traceparent=PARENT.replace("00f067aa0ba902b7", "1" * 16))]
    trace, ids = tracing.trace_of(same)
    assert ids == [TRACE_ID] and (trace.trace_id, trace.tracestate) == (TRACE_ID, "vendor=abc")
    assert trace.span_id not in ("00f067aa0ba902b7", "1" * 16)
    assert tracing.trace_of([*same, new_event("test.made.v1", "/tests", traceparent=other.upper())]) == (
        None, [TRACE_ID, "a" * 32])
    assert tracing.trace_of(same[1:2]) == (None, [])


def test_events_continue_the_current_trace_or_start_one():
    with tracing.traced(tracing.parse(PARENT)):
        inside = tracing.of_event(new_event("test.made.v1", "/tests", {"a": 1}))
    outside = [tracing.of_event(new_event("test.made.v1", "/tests")) for _ in range(2)]
    given = new_event("test.made.v1", "/tests", traceparent=PARENT)
    assert inside.trace_id == TRACE_ID and inside.span_id != "00f067aa0ba902b7"
    assert outside[0].trace_id != outside[1].trace_id != TRACE_ID
    assert given.get_extension("traceparent") == PARENT


@pytest.fixture
def gateway(tmp_path):
    settings = embedded_settings(tmp_path)
    app = build_gateway(write_stack(tmp_path, run=tmp_path.name[-12:]), settings)
    with serving(app) as url, httpx.Client(base_url=url, timeout=10) as client:
        client.settings, client.app = settings, app
        yield client


def test_the_gateway_continues_the_callers_trace_and_names_the_request_in_log_lines(gateway, log_lines):
    message = sdk_http.to_binary(reading("s1", 2), JSONFormat())
    response = gateway.post("/function/echo", headers={**message.headers, "traceparent": PARENT,
                                                       "x-request-id": "req-42"}, content=message.body)
    assert response.status_code == 200, response.text
    assert response.headers["x-request-id"] == "req-42"
    assert tracing.parse(response.headers["traceresponse"]).trace_id == TRACE_ID
    replied = _traceparent(response.headers.items())
    [topic] = gateway.app.state.functions["echo"].spec.output_topic.split(",")
    [record] = read_all(open_bus(gateway.settings.bus_url), [topic])
    published = _traceparent(record.headers)
    assert replied == published and published.trace_id == TRACE_ID
    [line] = [line for line in log_lines if line["message"].startswith("echoing")]
    assert (line["function"], line["request_id"], line["trace_id"]) == ("echo", "req-42", TRACE_ID)
    assert line["span_id"] not in (published.span_id, "00f067aa0ba902b7")


def test_the_gateway_makes_up_a_request_id_and_a_trace_when_none_is_given(gateway):
    first, second = (gateway.get("/healthz") for _ in range(2))
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    traces = [tracing.parse(response.headers["traceresponse"]) for response in (first, second)]
    assert traces[0].trace_id != traces[1].trace_id


def test_a_malformed_request_id_is_refused_naming_the_header(gateway):
    response = gateway.get("/healthz", headers={"x-request-id": "no spaces allowed"})
    assert "header.x-request-id" in answered_problem(response, 400)


def test_the_trigger_passes_the_trace_on_to_results_and_dead_letters(tmp_path, log_lines):
    run = tmp_path.name[-12:]
    settings = embedded_settings(tmp_path)
    bus = open_bus(settings.bus_url)
    echo, doomed = load_stack(write_stack(tmp_path, run), settings, ("echo", "always-fails"))
    for function, event in ((echo, reading("t1", traceparent=PARENT)), (doomed, reading("t2", traceparent=PARENT))):
        key, value, headers = record_of(event)
        bus.create_topics(list(function.spec.topics), settings.topic_partitions)
        bus.publish(function.spec.topics[0], value, key=key, headers=headers)
        bus.flush()
        trigger = FunctionTrigger(function)
        consumer = trigger._bus().consumer(trigger.spec.consumer_group, list(trigger.spec.topics))
        records = [record for _ in range(20) for record in consumer.poll(timeout_s=0.1)][:1]
        trigger.process(records)
        consumer.close()
    [result] = read_all(bus, [f"echoed-{run}"])
    [dead] = read_all(bus, [f"dead-letter-{run}"])
    assert _traceparent(result.headers).trace_id == TRACE_ID
    assert _traceparent(dead.headers).traceparent == PARENT  # the dead letter is the event as it came
    assert {line["trace_id"] for line in log_lines if line.get("function") in ("echo", "always-fails")} == {TRACE_ID}
    bus.close()
