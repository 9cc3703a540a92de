"""Every query of the Grafana dashboards and alert rules, run on the real servers as Grafana would run it.

PromQL: each expression, its variables expanded, must be accepted by the stack's Prometheus (``/api/v1/query``
answers ``success``), and must find series on a private Prometheus configured as the stack's (its scrape jobs and
label handling, scraping every second) that scrapes the platform's real metric registries while they count. SQL: each query, with Grafana's macros and variables expanded (:mod:`grafana.interpolate`),
must run on a fresh PostgreSQL database made by the platform's migrations, and find the sample rows written
there (one of each stream, aggregate and reference row, in one zone). Grafana itself is not run (AGPL, no binary).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any

import httpx
import psycopg
import pytest
from prometheus_client import REGISTRY, start_http_server

from grafana.build import Query, queries
from grafana.interpolate import QueryContext
from smartcity.backends.database import open_database
from smartcity.runtime.metrics import Metrics
from smartcity.settings import Settings
from smartcity.stack.prometheus import PrometheusService
from smartcity.storage.migrate import migrate
from smartcity.storage.reference import write_rows, zone_rows
from smartcity.storage.timeseries import TimeSeriesWriter
from models import serving as forecast_serving
from streaming import metrics as streaming_metrics
from tests.storage_samples import SEGMENT, centre, drop_database, sample_stored_events
from tests.ports import free_port

pytestmark = pytest.mark.real

NOW = datetime.now(timezone.utc).replace(microsecond=0)
SPAN = timedelta(hours=6)
# The replication lag gauges come from a gateway reading a streaming replica, which this module does not start:
# test_postgres_replica checks them (and the `replica` label the panel and the alert group by) on such a gateway.
REPLICA_METRICS = ("smartcity_postgres_replica_lag_seconds", "smartcity_postgres_replication_replay_lag_seconds")
PROMQL = [query for query in queries() if query.language == "promql"]
LIVE_PROMQL = [query for query in PROMQL if not any(name in query.text for name in REPLICA_METRICS)]
LABEL_VALUES = [query for query in queries() if query.language == "label_values"]
SQL = [query for query in queries() if query.language == "sql"]
PROMQL_CONTEXTS = {
    "all": QueryContext(NOW - SPAN, NOW, variables={"function": ".*", "job": ".*"}),
    "chosen": QueryContext(NOW - SPAN, NOW, variables={"function": ["api-traffic", "ingest-weather"], "job": ["traffic"]}),
}


def _where(query: Query) -> str:
    return query.where


@pytest.fixture(scope="module")
def prometheus(real_stack: dict[str, str]) -> httpx.Client:
    with httpx.Client(base_url=real_stack["SMARTCITY_PROMETHEUS_URL"], timeout=10) as client:
        yield client


def _evaluate(prometheus: httpx.Client, expr: str) -> dict[str, Any]:
    # a POST form, as Grafana's data source sends it (httpMethod: POST)
    return prometheus.post("/api/v1/query", data={"query": expr, "time": NOW.timestamp()}).json()


@pytest.mark.parametrize("query", PROMQL, ids=_where)
def test_prometheus_accepts_the_query(prometheus, query):
    for name, context in PROMQL_CONTEXTS.items():
        answer = _evaluate(prometheus, query.expanded(context))
        assert answer["status"] == "success", f"{name}: {answer.get('errorType')}: {answer.get('error')}"


def test_prometheus_refuses_a_broken_query(prometheus):
    # the check above can fail: Prometheus does judge what it is sent
    answer = _evaluate(prometheus, "sum(rate(gateway_function_invocation_total[5m])")
    assert answer["status"] == "error"


@pytest.mark.parametrize("query", LABEL_VALUES, ids=_where)
def test_prometheus_lists_the_variable_values(prometheus, query):
    metric, label = (part.strip() for part in query.text.removeprefix("label_values(").removesuffix(")").split(","))
    answer = prometheus.get(f"/api/v1/label/{label}/values", params={"match[]": metric}).json()
    assert answer["status"] == "success", answer.get("error")


# Label values of the platform's metrics no other test uses (the streaming metrics live in the process-wide registry).
TEST_LABEL = "grafana-test"
LIVE_CONTEXT = QueryContext(NOW - SPAN, NOW, variables={"function": ["api-traffic", "ingest-weather"],
                                                          "job": [TEST_LABEL]})


class EverySecondPrometheus(PrometheusService):
    """The stack's Prometheus configuration, scraping every second instead of every 15 s."""

    def config(self) -> str:
        return super().config().replace("scrape_interval: 15s", "scrape_interval: 1s")


def _count(gateway: Metrics, stop: threading.Event) -> None:
    """What the gateway, a trigger and the streaming jobs count while they work, under the test's labels."""
    gateway.register("api-traffic")
    while not stop.wait(0.1):
        now = time.time()
        gateway.observe("api-traffic", 200, 0.12)
        gateway.observe("api-traffic", 500, 0.7)
        gateway.observe("ingest-weather", 200, 0.01, count=5)
        event_times = [now - 30 + index for index in range(len(streaming_metrics.LAG_QUANTILES))]
        streaming_metrics.record_batch_lag(TEST_LABEL, 20, now, event_times)
        streaming_metrics.LATE_EVENTS.labels(TEST_LABEL, TEST_LABEL, "dropped").inc()
        streaming_metrics.DUPLICATES.labels(TEST_LABEL).inc()
        streaming_metrics.DEAD_LETTERED.labels(TEST_LABEL).inc()
        streaming_metrics.ANOMALIES.labels(TEST_LABEL).inc()
        streaming_metrics.WATERMARK.labels(TEST_LABEL).set(now - 120)
        streaming_metrics.BATCH_DURATION.labels(TEST_LABEL).set(0.8)
        for model in ("xgboost", "historical-average"):  # the forecasting function's, in FUNCTION_METRICS
            forecast_serving.ABS_ERROR.labels("segment-speed", model, "15").observe(1.5)


@pytest.fixture(scope="module")
def live_prometheus(real_stack: dict[str, str], tmp_path_factory) -> Iterator[httpx.Client]:
    """A private Prometheus scraping the gateway's registry and the streaming jobs' one while they count."""
    gateway = Metrics()
    gateway_server, _ = start_http_server(0, addr="127.0.0.1", registry=gateway.registry)
    streaming_server, _ = start_http_server(0, addr="127.0.0.1", registry=REGISTRY)
    stop = threading.Event()
    counter = threading.Thread(target=_count, args=(gateway, stop), daemon=True)
    counter.start()
    settings = Settings(stack_dir=tmp_path_factory.mktemp("prometheus"), prometheus_port=free_port(),
                        gateway_port=free_port(), gateway_internal_port=gateway_server.server_port,  # its /metrics
                        streaming_metrics_port=streaming_server.server_port)
    service = EverySecondPrometheus(settings)
    try:
        service.start()
        with httpx.Client(base_url=service.url, timeout=10) as client:
            yield client
    finally:
        service.stop()
        stop.set()
        counter.join()
        for server in (gateway_server, streaming_server):
            server.shutdown()
            server.server_close()


def test_promql_queries_find_the_platforms_series(live_prometheus):
    """Each query finds series with the labels the platform's processes really export, as Prometheus stores them
    (e.g. the streaming jobs' own ``job`` label arrives as ``exported_job``)."""
    empty: list[str] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # rate() needs two scrapes of each target
        now = time.time()
        empty = [query.where for query in LIVE_PROMQL if not live_prometheus.post(
            "/api/v1/query", data={"query": query.expanded(LIVE_CONTEXT), "time": now}).json()["data"]["result"]]
        if not empty:
            break
        time.sleep(1)
    assert empty == [], "these queries found no series"


def _insert(db, table: str, row: dict[str, Any]) -> None:
    db.execute(f"INSERT INTO {table} ({', '.join(row)}) VALUES ({', '.join(':' + name for name in row)})", row)


def _sample_rows(db, zone: str) -> None:
    """One row in ``zone`` for every table a dashboard reads, inside the dashboards' time range."""
    lon, lat = centre()["coordinates"]
    observed = NOW - timedelta(minutes=10)
    start = observed.replace(minute=observed.minute - observed.minute % 5, second=0)
    window = {"window_start": start, "window_end": start + timedelta(minutes=5)}
    traffic = {"flow": 40, "flow_per_hour": 480.0, "mean_speed_kmh": 22.0, "speed_p50_kmh": 21.0,
               "speed_p85_kmh": 30.0, "speed_p95_kmh": 34.0, "mean_occupancy": 0.5, "congestion_index": 0.8,
               "event_count": 10, "last_event_at": observed, "updated_at": NOW}
    TimeSeriesWriter(db).write(sample_stored_events(observed))
    write_rows(db, "zones", zone_rows())
    write_rows(db, "road_segments", [{"segment_id": SEGMENT, "name": "Ring", "zone_id": zone, "lanes": 2,
                                      "length_m": 120.0, "speed_limit_kmh": 50.0, "lon": lon, "lat": lat}])
    write_rows(db, "routes", [{"route_id": "R1", "short_name": "1", "long_name": "Ring line", "route_type": "bus"}])
    _insert(db, "traffic_sensor_5min", {"sensor_id": "urn:ngsi-ld:TrafficFlowObserved:loop-1", **window,
                                        "segment_id": SEGMENT, "zone_id": zone, "lane_id": 0, "lon": lon, "lat": lat,
                                        **traffic})
    _insert(db, "traffic_segment_5min", {"segment_id": SEGMENT, **window, "zone_id": zone, "sensor_count": 1, **traffic})
    _insert(db, "mobility_index_5min", {
        "zone_id": zone, **window, "mobility_index": 55.0, "traffic_score": 0.2, "transit_score": 0.9,
        "bikes_score": 0.5, "parking_score": 0.6, "taxi_score": 0.8, "air_score": 0.7, "mean_speed_kmh": 22.0,
        "mean_occupancy": 0.5, "mean_bus_delay_s": 45.0, "bikes_available": 5, "bike_docks": 20,
        "parking_occupied": 40, "parking_spots": 100, "taxi_waiting_trips": 2, "mean_caqi": 25.0, "event_count": 30,
        "last_event_at": observed, "updated_at": NOW})
    _insert(db, "traffic_anomalies", {
        "sensor_id": "urn:ngsi-ld:TrafficFlowObserved:loop-1", **window, "metric": "mean_speed_kmh",
        "segment_id": SEGMENT, "zone_id": zone, "value": 22.0, "baseline_median": 48.0, "baseline_mad": 4.0,
        "baseline_samples": 12, "robust_z": -4.4, "severity": "high", "alert_id": "alert-1", "detected_at": NOW})
    forecast = {"target": "segment-speed", "entity_id": SEGMENT, "origin": start - timedelta(minutes=30),
                "horizon_min": 30, "target_time": start, "model_version": "v1", "p10": 15.0, "p50": 20.0, "p90": 25.0,
                "issued_at": start - timedelta(minutes=25), "actual": 22.0, "abs_error": 2.0}
    for model in ("xgboost", "historical-average"):
        _insert(db, "traffic_forecasts", {**forecast, "model": model})
    _insert(db, "anomaly_scores", {
        "entity_id": "urn:ngsi-ld:TrafficFlowObserved:loop-1", **window, "model": "isolation-forest",
        "target": "anomaly-sensor", "model_version": "v1", "score": 0.995, "basis": "series",
        "contributions": '{"speed_residual": 0.7}', "flagged": True, "alert_id": "alert-2",
        "sensor_id": "urn:ngsi-ld:TrafficFlowObserved:loop-1", "segment_id": SEGMENT, "zone_id": zone, "lon": lon,
        "lat": lat, "scored_at": NOW})
    _insert(db, "traffic_hotspots", {
        "id": "hotspot-1", "active": True, "computed_at": NOW, "lon": lon, "lat": lat, "zone_id": zone,
        "extent": '{"type": "Point", "coordinates": [%f, %f]}' % (lon, lat), "members": '["alert-1", "alert-2"]',
        "anomalies": 5, "incidents": 1, "size": 6, "since": observed, "last_seen": NOW})
    _insert(db, "incident_cases", {
        "incident_id": "incident-1", "source": "stream", "state": "open", "version": 1, "category": "traffic",
        "severity": "high", "description": "Two cars collided", "zone_id": zone, "segment_id": SEGMENT, "lon": lon,
        "lat": lat, "reported_at": observed, "cleared_at": None, "updated_at": NOW, "reported_by": "tests"})


@pytest.fixture(scope="module")
def database(real_stack: dict[str, str]) -> dict[str, Any]:
    """A fresh database, migrated, with the sample rows; its connection and the zone of the rows. Dropped after."""
    base_url = real_stack["SMARTCITY_DATABASE_URL"]
    name = f"t_grafana_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    url = f"{base_url.rsplit('/', 1)[0]}/{name}"
    zone = sample_stored_events(NOW)[0].event.zone
    db = open_database(url)
    try:
        migrate(db)
        _sample_rows(db, zone)
        with psycopg.connect(url, autocommit=True) as connection:
            yield {"connection": connection, "zone": zone}
    finally:
        db.close()
        drop_database(base_url, name)


def _run(connection: psycopg.Connection, sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


@pytest.mark.parametrize("query", SQL, ids=_where)
def test_postgres_runs_the_query_and_finds_the_sample_rows(database, query):
    connection, zone = database["connection"], database["zone"]
    every_zone = [row[0] for row in _run(connection, "SELECT zone_id FROM zones ORDER BY zone_id")]
    contexts = {"no zone": [], "all zones": every_zone, "the sample's zone": [zone, "Z'quoted"]}
    for name, zones in contexts.items():
        rows = _run(connection, query.expanded(QueryContext(NOW - SPAN, NOW, variables={"zone": zones})))
        if zones:
            assert rows, f"{name}: no row, though the sample rows lie in the time range and zone {zone}"
