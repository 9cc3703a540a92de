"""Batch writes of events into their stream's time-series table, idempotent on the event id.

One :meth:`Database.insert_new` per stream per batch, in one transaction (on PostgreSQL a ``COPY`` into a staging
table, then ``INSERT ... SELECT ... ON CONFLICT DO NOTHING``): a redelivered event hits the primary key
``(event_id, observed_at)`` and changes nothing, whether it comes again in a later batch or twice in one.
On PostgreSQL the daily partitions a batch needs are created first (:class:`PartitionKeeper`). A traffic sensor
seen for the first time is added to the ``sensors`` reference table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

from smartcity.backends.database import Database
from smartcity.events import TrafficFlowObserved
from smartcity.storage.envelope import StoredEvent
from smartcity.storage.partitions import PartitionKeeper
from smartcity.storage.reference import sensor_rows, write_rows
from smartcity.storage.tables import stream_table

SENSOR_STREAM = "traffic-sensors"


class TimeSeriesWriter:
    def __init__(self, db: Database) -> None:
        self.db = db
        self.partitions = PartitionKeeper(db)
        self._known_sensors: set[str] = set()

    def write(self, events: Sequence[StoredEvent]) -> int:
        """Insert the events into their streams' tables; return how many rows were new."""
        by_stream: dict[str, list[StoredEvent]] = defaultdict(list)
        for event in events:
            by_stream[event.stream].append(event)
        inserted = 0
        for stream, batch in by_stream.items():
            table = stream_table(stream)
            self.partitions.ensure(table.table, [event.time for event in batch])
            rows = [table.values(e.event_id, e.event) for e in batch]
            inserted += self.db.insert_new(table.table, table.column_names, rows)
        self._add_sensors([e.event for e in by_stream.get(SENSOR_STREAM, []) if e.event.id not in self._known_sensors])
        return inserted

    def _add_sensors(self, traffic: list[TrafficFlowObserved]) -> None:
        if traffic:
            write_rows(self.db, "sensors", sensor_rows(traffic), update=False)
            self._known_sensors.update(event.id for event in traffic)

    def count(self, stream: str) -> int:
        table = stream_table(stream).table
        return int(self.db.query(f"SELECT count(*) AS n FROM {table}")[0]["n"])
