"""Health and metrics on the gateway's internal port only (issue 16; smartcity/runtime/internal.py).

The doors' gateway (every function of stack.yml) is asked on its public port and, by a client whose requests
come in on ``gateway_internal_port``, on its internal one; a small gateway is then served by uvicorn on two real
sockets, and one without an internal port keeps both paths on its one port.
"""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from starlette.routing import Mount, Route

from smartcity.runtime.draining import Drain
from smartcity.runtime.gateway import create_gateway
from smartcity.runtime.internal import INTERNAL_PATHS
from tests.fixtures.functions.helpers import serving
from tests.ports import free_port
from tests.problem_assertions import answered_problem

REFUSED_THERE = ("/function/ingest-weather", "/async-function/ingest-weather", "/system/functions", "/v1/openapi.json",
                 "/function/echo", "/")


@pytest.fixture(scope="module")
def internal(doors) -> TestClient:
    """The doors' gateway, as a request on its internal port reaches it (no lifespan: the doors' client ran it)."""
    return TestClient(doors.client.app, base_url=f"http://testserver:{doors.settings.gateway_internal_port}")


def test_the_public_port_has_no_health_or_metrics(doors):
    assert doors.settings.gateway_internal_port  # the default: an internal port of their own
    for path in INTERNAL_PATHS:
        for headers in ({}, doors.headers["admin"]):
            answered_problem(doors.client.get(path, headers=headers), 404)


def test_the_internal_port_serves_health_and_metrics_without_credentials(doors, internal):
    """By design (docs/security.md): probes and Prometheus's scrapes carry no token; the port stays internal."""
    assert internal.get("/healthz").text == "OK"
    metrics = internal.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert all(f'gateway_service_count{{function_name="{spec.name}"}} 1.0' in metrics.text for spec in doors.specs)


@pytest.mark.parametrize("path", REFUSED_THERE)
def test_the_internal_port_knows_no_other_path(doors, internal, path):
    for method in ("GET", "POST"):
        answered_problem(internal.request(method, path, headers=doors.headers["admin"]), 404)
    answered_problem(internal.post("/healthz"), 405)


def test_the_routes_of_each_port_are_accounted_for(doors):
    """Every route of the public app is a function, /system or API route (its documents; test_routes.py calls the
    rest); the health and metrics routes are the internal app's, and only there."""
    app = doors.client.app
    public = {route.path for route in app.routes if isinstance(route, (Route, Mount))}
    assert not public & set(INTERNAL_PATHS)
    assert all(path.startswith(("/function", "/async-function", "/system/", "/v1/")) for path in public), public
    assert {path for path, _, _ in app.public_paths} == {f"/v1/{spec.name.removeprefix('api-')}"
                                                         for spec in doors.specs if spec.name.startswith("api-")}
    port, wrapped = app.internal
    assert port == doors.settings.gateway_internal_port
    assert [route.path for route in wrapped.app.routes] == list(INTERNAL_PATHS)


def test_draining_turns_the_internal_health_to_503():
    drain, port = Drain(), free_port()
    internal = TestClient(create_gateway([], drain=drain, internal_port=port), base_url=f"http://testserver:{port}")
    assert internal.get("/healthz").status_code == 200
    drain.draining.set()
    answered = internal.get("/healthz")
    answered_problem(answered, 503)
    assert answered.json()["detail"].startswith("draining")
    assert internal.get("/metrics").status_code == 200  # still scraped while it drains


def test_uvicorn_serves_each_path_on_its_own_socket():
    port = free_port()
    with serving(create_gateway([], internal_port=port), internal_port=port) as url:
        for path in INTERNAL_PATHS:
            answered_problem(httpx.get(f"{url}{path}"), 404)
            assert httpx.get(f"http://127.0.0.1:{port}{path}").status_code == 200
        answered_problem(httpx.get(f"http://127.0.0.1:{port}/system/functions"), 404)
        answered_problem(httpx.get(f"{url}/system/functions"), 401)


def test_without_an_internal_port_both_answer_on_the_one_port():
    client = TestClient(create_gateway([], internal_port=0))
    assert client.get("/healthz").text == "OK"
    assert "gateway_service_count" in client.get("/metrics").text
