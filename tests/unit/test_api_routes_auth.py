"""The auth rules on every route of the merged OpenAPI document, through the gateway (no route is forgotten).

Each route refuses a missing, expired, tampered or unsigned (``alg: none``) token with 401, and a role below its
own with 403. Reads need viewer, incident writes operator, deleting an incident admin.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone

import pytest

from tests.api_samples.gateway import sample_client

# Example values for path parameters; the routes must reject the caller before they look anything up.
PATH_VALUES = {"{incident_id}": "urn:ngsi-ld:Alert:crash-1"}
ROLE_OF_METHOD = {"get": "viewer", "post": "operator", "delete": "admin"}
LOWER_ROLE = {"operator": "viewer", "admin": "operator"}


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with sample_client(tmp_path_factory.mktemp("api-auth"), role=None) as api:
        yield api


def operations(client) -> list[tuple[str, str]]:
    document = client.get("/v1/openapi.json").json()
    return [(method, path) for path, item in document["paths"].items() for method in item]


def concrete(path: str) -> str:
    for placeholder, value in PATH_VALUES.items():
        path = path.replace(placeholder, value)
    return path.replace("{", "").replace("}", "")  # any other id: a value that names nothing


def call(client, method: str, path: str, token: str | None):
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return client.request(method.upper(), concrete(path), headers=headers)


def unsigned(sample_api) -> str:
    header, payload, _ = sample_api.token("admin").split(".")
    none_header = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    return f"{none_header}.{payload}."


def tampered(sample_api) -> str:
    header, payload, signature = sample_api.token("viewer").split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "role": "admin"}).encode()).rstrip(b"=").decode()
    return f"{header}.{forged}.{signature}"


def test_every_route_is_classified(api):
    _, client = api
    methods = {method for method, _ in operations(client)}
    assert methods <= set(ROLE_OF_METHOD), methods
    assert len(operations(client)) >= 20


@pytest.mark.parametrize("case", ["no token", "expired", "bad signature", "alg none", "garbage"])
def test_every_route_refuses_a_bad_token(api, case):
    sample_api, client = api
    tokens = {
        "no token": None,
        "expired": sample_api.token("admin", ttl=timedelta(minutes=1), now=datetime.now(timezone.utc) - timedelta(hours=1)),
        "bad signature": tampered(sample_api),
        "alg none": unsigned(sample_api),
        "garbage": "abc.def",
    }
    for method, path in operations(client):
        response = call(client, method, path, tokens[case])
        assert response.status_code == 401, (case, method, path, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["www-authenticate"].startswith("Bearer ")


@pytest.mark.parametrize("algorithm", ["HS256", "RS256"])
def test_every_route_refuses_a_role_below_its_own(api, algorithm):
    sample_api, client = api
    for method, path in operations(client):
        needed = ROLE_OF_METHOD[method]
        if needed in LOWER_ROLE:
            response = call(client, method, path, sample_api.token(LOWER_ROLE[needed], algorithm))
            assert response.status_code == 403, (method, path, response.text)
            assert f"needs the role {needed}" in response.json()["detail"]


def test_every_read_route_lets_a_viewer_in(api):
    sample_api, client = api
    token = sample_api.token("viewer", "RS256")
    for method, path in operations(client):
        if method == "get":
            response = call(client, method, path, token)
            assert response.status_code not in (401, 403), (path, response.text)
