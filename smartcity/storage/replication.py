"""Replication lag of a PostgreSQL streaming replica, as Prometheus metrics on the ``/metrics`` of every gateway
process whose API reads from a replica (``SMARTCITY_DATABASE_READ_URL``).

From the replica (``pg_last_xact_replay_timestamp``): ``smartcity_postgres_replica_lag_seconds``, how far behind
the primary the data it serves is (0 when it has replayed all it received), and
``smartcity_postgres_replica_replay_lag_bytes``, WAL received but not yet replayed. From the primary
(``pg_stat_replication``), by replica: ``smartcity_postgres_replication_lag_bytes`` (WAL the replica has not
replayed) and ``smartcity_postgres_replication_replay_lag_seconds``. Read at each scrape; a store that does not
answer (or is not PostgreSQL) gives no sample rather than a failed scrape.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from smartcity.backends.database import Database

log = logging.getLogger(__name__)

REPLICA_LAG_SQL = """
SELECT pg_is_in_recovery() AS in_recovery,
       CASE WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END AS lag_s,
       coalesce(pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn()), 0) AS lag_bytes
"""
PRIMARY_LAG_SQL = """
SELECT application_name AS replica,
       coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0) AS lag_bytes,
       coalesce(extract(epoch FROM replay_lag), 0) AS lag_s
FROM pg_stat_replication
"""


def _families() -> dict[str, GaugeMetricFamily]:
    return {
        "replica_s": GaugeMetricFamily("smartcity_postgres_replica_lag_seconds",
                                       "Seconds the replica's data is behind the primary's (0: all replayed)"),
        "replica_bytes": GaugeMetricFamily("smartcity_postgres_replica_replay_lag_bytes",
                                           "WAL bytes the replica received but has not replayed yet"),
        "primary_bytes": GaugeMetricFamily("smartcity_postgres_replication_lag_bytes",
                                           "WAL bytes a replica has not replayed, seen from the primary",
                                           labels=["replica"]),
        "primary_s": GaugeMetricFamily("smartcity_postgres_replication_replay_lag_seconds",
                                       "Replay lag of a replica, seen from the primary", labels=["replica"]),
    }


class ReplicationLag(Collector):
    """The lag metrics, read from the replica and the primary at each collect."""

    def __init__(self, replica: Callable[[], Database], primary: Callable[[], Database]) -> None:
        self.replica, self.primary = replica, primary

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(_families().values())  # registering must not query the databases

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = _families()
        if row := self._one(self.replica, REPLICA_LAG_SQL):
            if row[0]["in_recovery"]:
                families["replica_s"].add_metric([], float(row[0]["lag_s"]))
                families["replica_bytes"].add_metric([], float(row[0]["lag_bytes"]))
        for replica in self._one(self.primary, PRIMARY_LAG_SQL) or []:
            families["primary_bytes"].add_metric([replica["replica"]], float(replica["lag_bytes"]))
            families["primary_s"].add_metric([replica["replica"]], float(replica["lag_s"]))
        return iter(families.values())

    @staticmethod
    def _one(database: Callable[[], Database], sql: str) -> list[dict] | None:
        try:
            db = database()
            return db.query(sql) if db.dialect == "postgresql" else None
        except Exception as error:  # noqa: BLE001 - a scrape must not fail because a database does not answer
            log.warning("replication lag not read: %s", error)
            return None


_exported: ReplicationLag | None = None
_lock = threading.Lock()


def export_replication_lag(replica: Callable[[], Database], primary: Callable[[], Database]) -> None:
    """Put the lag metrics of ``replica`` (and of what ``primary`` says of its replicas) on this process's
    ``/metrics``: one read database per process, the last one given."""
    from smartcity.runtime.metrics import FUNCTION_METRICS

    global _exported
    with _lock:
        if _exported is None:
            _exported = ReplicationLag(replica, primary)
            FUNCTION_METRICS.register(_exported)
        else:
            _exported.replica, _exported.primary = replica, primary
