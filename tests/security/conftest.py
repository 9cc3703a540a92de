"""One gateway over every function of the project's ``stack.yml`` (the real loader, embedded backends under a
temporary folder), with JWT keys and an ingest API key for one stream, for the security tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartcity.api.auth import Role
from smartcity.runtime.stackfile import FunctionSpec, read_stack
from smartcity.runtime.gateway import build_gateway
from smartcity.settings import PROJECT_ROOT, Settings
from tests.credentials import bearer, ingest_headers
from tests.stream_functions import prepared_settings

STACK_FILE = PROJECT_ROOT / "stack.yml"
KEYED_STREAM = "weather"  # the stream the doors' API key and ingest token may write
OTHER_STREAM = "parking"  # ... and another one's, for the weather function's wrong scope


@dataclass
class Doors:
    """The gateway's client, its settings, the functions of stack.yml and credentials of every kind."""

    client: TestClient
    settings: Settings
    specs: list[FunctionSpec]
    headers: dict[str, dict[str, str]]

    def openapi(self) -> dict[str, Any]:
        answer = self.client.get("/v1/openapi.json")
        assert answer.status_code == 200, answer.text
        return answer.json()


def credentials(settings: Settings) -> dict[str, dict[str, str]]:
    """Headers by name: a token of each API role; for KEYED_STREAM and OTHER_STREAM an ingest token scoped to it
    (``ingest-token:<stream>``) and an API key for it (``api-key:<stream>``)."""
    headers = {role.value: bearer(settings, role) for role in Role if role is not Role.ingest}
    for stream in (KEYED_STREAM, OTHER_STREAM):
        headers[f"ingest-token:{stream}"] = bearer(settings, Role.ingest, scopes=[stream])
        headers[f"api-key:{stream}"] = ingest_headers(settings, [stream], source=f"doors-{stream}")
    return headers


@pytest.fixture(scope="package")
def doors(tmp_path_factory) -> Doors:
    # no rate limit here (tests/security/test_limits.py has its own), a small body limit to keep 413s cheap
    settings = prepared_settings(tmp_path_factory.mktemp("doors")).model_copy(
        update={"gateway_rate_per_s": 0.0, "gateway_max_body_bytes": 64 * 1024})
    _, specs = read_stack(STACK_FILE)
    headers = credentials(settings)
    with TestClient(build_gateway(STACK_FILE, settings)) as client:
        yield Doors(client, settings, specs, headers)
