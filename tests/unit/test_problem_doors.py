"""Every door answers a bad request in one shape: an RFC 9457 problem+json document naming each bad field.

The doors, over the real stack.yml functions loaded through the real loader and gateway on embedded backends:
the gateway itself (unknown function, bad callback URL, body too large, wrong method), an ingest function (an
invalid reading), a CloudEvent function's server (a CloudEvent without a type) and its Kafka trigger (the same
event as a record: its dead letter carries the same problem), and an API function (a bad query parameter, no token).
"""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from fastapi.testclient import TestClient

from smartcity.api.auth import KeyRing, Role, create_local_keys, issue_token
from smartcity.backends.bus import open_bus
from smartcity.backends.database import open_database
from smartcity.runtime.gateway import build_gateway
from smartcity.runtime.trigger import FunctionTrigger
from smartcity.settings import PROJECT_ROOT
from smartcity.storage.migrate import migrate
from tests.credentials import admin_headers, ingest_headers
from tests.problem_assertions import answered_problem, problem_fields
from tests.storage_samples import embedded_settings, sample_events

MAX_BODY_BYTES = 4096
FUNCTIONS = ["ingest-weather", "store-latest", "api-incidents"]
# A binary-mode CloudEvent without its type: what the function server and the trigger must both refuse.
UNTYPED = {"specversion": "1.0", "source": "/tests/doors", "content-type": "application/json"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    settings = embedded_settings(tmp_path_factory.mktemp("doors")).model_copy(
        update={"gateway_max_body_bytes": MAX_BODY_BYTES})  # the setting, as SMARTCITY_GATEWAY_MAX_BODY_BYTES sets it
    create_local_keys(settings.secrets_dir)
    db = open_database(settings.database_url)
    migrate(db)
    db.close()
    app = build_gateway(PROJECT_ROOT / "stack.yml", settings, FUNCTIONS)
    with TestClient(app, headers=ingest_headers(settings)) as client:
        client.settings = settings
        yield client


def test_the_gateway_names_an_unknown_function(platform):
    for route in ("/function/nope", "/async-function/nope", "/system/function/nope"):
        method = platform.get if route.startswith("/system") else platform.post
        reason = answered_problem(method(route, headers=admin_headers(platform.settings)), 404)["path.function"]
        assert "'nope'" in reason and "ingest-weather" in reason


def test_the_gateway_refuses_a_callback_that_is_not_an_http_url(platform):
    answer = platform.post("/async-function/ingest-weather", json={}, headers={"X-Callback-Url": "file:///etc/passwd"})
    assert "file:///etc/passwd" in answered_problem(answer, 400)["header.x-callback-url"]


def test_the_gateway_refuses_a_body_over_its_limit_declared_or_chunked(platform):
    too_large = b"[" + b" " * MAX_BODY_BYTES + b"]"
    for route in ("/function/ingest-weather", "/async-function/ingest-weather", "/v1/incidents"):
        assert str(MAX_BODY_BYTES) in answered_problem(platform.post(route, content=too_large), 413)["body"]
    chunked = platform.post("/function/ingest-weather", content=iter([too_large[:100], too_large[100:]]))
    assert answered_problem(chunked, 413) == {"body": f"at most {MAX_BODY_BYTES} bytes"}
    small_chunks = platform.post("/function/ingest-weather", content=iter([b"[", b"]"]))
    assert "body" in answered_problem(small_chunks, 400)  # read whole, handed on: ingest refuses an empty batch


def test_the_gateway_answers_a_wrong_method_or_path_as_a_problem(platform):
    answered_problem(platform.get("/async-function/ingest-weather"), 405)
    answered_problem(platform.get("/nowhere"), 404)


def test_ingest_names_the_bad_field_of_each_refused_reading(platform):
    weather = sample_events()["weather"].model_dump(mode="json")
    answer = platform.post("/function/ingest-weather", json=[weather, {**weather, "relativeHumidity": 45}])
    errors = answered_problem(answer, 422)
    assert list(errors) == ["[1].relativeHumidity"] and answer.json()["accepted"] == 1


def test_a_cloudevent_without_a_type_is_the_same_problem_at_the_server_and_in_the_dead_letter(platform):
    event_id = uuid.uuid4().hex
    data = json.dumps(sample_events()["weather"].model_dump(mode="json")).encode()
    # store-latest is internal (the gateway does not serve it from outside): its own server answers
    answer = TestClient(platform.app.state.function_apps["store-latest"]).post("/", content=data,
                           headers={f"ce-{name}": value for name, value in {**UNTYPED, "id": event_id}.items()
                                    if name != "content-type"} | {"content-type": "application/json"})
    served = answer.json()
    assert answered_problem(answer, 400) == {"type": "required attribute is missing"}

    bus = open_bus(platform.settings.bus_url)
    try:
        headers = [(f"ce_{name}" if name != "content-type" else name, value.encode())
                   for name, value in {**UNTYPED, "id": event_id}.items()]
        bus.create_topics(["weather", "dead-letter"], platform.settings.topic_partitions)
        bus.publish("weather", data, key=b"station", headers=headers)
        bus.flush()
        trigger = FunctionTrigger(platform.app.state.functions["store-latest"])
        consumer = bus.consumer(trigger.spec.consumer_group, list(trigger.spec.topics), from_beginning=True)
        records = [record for _ in range(20) for record in consumer.poll(timeout_s=0.2)]
        consumer.close()
        assert trigger.process(records).dead_lettered == 1
        # not a valid event: dead-lettered as KafkaSource wraps a plain record, its headers kept as extensions
        [dead] = [r for r in _read(bus, "dead-letter") if dict(r.headers).get("ce_kafkaheaderceid") == event_id.encode()]
    finally:
        bus.close()
    carried = json.loads(base64.b64decode(dict(dead.headers)["ce_knativeerrordata"]))
    assert problem_fields(carried, 400) == problem_fields(served, 400)
    assert (carried["detail"], carried["instance"]) == (served["detail"], "/function/store-latest")


def _read(bus, topic: str) -> list:
    consumer = bus.consumer(f"check-{uuid.uuid4().hex[:8]}", [topic], from_beginning=True)
    try:
        return [record for _ in range(10) for record in consumer.poll(timeout_s=0.2)]
    finally:
        consumer.close()


def test_the_api_names_a_bad_query_parameter_and_a_missing_token(platform):
    token = issue_token(KeyRing(platform.settings), "doors", Role.viewer)
    bad_limit = platform.get("/v1/incidents", params={"limit": "many"}, headers={"Authorization": f"Bearer {token}"})
    assert "query.limit" in answered_problem(bad_limit, 422)
    assert "header.authorization" in answered_problem(platform.get("/v1/incidents"), 401)
    routed = platform.get("/function/api-incidents/v1/incidents", params={"limit": "many"},
                          headers={"Authorization": f"Bearer {token}"})
    assert "query.limit" in answered_problem(routed, 422)


def test_a_record_a_streaming_job_cannot_read_is_dead_lettered_with_the_same_shape(tmp_path):
    from streaming.sinks import dead_letter  # the Spark jobs' module: imported only where it is tested

    bus = open_bus(f"file://{tmp_path}/bus")
    try:
        bus.create_topics(["dead-letter"], 1)
        unreadable = {"value": '{"id": "not an event"}', "headers": {"ce_type": "city.traffic.flow.observed.v1"},
                      "topic": "traffic-sensors", "partition": 0, "offset": 7, "problem": "no dateObserved"}
        assert dead_letter(bus, [unreadable], "traffic") == 1
        [dead] = _read(bus, "dead-letter")
    finally:
        bus.close()
    carried = json.loads(base64.b64decode(dict(dead.headers)["ce_knativeerrordata"]))
    assert problem_fields(carried, 422) == {} and carried["detail"] == "no dateObserved"
    assert (carried["instance"], carried["topic"], carried["offset"]) == ("smartcity-streaming/traffic", "traffic-sensors", 7)
