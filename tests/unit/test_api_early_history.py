"""The traffic history's early route (smartcity/api/early_history.py) on the sample city (SQLite): a plain query
is answered before FastAPI with the very bytes the route gives; anything else is left to the route, whose
problem documents stay the same."""

from __future__ import annotations

from datetime import timedelta

import pytest

from smartcity.api.early_history import PATH, moment, page_size
from tests.api_samples.early_routes import api_app, both_ways, early_route_answers
from tests.api_samples.gateway import query_time, sample_client
from tests.problem_assertions import answered_problem

S2 = "urn:ngsi-ld:TrafficFlowObserved:s2"
SEGMENT_A = "urn:ngsi-ld:RoadSegment:A"


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    with sample_client(tmp_path_factory.mktemp("early-history")) as (sample_api, client):
        yield sample_api, client, api_app(sample_api.gateway, "api-traffic")


def span(sample_api) -> dict[str, str]:
    sample = sample_api.sample
    return {"from": query_time(sample.traffic_start), "to": query_time(sample.now + timedelta(seconds=1))}


PLAIN = [
    {"bucket": "5m"},
    {"bucket": "1h", "segment_id": SEGMENT_A},
    {"bucket": "15m", "sensor_id": S2, "limit": "3"},
    {"bucket": "1d", "zone": "Z11"},
    {"bucket": "1m", "sensor_id": S2},
    {"sensor_id": "urn:ngsi-ld:TrafficFlowObserved:nowhere"},  # no rows: aggregated_until asked apart
]


@pytest.mark.parametrize("params", PLAIN)
def test_a_plain_query_is_answered_early_with_the_routes_bytes(api, params):
    sample_api, client, app = api
    early, route, answered = both_ways(client, app, PATH, {**span(sample_api), **params})
    assert answered and early.status_code == route.status_code == 200
    assert early.content == route.content
    assert (early.headers["etag"], early.headers["cache-control"]) == (route.headers["etag"], route.headers["cache-control"])


def test_offsets_fractions_and_cursors_are_answered_early_alike(api):
    sample_api, client, app = api
    sample = sample_api.sample
    params = {"from": (sample.traffic_start + timedelta(microseconds=250_000)).astimezone(
                  timezone_of("+02:00")).isoformat(), "to": query_time(sample.now + timedelta(seconds=1)),
              "bucket": "5m", "limit": "4"}
    early, route, answered = both_ways(client, app, PATH, params)
    assert answered and early.content == route.content
    cursor = early.json()["next_cursor"]
    assert cursor is not None
    early, route, answered = both_ways(client, app, PATH, {**params, "cursor": cursor})
    assert answered and early.status_code == 200 and early.content == route.content


def test_a_known_etag_gets_304_early_too(api):
    sample_api, client, app = api
    params = {**span(sample_api), "bucket": "15m"}
    etag = client.get(PATH, params=params).headers["etag"]
    early, route, answered = both_ways(client, app, PATH, params, headers={"If-None-Match": etag})
    assert answered and early.status_code == route.status_code == 304 and early.headers["etag"] == etag


@pytest.mark.parametrize("params, status, field", [
    ({"sensor_id": S2, "zone": "Z11"}, 400, "query.sensor_id"),
    ({"bucket": "2m"}, 422, "query.bucket"),
    ({"limit": "501"}, 422, "query.limit"),
    ({"limit": "ten"}, 422, "query.limit"),
    ({"zone": "Z1"}, 422, "query.zone"),
    ({"from": "2026-01-01T00:00:00"}, 422, "query.from"),  # no timezone
    ({"from": "2026-02-30T00:00:00Z"}, 422, "query.from"),
    ({"cursor": "garbage"}, 400, "query.cursor"),
    ({"bucket": "1m", "from": "two days before"}, 400, "query.bucket"),  # over 2,000 buckets
])
def test_an_invalid_query_is_left_to_the_route_and_its_problem(api, params, status, field):
    sample_api, client, app = api
    if params.get("from") == "two days before":
        params = {**params, "from": query_time(sample_api.sample.now - timedelta(days=2))}
    early, route, answered = both_ways(client, app, PATH, {**span(sample_api), **params})
    assert not answered
    assert field in answered_problem(early, status)
    assert early.json() == route.json()


@pytest.mark.parametrize("params", [
    {"bucket": "5m", "unknown": "1"},  # the route ignores what it does not know; the early route leaves it
    {"bucket": "5m", "from": "1767225600"},  # a moment in another spelling than the plain ISO 8601 one
    {"bucket": "5m", "sensor_id": ""},
])
def test_an_unusual_query_is_left_to_the_route(api, params):
    sample_api, client, app = api
    early, route, answered = both_ways(client, app, PATH, {**span(sample_api), **params})
    assert not answered
    assert (early.status_code, early.json()) == (route.status_code, route.json())


def test_a_repeated_parameter_is_left_to_the_route(api):
    sample_api, client, app = api
    query = [*span(sample_api).items(), ("bucket", "5m"), ("bucket", "1h")]
    early, route, answered = both_ways(client, app, PATH, query)
    assert not answered and early.content == route.content


def test_a_caller_without_a_valid_token_gets_the_routes_401(api):
    sample_api, client, app = api
    early, route, answered = both_ways(client, app, PATH, span(sample_api), headers={"Authorization": "Bearer nope"})
    assert not answered
    assert answered_problem(early, 401) == answered_problem(route, 401) and early.json() == route.json()


def test_plain_values():
    assert (page_size("100"), page_size("0"), page_size("501"), page_size("1e2"), page_size("٣")) == (100, None, None, None, None)
    assert moment(None) is None
    assert moment("2026-01-01T00:00:00.5+01:00").utcoffset() == timedelta(hours=1)
    assert moment("2026-01-01 00:00:00Z") is False and moment("2026-13-01T00:00:00Z") is False


def timezone_of(offset: str):
    return moment(f"2026-01-01T00:00:00{offset}").tzinfo


def test_the_openfaas_route_is_answered_early_too(api):
    sample_api, client, app = api
    path = f"/function/api-traffic{PATH}"
    with early_route_answers(app, PATH) as answered:
        early = client.get(path, params={**span(sample_api), "bucket": "1h"})
    assert answered == [True] and early.status_code == 200
    assert early.content == client.get(PATH, params={**span(sample_api), "bucket": "1h"}).content


def test_a_role_below_viewer_gets_the_routes_403(api):
    sample_api, client, app = api
    early, route, answered = both_ways(client, app, PATH, span(sample_api), headers=sample_api.headers("ingest"))
    assert not answered and answered_problem(early, 403) == answered_problem(route, 403)


def test_a_database_out_of_reach_is_a_503_asked_once_early_as_by_the_route(api, monkeypatch):
    psycopg = pytest.importorskip("psycopg")
    sample_api, client, app = api
    database = app.state.context.read_database
    calls = []

    def refused(*args, **kwargs):
        calls.append(args[0])
        raise psycopg.OperationalError("connection refused")

    async def refused_async(*args, **kwargs):
        return refused(*args, **kwargs)

    monkeypatch.setattr(database, "query", refused)
    monkeypatch.setattr(database, "query_async", refused_async)
    early, route, answered = both_ways(client, app, PATH, {**span(sample_api), "sensor_id": S2, "bucket": "15m"})
    assert len(calls) == 2  # once each way: the early route does not leave a failing query to be run again
    for answer in (early, route):
        answered_problem(answer, 503)
        assert answer.headers["retry-after"] == "5" and "out of reach" in answer.json()["detail"]
        assert "refused" not in answer.text  # nothing of the backend's error leaks
    assert early.json() == route.json()
