"""SIGTERM, as Kubernetes stops a pod: the gateway drains, the trigger commits (issue 18 must-show).

The gateway (a process on embedded backends) is stopped while slow requests are in flight: /healthz turns 503 at
once, every request, also one sent after the signal, is answered 2xx, and the process exits 0. The trigger (a
process on the real local Kafka) is stopped mid-stream and started again: every record handled, none twice (0
duplicate result records), and the group's committed offsets equal the topic's log end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
import yaml
from cloudevents.core.bindings import http as sdk_http
from cloudevents.core.bindings import kafka as sdk_kafka
from cloudevents.core.formats.json import JSONFormat
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from smartcity.backends.bus import open_bus
from smartcity.backends.bus.kafka import bootstrap_servers
from smartcity.backends.cache import open_cache
from smartcity.runtime.readiness import wait_until_ready
from smartcity.settings import Settings
from tests.fixtures.functions.helpers import read_all, reading, write_stack
from tests.ports import free_port

SMARTCITY = Path(sys.executable).with_name("smartcity")
SLOW_S = 2.0  # each gateway request takes this long
DRAIN_DELAY_S = 1.5


def _slow_echo_stack(directory: Path, run: str, delay_s: float, name: str = "echo") -> Path:
    """The test functions' stack, ``echo`` renamed ``name`` (its own consumer group) and sleeping ``delay_s``."""
    path = write_stack(directory, run)
    stack = yaml.safe_load(path.read_text())
    echo = stack["functions"].pop("echo")
    echo["environment"] = {"ECHO_DELAY_S": str(delay_s)}
    echo["build_args"] = {"FUNCTION_NAME": name}
    stack["functions"][name] = echo
    path.write_text(yaml.safe_dump(stack))
    return path


def test_the_gateway_answers_every_request_in_flight_on_sigterm_and_exits_0(tmp_path):
    port, internal_port = free_port(), free_port()
    url, internal = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{internal_port}"  # /healthz is on the internal one
    env = {key: value for key, value in os.environ.items() if not key.startswith("SMARTCITY_")}
    env.update({
        "SMARTCITY_BUS_URL": f"file://{tmp_path}/bus", "SMARTCITY_CACHE_URL": "memory://",
        "SMARTCITY_DATABASE_URL": f"sqlite:///{tmp_path}/smartcity.db",
        "SMARTCITY_DOCUMENTS_URL": f"embedded:///{tmp_path}/documents.db",
        "SMARTCITY_OBJECTS_URL": f"file://{tmp_path}/objects", "SMARTCITY_SECRETS_DIR": str(tmp_path),
        "SMARTCITY_GATEWAY_DRAIN_DELAY_S": str(DRAIN_DELAY_S), "SMARTCITY_GATEWAY_DRAIN_TIMEOUT_S": "20",
    })
    stack = _slow_echo_stack(tmp_path, uuid.uuid4().hex[:10], SLOW_S)
    log = tmp_path / "gateway.log"
    gateway = subprocess.Popen([str(SMARTCITY), "functions", "gateway", "echo", "--stack", str(stack), "--port",
                                str(port), "--internal-port", str(internal_port), "--workers", "1"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)
    answers: dict[str, int | str] = {}

    def call(event) -> None:
        message = sdk_http.to_binary(event, JSONFormat())
        try:
            reply = httpx.post(f"{url}/function/echo", headers=message.headers, content=message.body, timeout=30)
            answers[event.get_id()] = reply.status_code
        except httpx.HTTPError as error:
            answers[event.get_id()] = f"{type(error).__name__}: {error}"

    try:
        wait_until_ready(f"{internal}/healthz", 60, gateway, log=log)
        events = [reading(f"s{i}", i) for i in range(8)]
        callers = [threading.Thread(target=call, args=(event,)) for event in events]
        for caller in callers:
            caller.start()
        time.sleep(0.5)  # the requests are in the function's sleep
        gateway.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        health = httpx.get(f"{internal}/healthz", timeout=5)  # unready, still answering
        late = reading("late", 1.0)  # a request a load balancer still sent during the delay
        callers.append(threading.Thread(target=call, args=(late,)))
        callers[-1].start()
        for caller in callers:
            caller.join(30)
        code = gateway.wait(30)
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait(10)
    assert health.status_code == 503 and health.json()["status"] == 503, health.text
    assert answers == {event.get_id(): 200 for event in [*events, late]}, log.read_text()[-3000:]
    assert code == 0, log.read_text()[-3000:]
    for gone in (f"{url}/function/echo", f"{internal}/healthz"):  # and it is gone, from both ports
        with pytest.raises(httpx.ConnectError):
            httpx.get(gone, timeout=2)


@pytest.mark.real
def test_the_trigger_commits_what_it_handled_on_sigterm_and_a_restart_handles_the_rest_once(real_stack, tmp_path):
    run = uuid.uuid4().hex[:10]
    name = f"echo-{run}"
    env = {**os.environ, **real_stack}
    settings = Settings(**{k.removeprefix("SMARTCITY_").lower(): v for k, v in real_stack.items()})
    stack = _slow_echo_stack(tmp_path, run, 0.004, name)
    topics = {kind: f"{kind}-{run}" for kind in ("readings", "echoed", "dead-letter")}
    bus = open_bus(settings.bus_url)
    bus.create_topics(list(topics.values()), settings.topic_partitions)
    log = tmp_path / "trigger.log"

    def start() -> subprocess.Popen:
        return subprocess.Popen([str(SMARTCITY), "functions", "trigger", name, "--stack", str(stack),
                                 "--metrics-port", "0"], env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)

    def stop(trigger: subprocess.Popen) -> int:
        trigger.send_signal(signal.SIGTERM)
        try:
            return trigger.wait(60)
        finally:
            if trigger.poll() is None:
                trigger.kill()

    try:
        events = [reading(f"sensor-{i % 7}", i, partitionkey=f"sensor-{i % 7}") for i in range(1200)]
        for event in events:
            message = sdk_kafka.to_binary(event, JSONFormat())
            bus.publish(topics["readings"], message.value, key=message.key, headers=list(message.headers.items()))
        bus.flush()
        watcher = bus.consumer(f"watch-{run}", [topics["echoed"]])
        first = start()
        seen, deadline = 0, time.monotonic() + 90
        while seen < 150 and time.monotonic() < deadline and first.poll() is None:
            seen += len(watcher.poll(timeout_s=0.5))
        watcher.close()
        assert stop(first) == 0, log.read_text()[-3000:]
        assert seen >= 150, log.read_text()[-3000:]
        assert "stopping: finishing the events in hand" in log.read_text()
        # at least the `seen` the watcher read: a fresh consumer group's first polls can come back empty until Kafka
        # assigns it the partitions, which two empty polls alone mistook for an empty topic
        handled_before = len(read_all(bus, [topics["echoed"]], expected=seen, timeout_s=30))
        assert handled_before < len(events), "the trigger had finished before SIGTERM: nothing was tested"
        # what it handled it committed, and nothing else
        assert _committed(settings, f"smartcity-{name}", topics["readings"]) == handled_before

        second = start()
        handled = read_all(bus, [topics["echoed"]], expected=len(events), timeout_s=120)
        assert stop(second) == 0, log.read_text()[-3000:]
        ids = [json.loads(record.value)["input_id"] for record in handled]
        assert sorted(set(ids)) == sorted(event.get_id() for event in events)  # every record handled
        assert len(ids) - len(set(ids)) == 0  # none twice: 0 duplicate result records
        # nothing dead-lettered: the topic's log end (a fresh group's first polls can come back empty however full)
        assert _log_end(settings, topics["dead-letter"]) == 0
        assert _committed(settings, f"smartcity-{name}", topics["readings"]) == _log_end(settings, topics["readings"])
    finally:
        bus.delete_topics(list(topics.values()))
        bus.close()
        _delete_groups(settings, [f"smartcity-{name}", f"watch-{run}"])
        cache = open_cache(settings.cache_url, settings=settings)
        keys = cache.keys(f"dedup:{name}:")
        if keys:
            cache.delete(*keys)
        cache.close()


def _kafka_config(settings: Settings) -> dict[str, str]:
    return {"bootstrap.servers": bootstrap_servers(settings.bus_url, "SMARTCITY_BUS_URL")}


def _partitions(settings: Settings, topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, partition) for partition in range(settings.topic_partitions)]


def _committed(settings: Settings, group: str, topic: str) -> int:
    """The offsets ``group`` committed on ``topic``, summed over its partitions (none committed counts 0)."""
    consumer = Consumer({**_kafka_config(settings), "group.id": group, "enable.auto.commit": False})
    try:
        return sum(max(tp.offset, 0) for tp in consumer.committed(_partitions(settings, topic), timeout=30))
    finally:
        consumer.close()


def _log_end(settings: Settings, topic: str) -> int:
    consumer = Consumer({**_kafka_config(settings), "group.id": f"ends-{uuid.uuid4().hex[:8]}"})
    try:
        return sum(consumer.get_watermark_offsets(tp, timeout=30)[1] for tp in _partitions(settings, topic))
    finally:
        consumer.close()


def _delete_groups(settings: Settings, groups: list[str]) -> None:
    admin = AdminClient(_kafka_config(settings))  # kept referenced: its futures resolve only while it lives
    for group, future in admin.delete_consumer_groups(groups, request_timeout=30).items():
        try:
            future.result(timeout=30)
        except KafkaException as error:
            if error.args[0].code() != KafkaError.GROUP_ID_NOT_FOUND:  # a group that never committed does not exist
                raise AssertionError(f"consumer group {group} not deleted: {error}") from None
