"""schemathesis against the gateway's merged OpenAPI document with the wrong credentials: no token, an ``ingest``
token (below viewer) and a viewer token (below the writes' operator). Generated requests, schema-valid and not,
must never get a server error, and every refusal must be a documented status.

tests/integration/test_api_schemathesis.py runs the same document with an admin token over the sample city
(every response as documented); here the point is the doors.
"""

from __future__ import annotations

import itertools

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance

from smartcity.runtime.gateway import build_gateway
from tests.security.conftest import STACK_FILE

MAX_EXAMPLES = 4


def test_wrong_credentials_get_documented_refusals_and_never_a_server_error(doors):
    api_functions = [spec.name for spec in doors.specs if spec.name.startswith("api-")]
    # a gateway of its own: schemathesis runs the app's lifespan in its own event loop
    gateway = build_gateway(STACK_FILE, doors.settings, api_functions)
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", gateway)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10
    callers = {"none": {}, "ingest": doors.headers["ingest-token:weather"], "viewer": doors.headers["viewer"]}
    statuses: dict[str, set[int]] = {name: set() for name in callers}

    for operation, mode, caller in itertools.product(operations, GenerationMode, callers):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)
        def refused_as_documented(case):
            response = case.call(headers=callers[caller])
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance])
            statuses[caller].add(response.status_code)

        refused_as_documented()
    assert statuses["none"] <= {401, 400, 404, 405, 422}, statuses["none"]
    assert 401 in statuses["none"] and 403 in statuses["ingest"] and not statuses["ingest"] & {200, 201, 204}
