"""schemathesis against the gateway's merged OpenAPI document: no 5xx, every response as the document says.

The gateway (in-process ASGI) serves the five API functions over the sample city (SQLite, memory cache). Every
operation gets a bounded number of generated requests, schema-valid and not, with an admin token so that writes
run too; schemathesis checks each response: not a server error, a documented status code, content type and
headers, a body matching its schema. ``positive_data_acceptance`` is left out on purpose: some schema-valid
requests are refused by design with a 400 naming the field (``from`` after ``to``, a malformed ``bbox``, two
history filters at once), which the document lists.
"""

from __future__ import annotations

import itertools

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.api_samples.gateway import open_sample_api

MAX_EXAMPLES = 12


@pytest.fixture(scope="module")
def sample_api(tmp_path_factory):
    return open_sample_api(tmp_path_factory.mktemp("api-schemathesis"))


def test_the_api_answers_every_request_as_documented(sample_api):
    schema = schemathesis.openapi.from_asgi("/v1/openapi.json", sample_api.gateway)
    headers = {"Authorization": f"Bearer {sample_api.token('admin')}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20

    for operation, mode in itertools.product(operations, (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
                  derandomize=True, database=None)
        def answers_as_documented(case):
            case.call_and_validate(
                headers=headers,
                checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                        response_headers_conformance, response_schema_conformance],
                excluded_checks=[positive_data_acceptance],
            )

        answers_as_documented()
