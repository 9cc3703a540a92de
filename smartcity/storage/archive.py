"""The raw archive: events as Parquet files in the object store, partitioned by stream, date and hour.

Key layout (Hive-style, so Spark and pyarrow read the folders as partition columns)::

    raw/<stream>/date=YYYY-MM-DD/hour=HH/<batch-id>.parquet

Every file has the fixed schema :data:`ARCHIVE_SCHEMA`: the CloudEvent envelope and the event's data as JSON
text, so a file can be replayed onto the bus as it came. The hour is the event's time in UTC.

Idempotence on the event id: a batch first drops the events the archive has already taken, which it knows from
the cache keys ``archived:<stream>:<event id>`` (kept :data:`SEEN_TTL_S`, long beyond any redelivery); the file
of a batch is named after the ids it holds, so writing the same batch twice replaces one file with the same bytes
instead of adding another, even if the process died between the file and the cache keys.
"""

from __future__ import annotations

import hashlib
import io
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime, timezone

import orjson

from smartcity.extras import require

require("archive", "pyarrow")
import pyarrow as pa  # noqa: E402 - after the check that names the extra to install
import pyarrow.parquet as pq  # noqa: E402

from smartcity.backends.cache import Cache
from smartcity.backends.objects import ObjectStore
from smartcity.settings import Settings
from smartcity.storage.encryption import at_rest
from smartcity.storage.envelope import StoredEvent

ARCHIVE_PREFIX = "raw"
# Redelivery happens within minutes (a consumer restarts, a batch is retried); a day covers it with room.
SEEN_TTL_S = 24 * 3600
ARCHIVE_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("type", pa.string()),
        ("source", pa.string()),
        ("time", pa.timestamp("us", tz="UTC")),
        ("data", pa.string()),
    ]
)


def archive_key(stream: str, time: datetime, batch_id: str) -> str:
    hour = time.astimezone(timezone.utc)
    return f"{ARCHIVE_PREFIX}/{stream}/date={hour:%Y-%m-%d}/hour={hour:%H}/{batch_id}.parquet"


def batch_id(event_ids: Sequence[str]) -> str:
    """A name for a batch that depends only on the set of its event ids."""
    digest = hashlib.sha256("\n".join(sorted(event_ids)).encode()).hexdigest()
    return digest[:32]


def seen_key(stream: str, event_id: str) -> str:
    return f"archived:{stream}:{event_id}"


def to_parquet(events: Sequence[StoredEvent]) -> bytes:
    columns = {
        "event_id": [e.event_id for e in events],
        "type": [e.type for e in events],
        "source": [e.source for e in events],
        "time": [e.time.astimezone(timezone.utc) for e in events],
        "data": [orjson.dumps(e.data).decode() for e in events],
    }
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns, schema=ARCHIVE_SCHEMA), buffer, compression="zstd")
    return buffer.getvalue()


def read_parquet(data: bytes) -> pa.Table:
    return pq.read_table(io.BytesIO(data), schema=ARCHIVE_SCHEMA)


class RawArchive:
    """Writes batches of events into the archive, each event once; encrypted as ``settings`` say
    (:func:`smartcity.storage.encryption.at_rest`)."""

    def __init__(self, objects: ObjectStore, cache: Cache, settings: Settings | None = None) -> None:
        self.objects = at_rest(objects, settings)
        self.cache = cache

    def write(self, events: Sequence[StoredEvent]) -> list[str]:
        """Archive the events not archived yet; return the keys of the files written."""
        fresh = self._not_seen(_unique_by_id(events))
        files: dict[tuple[str, str, str], list[StoredEvent]] = defaultdict(list)
        for event in fresh:
            hour = event.time.astimezone(timezone.utc)
            files[(event.stream, f"{hour:%Y-%m-%d}", f"{hour:%H}")].append(event)
        keys = []
        for group in files.values():
            key = archive_key(group[0].stream, group[0].time, batch_id([e.event_id for e in group]))
            self.objects.put(key, to_parquet(group), content_type="application/vnd.apache.parquet")
            keys.append(key)
        if fresh:
            self.cache.set_many({seen_key(e.stream, e.event_id): b"1" for e in fresh}, ttl_s=SEEN_TTL_S)
        return keys

    def _not_seen(self, events: list[StoredEvent]) -> list[StoredEvent]:
        if not events:
            return []
        seen = self.cache.get_many([seen_key(e.stream, e.event_id) for e in events])
        return [event for event, mark in zip(events, seen) if mark is None]

    def read(self, stream: str, prefix: str = "") -> pa.Table:
        """Every archived event of a stream (optionally under ``date=.../hour=...``), as one table."""
        keys = [key for key in self.objects.list(f"{ARCHIVE_PREFIX}/{stream}/{prefix}") if key.endswith(".parquet")]
        tables = [read_parquet(self.objects.get(key)) for key in keys]
        return pa.concat_tables(tables) if tables else ARCHIVE_SCHEMA.empty_table()


def _unique_by_id(events: Sequence[StoredEvent]) -> list[StoredEvent]:
    """The batch without repeats of an event id (first occurrence kept)."""
    first: dict[tuple[str, str], StoredEvent] = {}
    for event in events:
        first.setdefault((event.stream, event.event_id), event)
    return list(first.values())
