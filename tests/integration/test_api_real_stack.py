"""The API on the real local services: PostgreSQL (time buckets, upserts, the workflow), Redis (latest states,
read cache, invalidation) and FerretDB (reported incidents), through the gateway, over the sample city.

The test has a database and a document database of its own (dropped after) and a Redis database of its own
(``REDIS_DB``, emptied before and after).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import psycopg

import pytest
import redis
from fastapi.testclient import TestClient

from tests.api_samples.sample_city import TRAFFIC_STEPS

from smartcity.api.early_history import PATH
from tests.api_samples.early_routes import api_app, both_ways
from tests.api_samples.gateway import backends_of, open_sample_api, query_time
from tests.api_samples.sample_streaming import window_start
from smartcity.api.traffic_history import AggregateHistory, RawHistory
from smartcity.settings import get_settings
from tests.storage_samples import drop_real_stores, real_settings

pytestmark = pytest.mark.real
REDIS_DB = 13


@pytest.fixture(scope="module")
def api(real_stack, tmp_path_factory):
    # The cleanup opens the object store through the process settings, which must name the stack's secrets.
    patch = pytest.MonkeyPatch()
    patch.setenv("SMARTCITY_SECRETS_DIR", real_stack["SMARTCITY_SECRETS_DIR"])
    get_settings.cache_clear()
    unique = uuid.uuid4().hex[:12]
    base = real_settings(real_stack, f"api{unique}")
    cache_url = base.cache_url.rsplit("/", 1)[0] + f"/{REDIS_DB}"
    redis.Redis.from_url(cache_url).flushdb()
    directory = tmp_path_factory.mktemp("api-real")
    sample_api = open_sample_api(directory, database_url=base.database_url, documents_url=base.documents_url,
                                 cache_url=cache_url, bus_url=base.bus_url, objects_url=base.objects_url)
    try:
        with TestClient(sample_api.gateway) as client:
            client.headers.update(sample_api.headers("operator"))
            yield sample_api, client
    finally:
        redis.Redis.from_url(cache_url).flushdb()
        drop_real_stores(base)
        patch.undo()
        get_settings.cache_clear()


def test_history_buckets_on_postgresql(api):
    sample_api, client = api
    sample = sample_api.sample
    params = {"from": query_time(sample.traffic_start), "to": query_time(sample.now + timedelta(seconds=1)), "bucket": "5m", "limit": 500}
    body = client.get("/v1/traffic/history", params=params).json()
    AggregateHistory.model_validate(body)  # types as documented: no numeric column comes back as a string
    items = body["items"]
    assert len(items) == TRAFFIC_STEPS and {(item["samples"], item["flow_per_hour"]) for item in items} == {(6, 720.0)}
    assert body["aggregated_until"] == query_time(window_start(sample.now) + timedelta(minutes=5))
    segment = client.get("/v1/traffic/history", params={**params, "segment_id": "urn:ngsi-ld:RoadSegment:A"}).json()["items"]
    assert {(i["average_speed_kmh"], i["speed_p50_kmh"], i["speed_p85_kmh"]) for i in segment} == {(30.0, 30.0, 50.0)}
    hourly = client.get("/v1/traffic/history", params={**params, "bucket": "1h"}).json()["items"]
    assert sum(item["samples"] for item in hourly) == 6 * TRAFFIC_STEPS
    assert all(item["bucket_start"].endswith(":00:00Z") for item in hourly)
    raw = client.get("/v1/traffic/history", params={**params, "bucket": "1m"}).json()
    RawHistory.model_validate(raw)
    assert sum(item["vehicles"] for item in raw["items"]) == 60 * TRAFFIC_STEPS
    assert {item["average_speed_kmh"] for item in raw["items"]} == {round(260 / 6, 2)}  # km/h to 2 decimals


@pytest.mark.parametrize("params", [{"bucket": "1h", "sensor_id": "urn:ngsi-ld:TrafficFlowObserved:s2"},
                                    {"bucket": "5m", "limit": "3"}, {"bucket": "1m", "zone": "Z11"},
                                    {"bucket": "15m", "sensor_id": "urn:ngsi-ld:TrafficFlowObserved:nowhere"}])
def test_history_early_route_on_postgresql_gives_the_routes_bytes(api, params):
    sample_api, client = api
    sample = sample_api.sample
    span = {"from": query_time(sample.traffic_start), "to": query_time(sample.now + timedelta(seconds=1))}
    early, route, answered = both_ways(client, api_app(sample_api.gateway, "api-traffic"), PATH, {**span, **params})
    assert answered and early.status_code == 200 and early.content == route.content


def test_async_reads_overlap_on_the_loops_own_connections(api):
    database = backends_of(api[0].gateway)["database"]

    async def reads() -> list[list[dict]]:
        return await asyncio.gather(*(database.query_async("SELECT :n AS n, pg_backend_pid() AS pid, "
                                                           "pg_sleep(0.2) IS NULL AS slept", {"n": n})
                                      for n in range(8)))

    started = time.monotonic()
    rows = asyncio.run(reads())
    assert [row[0]["n"] for row in rows] == list(range(8))
    assert len({row[0]["pid"] for row in rows}) > 1  # several connections of the loop's pool
    assert time.monotonic() - started < 8 * 0.2  # the reads overlapped, none waited for another
    with pytest.raises(psycopg.errors.UndefinedTable):
        asyncio.run(database.query_async("SELECT * FROM no_such_table"))


def test_anomalies_on_postgresql(api):
    sample_api, client = api
    sample = sample_api.sample
    params = {"from": query_time(sample.traffic_start), "to": query_time(sample.now + timedelta(seconds=1)), "limit": 5}
    first = client.get("/v1/traffic/anomalies", params=params).json()
    second = client.get("/v1/traffic/anomalies", params={**params, "cursor": first["next_cursor"]}).json()
    starts = [item["window_start"] for item in first["items"] + second["items"]]
    assert len(starts) == len(sample.anomalies) == 8 and starts == sorted(set(starts), reverse=True)


def test_latest_states_and_cached_reads_on_redis(api):
    _, client = api
    first = client.get("/v1/traffic/segments")
    assert [s["segment_id"][-1] for s in first.json()["items"]] == ["A", "B", "C"]
    assert client.get("/v1/traffic/segments", headers={"If-None-Match": first.headers["etag"]}).status_code == 304
    keys = redis.Redis.from_url(api[0].settings.cache_url).keys("api:read:*")
    assert keys, "the read was kept in Redis"


def test_incident_workflow_on_postgresql_with_reports_from_ferretdb(api):
    _, client = api
    listing = client.get("/v1/incidents", params={"source": "stream"}).json()["items"]
    assert [i["incident_id"].rsplit(":", 1)[1] for i in listing] == ["crash-1", "crash-2"]
    created = client.post("/v1/incidents", json={
        "category": "roadClosed", "severity": "high", "description": "Closed for a parade",
        "location": {"type": "Point", "coordinates": [6.955, 50.965]}}).json()
    path = f"/v1/incidents/{created['incident_id']}"
    assert client.post(f"{path}/acknowledge").json()["state"] == "acknowledged"
    assert client.post(f"{path}/acknowledge").status_code == 409
    assert client.post(f"{path}/resolve").json()["state"] == "resolved"
    assert [e["action"] for e in client.get(path).json()["timeline"]] == ["created", "acknowledged", "resolved"]
    resolved = client.get("/v1/incidents", params={"state": "resolved"}).json()["items"]
    assert created["incident_id"] in [i["incident_id"] for i in resolved]


def test_kpis_on_postgresql(api):
    sample_api, client = api
    now = sample_api.sample.now
    kpis = client.get("/v1/analytics/kpis", params={"from": query_time(now - timedelta(days=3)), "to": query_time(now + timedelta(seconds=1))}).json()
    assert kpis["average_speed_kmh"] == round(260 / 6, 2)
    assert kpis["congestion_hours"] == pytest.approx(0.75)
    assert kpis["transit_punctuality"] == round(1 / 3, 3)  # a fraction: 3 decimals
    assert kpis["air_quality"]["days_observed"] >= 2
