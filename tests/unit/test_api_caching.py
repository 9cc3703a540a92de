"""The API read cache: hits, invalidation by tag, a write racing a read, TTL, ETag and 304, Cache-Control, the shortcut."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest
from fastapi import Depends, Request
from fastapi.testclient import TestClient
from pydantic import BaseModel

from smartcity.api.app import create_api_app, operator, read_cache_of, viewer
from smartcity.api.auth import KeyRing, Role, create_local_keys, issue_token
from smartcity.api.caching import ReadCache, cached_read, document_body, json_body, request_key
from smartcity.backends.cache import open_cache
from smartcity.settings import Settings


@pytest.fixture
def cache():
    store = open_cache(f"memory://api-cache-{uuid.uuid4().hex}")
    yield store
    store.close()


def test_an_entry_is_served_until_one_of_its_tags_is_invalidated(cache):
    reads = ReadCache(cache)
    assert reads.get("/a", ["incidents"]) == (None, b"0")
    reads.put("/a", b"0", b'{"n": 1}', ttl_s=60)
    hit, _ = reads.get("/a", ["incidents"])
    assert hit.body == b'{"n": 1}' and hit.etag.startswith('"')
    reads.invalidate("incidents")
    assert reads.get("/a", ["incidents"]) == (None, b"1")
    reads.invalidate("other")
    reads.put("/a", b"1", b'{"n": 2}', ttl_s=60)
    assert reads.get("/a", ["incidents"])[0].body == b'{"n": 2}'


def test_a_result_computed_before_a_write_is_never_served_after_it(cache):
    reads = ReadCache(cache)
    _, stamp = reads.get("/a", ["incidents"])  # a read starts, computes from the data as it was...
    reads.invalidate("incidents")  # ...a write commits meanwhile...
    reads.put("/a", stamp, b"old", ttl_s=60)  # ...and the read keeps its now stale result
    assert reads.get("/a", ["incidents"])[0] is None


def test_entries_expire(cache):
    reads = ReadCache(cache)
    reads.put("/a", b"", b"x", ttl_s=0.05)
    time.sleep(0.1)
    assert reads.get("/a", [])[0] is None


class Counter(BaseModel):
    calls: int


@dataclass
class CacheOnlyContext:
    settings: Settings
    cache: object


@pytest.fixture
def client(cache, tmp_path):
    app = create_api_app("test", "caching", CacheOnlyContext(Settings(secrets_dir=tmp_path), cache))
    calls = {"n": 0}

    def produce() -> Counter:
        calls["n"] += 1
        return Counter(calls=calls["n"])

    @app.get("/v1/test/counter")
    def counter(request: Request, reads: ReadCache = Depends(read_cache_of)):
        return cached_read(request, reads, produce, tags=["counter"], ttl_s=60, max_age_s=7)

    @app.post("/v1/test/counter")
    def bump(request: Request, reads: ReadCache = Depends(read_cache_of)):
        reads.invalidate("counter")
        return {}

    return TestClient(app)


def test_a_cached_read_answers_from_the_cache_with_etag_and_cache_control(client):
    first = client.get("/v1/test/counter")
    second = client.get("/v1/test/counter")
    assert first.json() == second.json() == {"calls": 1}
    assert first.headers["etag"] == second.headers["etag"]
    assert first.headers["cache-control"] == "private, max-age=7"
    assert client.get("/v1/test/counter", params={"x": 1}).json() == {"calls": 2}  # another query, another entry


@pytest.mark.parametrize("header", ["{etag}", 'W/{etag}', '"other", {etag}', "*"])
def test_if_none_match_with_the_current_etag_is_a_304(client, header):
    etag = client.get("/v1/test/counter").headers["etag"]
    response = client.get("/v1/test/counter", headers={"If-None-Match": header.format(etag=etag)})
    assert response.status_code == 304
    assert response.headers["etag"] == etag and response.content == b""


def test_a_write_makes_the_next_read_fresh_and_changes_the_etag(client):
    before = client.get("/v1/test/counter")
    client.post("/v1/test/counter")
    after = client.get("/v1/test/counter", headers={"If-None-Match": before.headers["etag"]})
    assert after.status_code == 200 and after.json() == {"calls": 2}
    assert after.headers["etag"] != before.headers["etag"]


def test_the_request_key_does_not_depend_on_the_order_of_query_parameters():
    def key(query: str) -> str:
        return request_key(Request({"type": "http", "path": "/v1/x", "query_string": query.encode(), "headers": []}))

    assert key("b=2&a=1") == key("a=1&b=2") != key("a=1&b=3")


def test_a_repeated_parameter_keeps_the_order_of_its_values_in_the_key():
    def key(query: str) -> str:
        return request_key(Request({"type": "http", "path": "/v1/x", "query_string": query.encode(), "headers": []}))

    assert key("zones=Z11&zones=Z33") != key("zones=Z33&zones=Z11")
    assert key("b=1&zones=Z11&zones=Z33") == key("zones=Z11&b=1&zones=Z33")


def test_a_value_holding_an_ampersand_is_not_the_key_of_two_parameters():
    def key(query: str) -> str:
        return request_key(Request({"type": "http", "path": "/v1/x", "query_string": query.encode(), "headers": []}))

    # one parameter a="1&b=2" (which a route may refuse) must not be served the cached answer to a=1 and b=2
    assert key("a=1%26b%3D2") != key("a=1&b=2")


@pytest.fixture
def guarded(cache, tmp_path):
    """Two cached routes behind auth (viewer, operator), counting how often they compute."""
    create_local_keys(tmp_path)
    settings = Settings(secrets_dir=tmp_path)
    app = create_api_app("test", "shortcut", CacheOnlyContext(settings, cache))
    calls = {"n": 0}

    def produce() -> Counter:
        calls["n"] += 1
        return Counter(calls=calls["n"])

    @app.get("/v1/test/open", dependencies=[Depends(viewer)])
    def open_read(request: Request):
        return cached_read(request, read_cache_of(request), produce, tags=["counter"], ttl_s=60)

    @app.get("/v1/test/guarded", dependencies=[Depends(operator)])
    def guarded_read(request: Request):
        return cached_read(request, read_cache_of(request), produce, ttl_s=60, role="operator")

    @app.post("/v1/test/open", dependencies=[Depends(operator)])
    def write(request: Request):
        read_cache_of(request).invalidate("counter")
        return {}

    keyring = KeyRing(settings)

    def headers(role: str, **options) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_token(keyring, 'tester', Role(role), **options)}"}

    return TestClient(app), headers, calls


def test_the_shortcut_serves_a_kept_answer_only_to_callers_the_route_would_let_in(guarded):
    client, headers, calls = guarded
    assert client.get("/v1/test/open", headers=headers("viewer")).json() == {"calls": 1}
    assert client.get("/v1/test/open", headers=headers("admin")).json() == {"calls": 1}  # from the cache
    assert client.get("/v1/test/open").status_code == 401
    expired = headers("viewer", ttl=timedelta(minutes=1), now=datetime.now(timezone.utc) - timedelta(hours=1))
    assert client.get("/v1/test/open", headers=expired).status_code == 401
    assert client.get("/v1/test/guarded", headers=headers("operator")).json() == {"calls": 2}
    refused = client.get("/v1/test/guarded", headers=headers("viewer"))
    assert refused.status_code == 403 and refused.headers["content-type"] == "application/problem+json"
    assert calls["n"] == 2


def test_the_shortcut_does_not_serve_an_answer_a_write_made_stale(guarded):
    client, headers, calls = guarded
    first = client.get("/v1/test/open", headers=headers("viewer"))
    assert client.get("/v1/test/open", headers={**headers("viewer"), "If-None-Match": first.headers["etag"]}).status_code == 304
    client.post("/v1/test/open", headers=headers("operator"))
    assert client.get("/v1/test/open", headers=headers("viewer")).json() == {"calls": 2}


def test_the_shortcut_leaves_a_request_to_the_route_when_its_cache_read_fails(guarded, cache, monkeypatch):
    client, headers, calls = guarded
    assert client.get("/v1/test/open", headers=headers("viewer")).json() == {"calls": 1}

    async def failing(keys):
        raise ConnectionError("the cache server is down")

    monkeypatch.setattr(cache, "get_many_async", failing)
    assert client.get("/v1/test/open", headers=headers("viewer")).json() == {"calls": 1}  # the route's own read
    assert calls["n"] == 1


class Written(BaseModel):
    at: datetime
    share: float
    speed: float | None
    count: int


def test_a_document_body_is_the_json_pydantic_writes_for_the_same_values():
    values = {"at": datetime(2026, 3, 1, 12, 30, 5, 120000, tzinfo=timezone.utc), "share": 0.1 + 0.2, "speed": None,
              "count": 3}
    from_model = json_body(Written(**values))
    assert document_body(values) == from_model and b'"share":0.3,' in from_model  # rounded, not 0.30000000000000004
    assert document_body({"at": datetime(2026, 3, 1, tzinfo=timezone.utc)}) == b'{"at":"2026-03-01T00:00:00Z"}'
