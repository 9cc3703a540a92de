"""The gateway's limits: oversize bodies (413) at every ingest route, per-caller rate limits (429 with
Retry-After; per address too; in Redis, shared by two gateways as by two workers, and open when Redis is down), functions that do not answer in time (504),
malformed JSON to ingest (problem+json 400), and production mode's refusal of demo or default secrets."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from fastapi.testclient import TestClient

from smartcity.api.auth import create_local_keys
from smartcity.errors import ConfigurationError
from smartcity.events import STREAMS
from smartcity.runtime.gateway import build_gateway, invoke
from smartcity.runtime.guard import GatewayGuard
from smartcity.runtime.metrics import Metrics
from smartcity.runtime.production import DEMO_MARK, refuse_unsafe_production
from smartcity.storage.encryption import ensure_keyring
from smartcity.runtime.ratelimit import ADDRESS_FACTOR, MemoryBuckets, RateLimiter, RedisBuckets
from smartcity.runtime.stackfile import read_stack
from smartcity.simulator.sinks import HttpSink
from tests.credentials import ingest_headers
from tests.ports import free_port
from tests.problem_assertions import answered_problem
from tests.security.conftest import KEYED_STREAM, STACK_FILE
from tests.stream_functions import prepared_settings, reading


def test_an_oversize_body_is_refused_at_every_ingest_route(doors):
    limit = doors.settings.gateway_max_body_bytes
    too_large = b"[" + b" " * limit + b"]"
    every_stream = ingest_headers(doors.settings)
    for stream in STREAMS:
        for prefix in ("/function", "/async-function"):
            answer = doors.client.post(f"{prefix}/ingest-{stream}", content=too_large, headers=every_stream)
            assert str(limit) in answered_problem(answer, 413)["body"]
        # without credentials the body is refused too, unread: before the function's own check (413) or, for an
        # async call, by the called function's check, which the gateway asks first (401)
        assert doors.client.post(f"/function/ingest-{stream}", content=too_large).status_code == 413
        assert doors.client.post(f"/async-function/ingest-{stream}", content=too_large).status_code == 401


def test_malformed_json_to_ingest_is_a_problem_naming_the_body(doors):
    answer = doors.client.post(f"/function/ingest-{KEYED_STREAM}", content=b'{"id": ',
                               headers={**doors.headers[f"api-key:{KEYED_STREAM}"], "content-type": "application/json"})
    assert "body" in answered_problem(answer, 400)


@pytest.fixture
def limited(tmp_path):
    """ingest-weather behind a gateway allowing each caller 2 requests at once, then 1 a second."""
    settings = prepared_settings(tmp_path).model_copy(update={"gateway_rate_per_s": 1.0, "gateway_rate_burst": 2})
    with TestClient(build_gateway(STACK_FILE, settings, [f"ingest-{KEYED_STREAM}"])) as client:
        yield client, settings


def test_a_caller_over_its_rate_gets_429_with_retry_after_and_others_are_not_held_back(limited):
    client, settings = limited
    first, second = ingest_headers(settings, [KEYED_STREAM]), ingest_headers(settings, [KEYED_STREAM])
    route = f"/function/ingest-{KEYED_STREAM}"
    answers = [client.post(route, json=reading(KEYED_STREAM), headers=first) for _ in range(3)]
    assert [answer.status_code for answer in answers] == [202, 202, 429]
    answered_problem(answers[2], 429)
    assert int(answers[2].headers["Retry-After"]) >= 1
    assert client.post(route, json=reading(KEYED_STREAM), headers=second).status_code == 202  # its own bucket
    anonymous = [client.post(route, json=[]).status_code for _ in range(3)]  # by address: limited before refused
    assert anonymous == [401, 401, 429]
    assert client.post(f"/async-function/ingest-{KEYED_STREAM}", json=[], headers=first).status_code == 429


def test_the_simulator_sink_waits_out_the_rate_limit(limited):
    client, settings = limited
    sink = HttpSink(f"http://testserver/function/ingest-{KEYED_STREAM}", client=client,
                    api_key=ingest_headers(settings, [KEYED_STREAM])["x-api-key"])
    event = STREAMS[KEYED_STREAM].model.model_validate(reading(KEYED_STREAM))
    for _ in range(3):  # the third waits about a second for its token instead of failing
        sink.send(STREAMS[KEYED_STREAM], [event])


def test_rate_limits_in_redis_are_shared_by_every_gateway_worker(real_stack):
    """Two limiters over the same Redis, as two gateway workers: the second sees the first's spending."""
    cache_url = real_stack["SMARTCITY_CACHE_URL"]
    caller = {"x-api-key": f"test-{uuid.uuid4().hex}"}

    async def spend() -> list[int | None]:
        workers = [RateLimiter(0.5, 2, RedisBuckets(cache_url)) for _ in range(2)]
        try:
            return [await workers[i % 2].retry_after(caller, "127.0.0.1") for i in range(3)]
        finally:
            for worker in workers:
                await worker.close()

    waits = asyncio.run(spend())
    assert waits[:2] == [None, None] and waits[2] is not None and waits[2] >= 1


def test_a_function_that_does_not_answer_in_time_gets_504():
    async def slow(scope, receive, send):
        await asyncio.sleep(5)

    async def gateway(scope, receive, send):
        await invoke(slow, "slow", Metrics(), scope, receive, send, GatewayGuard(timeout_s=0.2))

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gateway") as client:
            return await client.post("/function/slow")

    answer = asyncio.run(call())
    answered_problem(answer, 504)
    assert "'slow' did not answer within 0.2 s" in answer.json()["detail"]


@pytest.mark.parametrize("problem", ["demo secrets", "no ingest key", "empty JWT key", "anonymous ingest",
                                     "no keyring", "plaintext at rest"])
def test_production_mode_refuses_demo_or_default_secrets_naming_them(tmp_path, problem):
    settings = prepared_settings(tmp_path).model_copy(update={"mode": "production"})
    secrets = settings.secrets_dir
    create_local_keys(secrets)
    ensure_keyring(settings)
    ingest_headers(settings, [KEYED_STREAM], source="a-partner")
    refuse_unsafe_production(settings)  # real secrets: it starts
    expected = {"demo secrets": "jwt-hs256-key", "no ingest key": "ingest-api-keys",
                "empty JWT key": "jwt-hs256-key", "anonymous ingest": "ingest_allow_anonymous",
                "no keyring": "encryption-keyring", "plaintext at rest": "encrypt_at_rest"}[problem]
    if problem == "demo secrets":
        (secrets / DEMO_MARK).write_text("demo")
    elif problem == "no ingest key":
        (secrets / "ingest-api-keys").write_text("[]")
    elif problem == "empty JWT key":
        (secrets / "jwt-hs256-key").write_text("")
    elif problem == "no keyring":
        (secrets / "encryption-keyring").unlink()
    elif problem == "plaintext at rest":
        settings = settings.model_copy(update={"encrypt_at_rest": "off"})
    else:
        settings = settings.model_copy(update={"ingest_allow_anonymous": True})
    with pytest.raises(ConfigurationError, match=expected):
        build_gateway(STACK_FILE, settings, [f"ingest-{KEYED_STREAM}"])
    build_gateway(STACK_FILE, settings.model_copy(update={"mode": "development"}), [f"ingest-{KEYED_STREAM}"])


def test_made_up_credentials_do_not_lift_the_limit_of_one_address():
    async def spend() -> list[int | None]:
        limiter = RateLimiter(1.0, 1, MemoryBuckets())  # an address: 10 at once whatever it sends
        return [await limiter.retry_after({"x-api-key": f"made-up-{i}"}, "192.0.2.7") for i in range(12)]

    waits = asyncio.run(spend())
    assert waits[:ADDRESS_FACTOR] == [None] * ADDRESS_FACTOR and waits[ADDRESS_FACTOR] is not None


def test_an_unreachable_redis_lets_requests_through():
    async def take() -> int | None:
        limiter = RateLimiter(1.0, 1, RedisBuckets(f"redis://127.0.0.1:{free_port()}/0"))
        try:
            return await limiter.retry_after({}, "127.0.0.1")
        finally:
            await limiter.close()

    assert asyncio.run(take()) is None


def test_a_function_container_checks_the_secrets_it_has(tmp_path):
    """An API function (no ingest key list mounted) starts in production with its JWT keys alone."""
    settings = prepared_settings(tmp_path).model_copy(update={"mode": "production"})
    create_local_keys(settings.secrets_dir)
    api_secrets = next(spec for spec in read_stack(STACK_FILE)[1] if spec.name == "api-traffic").entry.secrets
    refuse_unsafe_production(settings, api_secrets)
    with pytest.raises(ConfigurationError, match="ingest-api-keys"):
        refuse_unsafe_production(settings)  # the gateway serves ingest too: it needs the list
