"""The runtime on the real Kafka broker (and Redis for dedup), with the official cloudevents SDK as the client.

One function invoked four ways (HTTP binary, HTTP structured, async with a callback, a Kafka record); retries
and the dead-letter topic on Kafka; and a trigger process killed mid-stream (SIGKILL) then restarted: every
event in is handled or dead-lettered, none lost.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from cloudevents.core.bindings import http as sdk_http
from cloudevents.core.bindings import kafka as sdk_kafka
from cloudevents.core.formats.json import JSONFormat
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartcity.backends.bus import open_bus
from smartcity.backends.cache import open_cache
from smartcity.runtime.gateway import build_gateway
from smartcity.runtime.loader import load_stack
from smartcity.runtime.trigger import MIN_POLL_RECORDS, Triggers
from smartcity.settings import Settings
from tests.fixtures.functions.helpers import read_all, reading, serving, write_stack
from tests.problem_assertions import problem_fields

pytestmark = pytest.mark.real
SMARTCITY = Path(sys.executable).with_name("smartcity")


class KafkaRun:
    """One test's topics (named after its run id), stack file and settings on the real services."""

    def __init__(self, env: dict[str, str], directory: Path) -> None:
        self.run = uuid.uuid4().hex[:10]
        self.env = {**env, "SMARTCITY_DEDUP_TTL_S": "3600"}
        self.settings = Settings(**{k.removeprefix("SMARTCITY_").lower(): v for k, v in self.env.items()})
        self.stack = write_stack(directory, self.run)
        self.bus = open_bus(self.settings.bus_url)
        self.topics = [f"{name}-{self.run}" for name in ("readings", "flaky-in", "doomed", "echoed", "dead-letter")]
        self.bus.create_topics(self.topics, self.settings.topic_partitions)

    def topic(self, name: str) -> str:
        return f"{name}-{self.run}"

    def publish(self, topic: str, events) -> None:
        for event in events:
            message = sdk_kafka.to_binary(event, JSONFormat())  # the SDK's own Kafka binding
            self.bus.publish(self.topic(topic), message.value, key=message.key, headers=list(message.headers.items()))
        self.bus.flush()

    def close(self) -> None:
        self.bus.delete_topics(self.topics)
        self.bus.close()
        cache = open_cache(self.settings.cache_url, settings=self.settings)
        for prefix in ("dedup:echo:", "dedup:flaky:", "dedup:always-fails:", f"flaky:{self.run}:"):
            keys = cache.keys(prefix)
            if keys:
                cache.delete(*keys)
        cache.close()


@pytest.fixture
def kafka(real_stack, tmp_path):
    run = KafkaRun(real_stack, tmp_path)
    yield run
    run.close()


def _input_ids(records) -> list[str]:
    return [json.loads(record.value)["input_id"] for record in records]


def test_one_function_invoked_four_ways(kafka):
    events = {way: reading(way, 1.0) for way in ("binary", "structured", "async", "kafka")}
    callbacks: queue.Queue = queue.Queue()

    async def callback(request: Request) -> Response:
        callbacks.put((dict(request.headers), await request.body()))
        return Response()

    # The callback listener is on 127.0.0.1: allowlisted, with private addresses allowed.
    settings = kafka.settings.model_copy(update={"callback_allowed_hosts": "127.0.0.1", "callback_allow_private": True})
    gateway = build_gateway(kafka.stack, settings, ["echo"])
    with serving(gateway) as url, httpx.Client(base_url=url, timeout=30) as client, \
            serving(Starlette(routes=[Route("/cb", callback, methods=["POST"])])) as callback_url:
        for way, convert in (("binary", sdk_http.to_binary), ("structured", sdk_http.to_structured)):
            message = convert(events[way], JSONFormat())
            reply = client.post("/function/echo", headers=message.headers, content=message.body)
            assert reply.status_code == 200, reply.text
            replied = sdk_http.from_http(sdk_http.HTTPMessage(dict(reply.headers), reply.content), JSONFormat())
            assert replied.get_data()["input_id"] == events[way].get_id()

        message = sdk_http.to_binary(events["async"], JSONFormat())
        accepted = client.post("/async-function/echo", content=message.body,
                               headers={**message.headers, "X-Callback-Url": f"{callback_url}/cb"})
        assert accepted.status_code == 202
        headers, body = callbacks.get(timeout=30)
        assert headers["x-call-id"] == accepted.headers["x-call-id"] and headers["x-function-status"] == "200"
        assert json.loads(body)["input_id"] == events["async"].get_id()

    with Triggers(load_stack(kafka.stack, kafka.settings, ["echo"])):
        kafka.publish("readings", [events["kafka"]])
        echoed = read_all(kafka.bus, [kafka.topic("echoed")], expected=4, timeout_s=60)

    # Each way's result event was published to the function's output topic by the runtime.
    assert sorted(_input_ids(echoed)) == sorted(event.get_id() for event in events.values())


def test_retries_and_dead_letters_on_kafka(kafka):
    flaky = [reading(f"f{i}") for i in range(3)]
    doomed = [reading("d1")]
    invalid = [reading("bad", "not a number")]
    kafka.publish("flaky-in", flaky)
    kafka.publish("doomed", doomed)
    kafka.publish("readings", invalid)
    kafka.bus.publish(kafka.topic("readings"), b"\x00not json", headers=[("content-type", b"application/cloudevents+json")])
    kafka.bus.flush()

    with Triggers(load_stack(kafka.stack, kafka.settings, ["echo", "flaky", "always-fails"])):
        echoed = read_all(kafka.bus, [kafka.topic("echoed")], expected=3, timeout_s=60)
        dead = read_all(kafka.bus, [kafka.topic("dead-letter")], expected=3, timeout_s=60)

    assert sorted(_input_ids(echoed)) == sorted(e.get_id() for e in flaky)
    assert all(json.loads(r.value)["attempts"] == 3 for r in echoed)
    errors = {}
    for record in dead:
        headers = {k: v.decode() for k, v in record.headers}
        errors[headers["ce_id"]] = (headers["ce_knativeerrorcode"],
                                    json.loads(base64.b64decode(headers["ce_knativeerrordata"])))
    code, failed = errors[doomed[0].get_id()]
    assert code == "500" and problem_fields(failed, 500) == {}
    assert (failed["detail"], failed["function"], failed["attempts"]) == (
        f"RuntimeError: always fails: refused {doomed[0].get_id()}", "always-fails", 3)
    assert errors[invalid[0].get_id()][0] == "400" and "data.value" in problem_fields(errors[invalid[0].get_id()][1], 400)
    [not_an_event] = [error for event_id, error in errors.items() if event_id.startswith("partition:")]
    assert not_an_event[0] == "400" and "body" in problem_fields(not_an_event[1], 400)


def _start_trigger(kafka: KafkaRun, log: Path) -> subprocess.Popen:
    env = {**os.environ, **kafka.env,
           # a killed member's partitions pass to the next one after this, not Kafka's 45 s default
           "SMARTCITY_BUS_URL": kafka.env["SMARTCITY_BUS_URL"] + "?session.timeout.ms=6000"}
    return subprocess.Popen([str(SMARTCITY), "functions", "trigger", "echo", "--stack", str(kafka.stack),
                             "--metrics-port", "0"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def test_killing_the_trigger_mid_stream_loses_nothing(kafka, tmp_path):
    stack = yaml.safe_load(kafka.stack.read_text())
    stack["functions"]["echo"]["environment"] = {"ECHO_DELAY_S": "0.002"}
    kafka.stack.write_text(yaml.safe_dump(stack))
    valid = [reading(f"sensor-{i % 7}", i, partitionkey=f"sensor-{i % 7}") for i in range(1500)]
    invalid = [reading("bad", "NaN?", partitionkey=f"sensor-{i % 7}") for i in range(30)]
    kafka.publish("readings", valid[:750] + invalid + valid[750:])
    log = tmp_path / "trigger.log"

    watcher = kafka.bus.consumer(f"watch-{kafka.run}", [kafka.topic("echoed")])
    first = _start_trigger(kafka, log)
    try:
        seen = 0
        deadline = time.monotonic() + 90
        while seen < 150 and time.monotonic() < deadline and first.poll() is None:
            seen += len(watcher.poll(timeout_s=0.5))
        assert seen >= 150, log.read_text()[-3000:]
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait(10)
    watcher.close()

    second = _start_trigger(kafka, log)
    try:
        handled = read_all(kafka.bus, [kafka.topic("echoed")], expected=len(valid), timeout_s=120)
        dead = read_all(kafka.bus, [kafka.topic("dead-letter")], expected=len(invalid), timeout_s=60)
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(30) == 0, log.read_text()[-3000:]

    assert seen < len(valid), "the trigger was killed after it had finished: nothing was tested"
    handled_ids = _input_ids(handled)
    dead_ids = [{k: v.decode() for k, v in r.headers}["ce_id"] for r in dead]
    events_in = {e.get_id() for e in valid + invalid}
    assert set(handled_ids) | set(dead_ids) == events_in  # nothing lost
    assert set(handled_ids) == {e.get_id() for e in valid} and set(dead_ids) == {e.get_id() for e in invalid}
    assert len(events_in) == len(set(handled_ids)) + len(set(dead_ids))
    # Dedup: only the poll in hand at the kill (its results published, not yet marked handled) ran again, and its
    # results carry the same ids, for consumers deduplicating on (source, id).
    assert len(handled_ids) - len(set(handled_ids)) <= MIN_POLL_RECORDS
    assert len({dict(r.headers)["ce_id"] for r in handled}) == len(valid)
