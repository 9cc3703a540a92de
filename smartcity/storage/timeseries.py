"""Batch writes of events into their stream's time-series table, idempotent on the event id.

One ``INSERT ... ON CONFLICT DO NOTHING`` per stream per batch, run with ``executemany`` in one transaction
(psycopg pipelines it): a redelivered event hits the primary key ``(event_id, observed_at)`` and changes nothing.
On PostgreSQL the daily partitions a batch needs are created first (:class:`PartitionKeeper`).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from smartcity.backends.database import Database
from smartcity.storage.envelope import StoredEvent
from smartcity.storage.partitions import PartitionKeeper
from smartcity.storage.tables import StreamTable, stream_table


def insert_sql(table: StreamTable) -> str:
    names = [column.name for column in table.columns]
    return (
        f"INSERT INTO {table.table} ({', '.join(names)}) VALUES ({', '.join(':' + n for n in names)}) "
        "ON CONFLICT DO NOTHING"
    )


def _utc(value: Any) -> Any:
    """Datetimes in UTC, so that SQLite's ISO text sorts in time order as PostgreSQL's timestamptz does."""
    return value.astimezone(timezone.utc) if isinstance(value, datetime) else value


class TimeSeriesWriter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.partitions = PartitionKeeper(db)

    def write(self, events: Sequence[StoredEvent]) -> int:
        """Insert the events into their streams' tables; return how many rows were new."""
        by_stream: dict[str, list[StoredEvent]] = defaultdict(list)
        for event in events:
            by_stream[event.stream].append(event)
        inserted = 0
        for stream, batch in by_stream.items():
            table = stream_table(stream)
            self.partitions.ensure(table.table, [event.time for event in batch])
            rows = [{name: _utc(value) for name, value in table.row(e.event_id, e.event).items()} for e in batch]
            inserted += self.db.executemany(insert_sql(table), rows)
        return inserted

    def count(self, stream: str) -> int:
        table = stream_table(stream).table
        return int(self.db.query(f"SELECT count(*) AS n FROM {table}")[0]["n"])
