"""A PostgreSQL streaming replica on test ports and a test data folder (a private stack, removed after): made by
``pg_basebackup -R`` from a private primary, it serves the API's reads (``SMARTCITY_DATABASE_READ_URL``). A row
written to the primary reaches the API only through the replica: while the replica's replay is paused the API
does not see it, and the lag metrics on the gateway's /metrics say so; once resumed, it does.
"""

from __future__ import annotations

import re
import time
from datetime import timedelta

import psycopg
import pytest

from smartcity import stack
from smartcity.settings import get_settings
from smartcity.stack.postgres import DATABASE, ROLE, SUPERUSER
from smartcity.storage.timeseries import TimeSeriesWriter
from tests.api_samples.gateway import query_time, sample_client
from tests.storage_samples import MOMENT, sample_stored_events

pytestmark = pytest.mark.real
AROUND_MOMENT = {"from": query_time(MOMENT - timedelta(minutes=30)), "to": query_time(MOMENT + timedelta(minutes=30)),
                 "bucket": "1m"}


def _wait_until(condition, timeout_s: float = 60.0):
    deadline = time.monotonic() + timeout_s
    while not (result := condition()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)
    return result


def _metric(text: str, name: str, labels: str = "") -> float | None:
    found = re.search(rf"^{name}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    return float(found[1]) if found else None


def test_the_api_reads_from_the_replica_and_exports_its_lag(private_stack, tmp_path):
    assert stack.up(["postgres", "postgres-replica"]) == ["postgres", "postgres-replica"]
    settings = get_settings()
    assert (private_stack / "postgres-replica" / "data" / "standby.signal").exists()
    primary_url, replica_url = (f"postgresql://{ROLE}@127.0.0.1:{port}/{DATABASE}"
                                for port in (settings.postgres_port, settings.postgres_replica_port))
    replica_admin = psycopg.connect(host="127.0.0.1", port=settings.postgres_replica_port, user=SUPERUSER,
                                    dbname="postgres", autocommit=True)
    with sample_client(tmp_path, database_url=primary_url, database_read_url=replica_url) as (sample_api, client):
        assert _wait_until(lambda: client.get("/v1/traffic/history", params=AROUND_MOMENT).status_code == 200)
        assert client.get("/v1/traffic/history", params=AROUND_MOMENT).json()["items"] == []

        replica_admin.execute("SELECT pg_wal_replay_pause()")
        _wait_until(lambda: replica_admin.execute("SELECT pg_get_wal_replay_pause_state()").fetchone()[0] == "paused")
        primary = sample_api.gateway.state.functions["api-traffic"].context.database
        TimeSeriesWriter(primary).write(sample_stored_events())  # a reading at MOMENT, on the primary only
        assert primary.query("SELECT count(*) AS n FROM traffic_flow WHERE observed_at = :at", {"at": MOMENT})[0]["n"] == 1

        def lagging():
            text = client.get("/metrics").text
            return (_metric(text, "smartcity_postgres_replica_replay_lag_bytes") or 0) > 0 and text
        metrics = _wait_until(lagging)
        assert _metric(metrics, "smartcity_postgres_replica_lag_seconds") > 0
        assert "smartcity_postgres_replication_lag_bytes{replica=" in metrics
        assert "smartcity_postgres_replication_replay_lag_seconds{replica=" in metrics  # Grafana's panel and alert
        assert client.get("/v1/traffic/history", params=AROUND_MOMENT).json()["items"] == []  # not replayed yet

        replica_admin.execute("SELECT pg_wal_replay_resume()")
        items = _wait_until(lambda: client.get("/v1/traffic/history", params=AROUND_MOMENT).json()["items"])
        assert len(items) == 1 and items[0]["bucket_start"] == query_time(MOMENT)
        _wait_until(lambda: _metric(client.get("/metrics").text, "smartcity_postgres_replica_lag_seconds") == 0)
    replica_admin.close()
