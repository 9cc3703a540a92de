"""Every door of the gateway, taken from ``stack.yml`` and from the API's OpenAPI document (a new function or
route is covered by itself), called without credentials, with a wrong role and with a wrong scope: all refused.

- ingest functions: 401 without credentials; 403 with a token of an API role, or a key or ``ingest`` token
  scoped to another stream; the same at ``/async-function``;
- internal functions: 404 from outside, whatever the credentials;
- functions with a ``smartcity.io/caller-role`` (forecast-traffic, detect-anomalies): 401 without a token, 403
  below the role, direct and async;
- API functions and every OpenAPI operation: 401 without a token, 403 with an ``ingest`` token (below viewer),
  403 for a viewer on a write;
- ``/system/*``: 401 without a token, 403 for every role but admin.
"""

from __future__ import annotations

import re

import pytest

from smartcity.events import STREAMS
from tests.problem_assertions import answered_problem
from tests.security.conftest import KEYED_STREAM, OTHER_STREAM

API_ROLES = ("viewer", "operator", "admin")
ROLE_HEADERS = ("ingest-token:weather", "viewer", "operator", "admin")  # credentials of each role, lowest first


def _ingest_streams(doors) -> list[str]:
    return [spec.name.removeprefix("ingest-") for spec in doors.specs if spec.name.startswith("ingest-")]


def _operations(doors) -> list[tuple[str, str]]:
    """(method, path) of every operation of the merged OpenAPI document, path parameters filled in."""
    operations = []
    for path, item in doors.openapi()["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "1", path)
        operations += [(method.upper(), concrete) for method in item if method in {"get", "post", "put", "patch", "delete"}]
    assert len(operations) >= 10, operations
    return operations


def _refused(answer, *statuses: int) -> None:
    assert answer.status_code in statuses, (answer.request.method, answer.request.url, answer.status_code, answer.text)
    answered_problem(answer, answer.status_code)


def test_ingest_functions_refuse_no_credentials_a_wrong_role_and_a_wrong_scope(doors):
    streams = _ingest_streams(doors)
    assert sorted(streams) == sorted(STREAMS)  # every registered stream's ingest function is covered
    for stream in streams:
        other = OTHER_STREAM if stream == KEYED_STREAM else KEYED_STREAM
        for prefix in ("/function", "/async-function"):
            route = f"{prefix}/ingest-{stream}"
            _refused(doors.client.post(route, json=[]), 401)
            for role in API_ROLES:
                _refused(doors.client.post(route, json=[], headers=doors.headers[role]), 403)
            for wrong_scope in (f"api-key:{other}", f"ingest-token:{other}"):
                _refused(doors.client.post(route, json=[], headers=doors.headers[wrong_scope]), 403)


def test_the_right_key_or_token_is_let_through(doors):
    """The control: the same requests with credentials for the stream reach the function (400: an empty batch)."""
    for name in (f"api-key:{KEYED_STREAM}", f"ingest-token:{KEYED_STREAM}"):
        answer = doors.client.post(f"/function/ingest-{KEYED_STREAM}", json=[], headers=doors.headers[name])
        assert "body" in answered_problem(answer, 400)


def test_internal_functions_are_not_found_from_outside_whatever_the_credentials(doors):
    internal = [spec.name for spec in doors.specs if spec.internal]
    assert {"store-timeseries", "store-latest", "store-documents", "archive-raw", "dead-letter-archive"} <= set(internal)
    for name in internal:
        for prefix in ("/function", "/async-function"):
            for headers in ({}, doors.headers["admin"], doors.headers[f"api-key:{KEYED_STREAM}"]):
                _refused(doors.client.post(f"{prefix}/{name}", json={}, headers=headers), 404)
    listed = answered_problem(doors.client.post("/function/nope"), 404)["path.function"]
    assert not any(name in listed for name in internal)  # the 404 lists the public functions only


def test_role_guarded_functions_refuse_no_token_and_a_lower_role(doors):
    guarded = {spec.name: spec.caller_role for spec in doors.specs if spec.caller_role}
    assert guarded
    for name, role in guarded.items():
        below = ROLE_HEADERS[: [header.split("-")[0] for header in ROLE_HEADERS].index(role)]
        assert below
        for route in (f"/function/{name}", f"/async-function/{name}"):
            _refused(doors.client.post(route, json={}), 401)
            _refused(doors.client.post(route, json={}, headers=doors.headers[f"api-key:{KEYED_STREAM}"]), 401)
            for header in below:
                _refused(doors.client.post(route, json={}, headers=doors.headers[header]), 403)
        # with the role, the function itself answers: a body that is no CloudEvent is its 400, not the gateway's
        answer = doors.client.post(f"/function/{name}", json={}, headers=doors.headers[role])
        assert answer.status_code == 400, answer.text


def test_every_api_operation_refuses_no_token_and_a_wrong_role(doors):
    for method, path in _operations(doors):
        _refused(doors.client.request(method, path), 401)
        for name in ("ingest-token:weather", f"api-key:{KEYED_STREAM}"):
            # an ingest token is below viewer (403); an API key is no bearer token at all (401)
            _refused(doors.client.request(method, path, headers=doors.headers[name]), 401, 403)
        if method != "GET":
            _refused(doors.client.request(method, path, headers=doors.headers["viewer"]), 403)


def test_api_functions_at_their_function_routes_refuse_the_same(doors):
    operations = _operations(doors)
    for spec in doors.specs:
        if not spec.name.startswith("api-"):
            continue
        group = f"/v1/{spec.name.removeprefix('api-')}"
        paths = [path for method, path in operations if method == "GET" and path.startswith(group)]
        assert paths, spec.name
        for path in paths:
            _refused(doors.client.get(f"/function/{spec.name}{path}"), 401)
            _refused(doors.client.get(f"/function/{spec.name}{path}", headers=doors.headers["ingest-token:weather"]), 403)
            _refused(doors.client.post(f"/async-function/{spec.name}{path}"), 401)
            _refused(doors.client.post(f"/async-function/{spec.name}{path}",
                                       headers=doors.headers["ingest-token:weather"]), 403)


def test_system_routes_need_an_admin_token(doors):
    routes = ["/system/functions"] + [f"/system/function/{spec.name}" for spec in doors.specs]
    for route in routes:
        _refused(doors.client.get(route), 401)
        _refused(doors.client.get(route, headers=doors.headers[f"api-key:{KEYED_STREAM}"]), 401)
        for name in ("ingest-token:weather", "viewer", "operator"):
            _refused(doors.client.get(route, headers=doors.headers[name]), 403)
        assert doors.client.get(route, headers=doors.headers["admin"]).status_code == 200


def test_system_functions_shows_no_environment_value_and_no_secret_name(doors):
    listed = doors.client.get("/system/functions", headers=doors.headers["admin"]).json()
    assert {entry["name"] for entry in listed} == {spec.name for spec in doors.specs}
    text = str(listed)
    secrets = {secret for spec in doors.specs for secret in spec.entry.secrets}
    values = {value for spec in doors.specs for value in spec.environment.values() if len(value) > 3}
    assert secrets and not any(secret in text for secret in secrets)
    assert not any(value in text for value in values)
    assert all((entry["replicas"], entry["availableReplicas"]) == (1, 1) for entry in listed)


@pytest.mark.parametrize("path", ["/function/%2e%2e/system/functions", "/function/../system/functions",
                                  "/async-function/%2e%2e/system/functions"])
def test_a_path_that_climbs_out_of_the_function_routes_is_refused(doors, path):
    """Encoded, the dots name a function '..' (404); plain, the client resolves them to /system (401)."""
    assert doors.client.get(path).status_code in (401, 404, 405)
    assert doors.client.post(path).status_code in (404, 405)

