"""Callbacks of ``/async-function`` that would reach the platform's own network are refused.

The address check itself is tested in tests/unit/test_runtime_callbacks.py, not repeated here:
``test_an_allowlisted_literal_at_a_non_public_address_is_refused`` (10.0.0.1, 169.254.169.254 and the other
private, link-local and metadata literals, with DNS and connections made to fail the test: nothing is sent),
``test_a_name_that_resolves_to_loopback_is_refused_after_resolution`` (``localhost``) and
``test_callbacks_to_loopback_are_refused_by_the_gateway_and_nothing_arrives`` (127.0.0.1, [::1] and localhost,
allowlisted, with a local listener that receives nothing).

Here: the issue's probe against the real functions with the default settings (no allowlist), each loopback
form, with credentials good enough for the call itself, and a listener proving nothing arrived.
"""

from __future__ import annotations

import queue

import pytest

from tests.problem_assertions import answered_problem
from tests.unit.test_runtime_callbacks import Listener
from tests.fixtures.functions.helpers import serving


@pytest.fixture
def listener():
    listening = Listener()
    with serving(listening.app) as url:
        yield listening, int(url.rsplit(":", 1)[1])


def test_callbacks_to_loopback_are_refused_at_the_real_functions_and_nothing_arrives(doors, listener):
    listening, port = listener
    calls = {"/async-function/api-traffic/v1/traffic/segments": doors.headers["viewer"],
             "/async-function/ingest-weather": doors.headers["api-key:weather"]}
    for route, headers in calls.items():
        for host in ("127.0.0.1", "[::1]", "localhost"):
            answer = doors.client.post(route, json=[], headers={**headers, "X-Callback-Url": f"http://{host}:{port}/done"})
            assert "not on the callback allowlist" in answered_problem(answer, 400)["header.x-callback-url"]
    with pytest.raises(queue.Empty):
        listening.received.get(timeout=1)
