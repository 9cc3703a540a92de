"""The trigger over the embedded bus (file://): retries, dead-letter with the reason, dedup, order, restarts."""

from __future__ import annotations

import base64
import json

import pytest
from cloudevents.core.v1.event import CloudEvent

from smartcity.backends.bus import open_bus
from smartcity.runtime.bindings import record_of
from smartcity.runtime.loader import load_stack
from smartcity.runtime.trigger import FunctionTrigger, Triggers
from tests.fixtures.functions.helpers import embedded_settings, read_all, reading, write_stack
from tests.problem_assertions import problem_fields


@pytest.fixture
def env(tmp_path):
    run = tmp_path.name[-12:].replace("_", "-")
    settings = embedded_settings(tmp_path)
    bus = open_bus(settings.bus_url)

    def functions(*names):
        return load_stack(write_stack(tmp_path, run), settings, names)

    def publish(topic, events):
        bus.create_topics([topic], settings.topic_partitions)
        for event in events:
            key, value, headers = record_of(event) if isinstance(event, CloudEvent) else event
            bus.publish(topic, value, key=key, headers=headers)
        bus.flush()

    env = type("Env", (), {})()
    env.run, env.settings, env.bus, env.functions, env.publish = run, settings, bus, functions, publish
    yield env
    bus.close()


def _headers(record) -> dict[str, str]:
    return {name: value.decode() for name, value in record.headers}


def _error(record) -> dict:
    return json.loads(base64.b64decode(_headers(record)["ce_knativeerrordata"]))


def _poll_all(trigger: FunctionTrigger, expected: int) -> list:
    consumer = trigger._bus().consumer(trigger.spec.consumer_group, list(trigger.spec.topics))
    records = []
    for _ in range(20):
        if len(records) >= expected:
            break
        records += consumer.poll(timeout_s=0.1)
    return consumer, records


def test_a_handler_failing_twice_is_retried_and_succeeds(env):
    [flaky] = env.functions("flaky")
    events = [reading(f"f{i}") for i in range(3)]
    env.publish(f"flaky-in-{env.run}", events)
    trigger = FunctionTrigger(flaky)
    consumer, records = _poll_all(trigger, 3)
    outcome = trigger.process(records)
    assert (outcome.handled, outcome.dead_lettered, outcome.complete) == (3, 0, True)
    recovered = read_all(env.bus, [f"echoed-{env.run}"])
    assert sorted(json.loads(r.value)["input_id"] for r in recovered) == sorted(e.get_id() for e in events)
    assert all(json.loads(r.value)["attempts"] == 3 for r in recovered)
    consumer.close()


def test_always_failing_events_end_in_the_dead_letter_topic_with_their_error(env):
    [doomed] = env.functions("always-fails")
    event = reading("d1")
    env.publish(f"doomed-{env.run}", [event])
    trigger = FunctionTrigger(doomed)
    consumer, records = _poll_all(trigger, 1)
    assert trigger.process(records).dead_lettered == 1
    [dead] = read_all(env.bus, [f"dead-letter-{env.run}"])
    headers = _headers(dead)
    assert headers["ce_id"] == event.get_id() and headers["ce_type"] == "test.reading.v1"
    assert headers["ce_knativeerrorcode"] == "500"
    assert headers["ce_knativeerrordest"] == "/function/always-fails"
    assert _error(dead) == {"type": "about:blank", "title": "Internal Server Error", "status": 500,
                            "detail": f"RuntimeError: always fails: refused {event.get_id()}",
                            "instance": "/function/always-fails", "errors": [],
                            "function": "always-fails", "attempts": 3}
    assert json.loads(dead.value) == {"sensor": "d1", "value": 1.5}
    consumer.close()


def test_invalid_records_and_data_go_to_the_dead_letter_topic_with_the_reason(env):
    [echo] = env.functions("echo")
    env.publish(f"readings-{env.run}", [
        reading("bad", "not a number"),
        (None, b"garbage", [("ce_type", b"t.v1"), ("ce_source", b"/s")]),
        (b"k", b'{"sensor": "plain", "value": 3}', [("content-type", b"application/json")]),
    ])
    trigger = FunctionTrigger(echo)
    consumer, records = _poll_all(trigger, 3)
    outcome = trigger.process(records)
    assert (outcome.handled, outcome.dead_lettered) == (1, 2)
    dead = {_headers(r)["ce_knativeerrorcode"] + ":" + _headers(r)["ce_type"]: r
            for r in read_all(env.bus, [f"dead-letter-{env.run}"])}
    assert set(dead) == {"400:test.reading.v1", "400:dev.knative.kafka.event"}
    assert "data.value" in problem_fields(_error(dead["400:test.reading.v1"]), 400)
    not_an_event = dead["400:dev.knative.kafka.event"]
    assert set(problem_fields(_error(not_an_event), 400)) == {"id", "specversion"}
    assert _error(not_an_event)["instance"] == f"/function/{echo.name}"
    assert not_an_event.value == b"garbage"
    assert _headers(not_an_event)["ce_kafkaheadercetype"] == "t.v1"
    [echoed] = read_all(env.bus, [f"echoed-{env.run}"])
    assert json.loads(echoed.value)["input_id"].startswith("partition:")  # the wrapped plain record
    consumer.close()


def test_a_batch_function_gets_chunks_and_a_failed_batch_is_split(env):
    [batch] = env.functions("batch-count")
    ticks = [CloudEvent({"type": "t.v1", "source": "/t", "id": f"g{i}"}, {"n": n})
             for i, n in enumerate([1, 2, 3, 4, 5, -6, 7])]
    env.publish(f"batch-in-{env.run}", [(b"one-partition", *record_of(tick)[1:]) for tick in ticks])
    trigger = FunctionTrigger(batch)
    consumer, records = _poll_all(trigger, 7)
    outcome = trigger.process(records)
    assert (outcome.handled, outcome.dead_lettered) == (6, 1)
    counted = [json.loads(r.value) for r in read_all(env.bus, [f"counted-{env.run}"], expected=3)]
    assert sorted(c["count"] for c in counted) == [1, 1, 4]  # 4 at once; then the failed 3 split, one by one
    [dead] = read_all(env.bus, [f"dead-letter-{env.run}"], expected=1)
    assert _headers(dead)["ce_id"] == "g5" and problem_fields(_error(dead), 500) == {}
    assert "negative tick" in _error(dead)["detail"] and _error(dead)["function"] == batch.name
    consumer.close()


def test_a_poll_with_a_bad_record_and_a_repeated_event_dead_letters_one_and_hands_each_event_on_once(env):
    [batch] = env.functions("batch-count")
    source = f"/t/{env.run}"  # the embedded cache's dedup marks outlive a test: ids of this test's own
    ticks = [CloudEvent({"type": "t.v1", "source": source, "id": f"g{i}"}, {"n": i}) for i in range(3)]
    bad = CloudEvent({"type": "t.v1", "source": source, "id": "bad"}, {"n": "not a number"})
    env.publish(f"batch-in-{env.run}", [(b"one-partition", *record_of(event)[1:])
                                        for event in (ticks[0], bad, ticks[1], ticks[0], ticks[2])])
    trigger = FunctionTrigger(batch)
    consumer, records = _poll_all(trigger, 5)
    outcome = trigger.process(records)
    assert (outcome.handled, outcome.dead_lettered) == (4, 1)
    [counted] = [json.loads(r.value) for r in read_all(env.bus, [f"counted-{env.run}"], expected=1)]
    assert counted == {"count": 3, "sum": 3, "ids": ["g0", "g1", "g2"]}  # g0 once, though it came twice
    [dead] = read_all(env.bus, [f"dead-letter-{env.run}"], expected=1)
    assert _headers(dead)["ce_id"] == "bad" and "data.n" in problem_fields(_error(dead), 400)
    trigger.process(records)  # redelivered: the handled events are skipped, the bad one dead-lettered again
    assert len(read_all(env.bus, [f"counted-{env.run}"])) == 1
    consumer.close()


def test_redelivered_records_do_not_run_the_handler_twice(env):
    [echo] = env.functions("echo")
    env.publish(f"readings-{env.run}", [reading(f"s{i}") for i in range(4)])
    trigger = FunctionTrigger(echo)
    consumer, records = _poll_all(trigger, 4)
    trigger.process(records)
    trigger.process(records)  # as if the commit had been lost and the records came again
    assert len(read_all(env.bus, [f"echoed-{env.run}"])) == 4
    consumer.close()


def test_order_is_kept_per_partition(env):
    [echo] = env.functions("echo")
    events = [reading(f"sensor-{n % 3}", value=n, partitionkey=f"sensor-{n % 3}") for n in range(30)]
    env.publish(f"readings-{env.run}", events)
    with Triggers([echo]):
        echoed = read_all(env.bus, [f"echoed-{env.run}"], expected=30)
    by_sensor: dict[str, list[float]] = {}
    for record in sorted(echoed, key=lambda r: (r.partition, r.offset)):
        data = json.loads(record.value)
        by_sensor.setdefault(data["sensor"], []).append(data["doubled"])
    assert all(values == sorted(values) for values in by_sensor.values())


def test_stopping_mid_stream_and_restarting_loses_nothing(env):
    [echo] = env.functions("echo")
    echo.context.environment["ECHO_DELAY_S"] = "0.003"  # 400 events: over a second of work, four polls
    events = [reading(f"s{i % 5}", i) for i in range(400)]
    env.publish(f"readings-{env.run}", events)
    with Triggers([echo]):  # stopped (on leaving) as soon as its first results are out
        read_all(env.bus, [f"echoed-{env.run}"], expected=1, idle_polls=0)
    before_restart = len(read_all(env.bus, [f"echoed-{env.run}"]))
    assert 0 < before_restart < len(events), "the stop did not come mid-stream: nothing was tested"
    with Triggers([echo]):
        echoed = read_all(env.bus, [f"echoed-{env.run}"], expected=len(events))
    seen = {json.loads(r.value)["input_id"] for r in echoed}
    assert seen == {e.get_id() for e in events}


@pytest.mark.parametrize("outage", [ConnectionRefusedError("database down"), TimeoutError("no answer")])
def test_a_backend_outage_dead_letters_nothing_and_commits_nothing_until_it_is_back(env, outage):
    import dataclasses

    [doomed] = env.functions("always-fails")
    events = [reading(f"o{i}", i) for i in range(3)]
    env.publish(f"doomed-{env.run}", events)
    trigger = FunctionTrigger(doomed)
    calls = []

    def down(event, context):
        calls.append(event.id)
        raise outage

    trigger.runner.handler = dataclasses.replace(trigger.runner.handler, handle=down)
    consumer, records = _poll_all(trigger, 3)
    outcome = trigger.process(records)
    assert (outcome.complete, outcome.handled, outcome.dead_lettered) == (False, 0, 0)
    assert len(calls) == 3  # the first event, retried: the others wait, in order, for the backend
    assert read_all(env.bus, [f"dead-letter-{env.run}"]) == []
    consumer.close()  # not committed: a new consumer of the group gets them all again

    trigger.runner.handler = dataclasses.replace(trigger.runner.handler, handle=lambda event, context: None)
    consumer, again = _poll_all(trigger, 3)
    assert [r.offset for r in again] == [r.offset for r in records]
    assert trigger.process(again).handled == 3
    consumer.close()


def test_only_kafka_triggered_functions_get_a_trigger(env):
    with pytest.raises(ValueError, match="hello-http"):
        Triggers(env.functions("echo", "hello-http"))
