"""The local gateway over real HTTP (uvicorn), with the official cloudevents SDK as the client."""

from __future__ import annotations

import json
import queue

import httpx
import pytest
from cloudevents.core.bindings import http as sdk_http
from cloudevents.core.formats.json import JSONFormat
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from smartcity.backends.bus import open_bus
from smartcity.runtime.bindings import BATCH_CONTENT_TYPE
from smartcity.runtime.gateway import build_gateway
from tests.credentials import admin_headers
from tests.fixtures.functions.helpers import embedded_settings, read_all, reading, serving, write_stack
from tests.ports import free_port
from tests.problem_assertions import answered_problem


@pytest.fixture
def gateway(tmp_path):
    (tmp_path / "hello-token").write_text("s3cret")
    # The async tests call back to listeners on 127.0.0.1 (any port): allowlisted, and private addresses allowed.
    settings = embedded_settings(tmp_path, callback_allowed_hosts="127.0.0.1", callback_allow_private=True,
                                 gateway_internal_port=free_port())
    app = build_gateway(write_stack(tmp_path, run=tmp_path.name[-12:]), settings)
    with serving(app, settings.gateway_internal_port) as url, httpx.Client(base_url=url, timeout=10) as client, \
            httpx.Client(base_url=f"http://127.0.0.1:{settings.gateway_internal_port}", timeout=10) as internal:
        client.settings = settings
        client.app = app
        client.internal = internal  # /healthz and /metrics
        yield client


def _echoed(response: httpx.Response):
    return sdk_http.from_http(sdk_http.HTTPMessage(dict(response.headers), response.content), JSONFormat())


def test_binary_and_structured_invocations_reply_with_the_result_event(gateway):
    for convert in (sdk_http.to_binary, sdk_http.to_structured):
        event = reading("s9", 2.5)
        message = convert(event, JSONFormat())
        response = gateway.post("/function/echo", headers=message.headers, content=message.body)
        assert response.status_code == 200, response.text
        reply = _echoed(response)
        assert reply.get_type() == "test.reading.echoed.v1"
        assert reply.get_id() == f"{event.get_id()}:echo"
        assert reply.get_data() == {"sensor": "s9", "doubled": 5.0, "input_id": event.get_id()}


def test_result_events_are_published_to_the_functions_output_topic(gateway):
    event = reading("s1", 1)
    message = sdk_http.to_binary(event, JSONFormat())
    assert gateway.post("/function/echo", headers=message.headers, content=message.body).status_code == 200
    [topic] = gateway.app.state.functions["echo"].spec.output_topic.split(",")
    [record] = read_all(open_bus(gateway.settings.bus_url), [topic])
    assert dict(record.headers)["ce_id"] == f"{event.get_id()}:echo".encode()
    assert record.key == b"s1"


def test_invalid_data_is_a_400_naming_the_field(gateway):
    message = sdk_http.to_binary(reading("s1", "fast"), JSONFormat())
    response = gateway.post("/function/echo", headers=message.headers, content=message.body)
    assert "data.value" in answered_problem(response, 400)
    assert response.json()["instance"] == "/function/echo/"


def test_a_redelivered_event_does_not_run_the_handler_twice(gateway):
    message = sdk_http.to_binary(reading(), JSONFormat())
    assert gateway.post("/function/echo", headers=message.headers, content=message.body).status_code == 200
    assert gateway.post("/function/echo", headers=message.headers, content=message.body).status_code == 204


def test_a_batch_goes_to_a_batch_handler_in_chunks_of_its_size(gateway):
    events = [reading(id=f"b{i}") for i in range(6)]
    body = json.dumps([{**json.loads(JSONFormat().write(e)), "data": {"n": i}} for i, e in enumerate(events)])
    response = gateway.post("/function/batch-count", headers={"content-type": BATCH_CONTENT_TYPE}, content=body)
    assert response.status_code == 200
    replies = response.json()
    assert [r["data"]["count"] for r in replies] == [4, 2]
    assert [r["data"]["sum"] for r in replies] == [0 + 1 + 2 + 3, 4 + 5]


def test_a_failing_handler_is_a_500_naming_the_error(gateway):
    message = sdk_http.to_binary(reading(), JSONFormat())
    response = gateway.post("/function/always-fails", headers=message.headers, content=message.body)
    assert answered_problem(response, 500) == {}
    assert "always fails" in response.json()["detail"] and response.json()["function"] == "always-fails"


def test_an_http_function_is_its_own_app_under_its_route(gateway):
    assert gateway.get("/function/hello-http").json() == {
        "function": "hello-http", "greeting": "bonjour", "root_path": "/function/hello-http",
        "started": True, "partitions": 5,
    }
    assert gateway.post("/function/hello-http/echo/hi", content=b"there").json() == {"word": "hi", "body": "there"}
    assert gateway.get("/function/hello-http/secret").json() == {"length": 6}


def test_unknown_functions_are_404_listing_the_known_ones(gateway):
    for route in ("/function/nope", "/async-function/nope"):
        response = gateway.post(route, content=b"{}")
        assert "echo" in answered_problem(response, 404)["path.function"]
        assert "echo" in response.json()["functions"]


def test_async_invocation_accepts_then_posts_the_result_to_the_callback(gateway):
    received: queue.Queue = queue.Queue()

    async def callback(request: Request) -> Response:
        received.put((dict(request.headers), await request.body()))
        return Response(status_code=200)

    event = reading("s4", 4)
    message = sdk_http.to_binary(event, JSONFormat())
    with serving(Starlette(routes=[Route("/done", callback, methods=["POST"])])) as callback_url:
        response = gateway.post("/async-function/echo", content=message.body,
                                headers={**message.headers, "X-Callback-Url": f"{callback_url}/done"})
        assert response.status_code == 202
        call_id = response.headers["X-Call-Id"]
        headers, body = received.get(timeout=10)

    assert headers["x-call-id"] == call_id
    assert headers["x-function-status"] == "200"
    assert headers["x-function-name"] == "echo"
    assert float(headers["x-duration-seconds"]) >= 0
    assert headers["ce-id"] == f"{event.get_id()}:echo"
    assert json.loads(body)["doubled"] == 8.0


def test_an_async_call_whose_function_raises_posts_the_500_to_the_callback(gateway):
    received: queue.Queue = queue.Queue()

    async def callback(request: Request) -> Response:
        received.put(dict(request.headers))
        return Response(status_code=200)

    with serving(Starlette(routes=[Route("/done", callback, methods=["POST"])])) as callback_url:
        response = gateway.post("/async-function/hello-http/fail", headers={"X-Callback-Url": f"{callback_url}/done"})
        assert response.status_code == 202
        headers = received.get(timeout=10)
    assert headers["x-function-status"] == "500"
    assert headers["x-call-id"] == response.headers["X-Call-Id"]


def test_system_functions_healthz_and_metrics(gateway):
    message = sdk_http.to_binary(reading(), JSONFormat())
    gateway.post("/function/echo", headers=message.headers, content=message.body)
    assert gateway.internal.get("/healthz").text == "OK"
    admin = admin_headers(gateway.settings)
    functions = {f["name"]: f for f in gateway.get("/system/functions", headers=admin).json()}
    assert set(functions) == {"echo", "flaky", "always-fails", "batch-count", "hello-http"}
    assert functions["echo"]["invocationCount"] == 1
    # no environment values, no secret names; replicas: the one instance of each in this gateway process
    assert not {"envVars", "secrets"} & set(functions["hello-http"]) and "hello-token" not in str(functions)
    assert {(f["replicas"], f["availableReplicas"]) for f in functions.values()} == {(1, 1)}
    assert functions["echo"]["annotations"]["topic"].startswith("readings-")
    assert gateway.get("/system/function/echo", headers=admin).json()["image"] == "smartcity/test-echo:latest"
    assert gateway.get("/system/functions").status_code == 401
    metrics = gateway.internal.get("/metrics").text
    assert 'gateway_function_invocation_total{code="200",function_name="echo"} 1.0' in metrics
    assert 'gateway_functions_seconds_bucket{code="200",function_name="echo",le="+Inf"} 1.0' in metrics
