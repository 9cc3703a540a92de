"""Where the jobs' micro-batches go, from ``foreachBatch``: database upserts, the cache's current window, the bus.

Every write is idempotent, because Spark replays the last micro-batch after a crash: rows are upserted on their
(entity, window_start) key, the cache keeps the newest window per entity, and derived CloudEvents carry ids fixed
by what they describe, so a consumer that deduplicates on (source, id) sees each once.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Sequence

from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from smartcity.backends.bus import EventBus
from smartcity.backends.cache import Cache
from smartcity.errors import problem
from smartcity.runtime.bindings import error_data
from smartcity.settings import DEAD_LETTER_TOPIC


def collect_records(batch: DataFrame) -> list[dict[str, Any]]:
    """The rows of a (small) micro-batch output as dicts, timestamps as tz-aware UTC datetimes.

    PySpark would hand timestamps over as naive datetimes in the Python process's local time zone; they are
    fetched as Unix microseconds instead and converted here.
    """
    timestamps = [f.name for f in batch.schema.fields if isinstance(f.dataType, T.TimestampType)]
    columns = [F.unix_micros(name).alias(name) if name in timestamps else F.col(name) for name in batch.columns]
    records = []
    for row in batch.select(*columns).collect():
        record = row.asDict()
        for name in timestamps:
            if record[name] is not None:
                record[name] = datetime.fromtimestamp(record[name] / 1_000_000, timezone.utc)
        records.append(record)
    return records


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


class CurrentWindows:
    """The newest window of each entity in the cache, as JSON under ``<prefix><kind>:<entity id>``."""

    def __init__(self, cache: Cache, prefix: str, ttl_s: float) -> None:
        self.cache, self.prefix, self.ttl_s = cache, prefix, ttl_s

    def key(self, kind: str, entity_id: str) -> str:
        return f"{self.prefix}{kind}:{entity_id}"

    def put(self, kind: str, id_column: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Store each entity's newest window among ``rows`` unless the cache holds a newer one; return how many."""
        newest: dict[str, Mapping[str, Any]] = {}
        for row in rows:
            entity = row[id_column]
            if entity not in newest or row["window_start"] > newest[entity]["window_start"]:
                newest[entity] = row
        if not newest:
            return 0
        keys = [self.key(kind, entity) for entity in newest]
        cached = self.cache.get_many(keys)
        fresh = {}
        for key, row, old in zip(keys, newest.values(), cached):
            if old is None or json.loads(old)["window_start"] <= row["window_start"].isoformat():
                fresh[key] = json.dumps(row, default=_json_default).encode()
        if fresh:
            self.cache.set_many(fresh, ttl_s=self.ttl_s)
        return len(fresh)


def dead_letter(bus: EventBus, records: Sequence[Mapping[str, Any]], job: str, topic: str = DEAD_LETTER_TOPIC) -> int:
    """Send unusable records to the dead-letter topic with the reason, Knative's way.

    Each keeps its value and headers, plus the ``ce_knativeerrordest`` (which job refused it),
    ``ce_knativeerrorcode`` (422) and ``ce_knativeerrordata`` (base64 JSON: the platform's problem document, its
    detail the reason, with where the record was)
    extension headers. ``records`` have ``value``, ``headers``, ``topic``, ``partition``, ``offset``, ``problem``.
    """
    for record in records:
        headers = dict(record["headers"] or {})
        headers.update({
            "ce_knativeerrordest": f"smartcity-streaming/{job}",
            "ce_knativeerrorcode": "422",
            "ce_knativeerrordata": error_data(problem(
                422, record["problem"], instance=f"smartcity-streaming/{job}", topic=record["topic"],
                partition=record["partition"], offset=record["offset"],
            ).model_dump(mode="json")),
        })
        bus.publish(topic, (record["value"] or "").encode(), key=None,
                    headers=[(name, str(value).encode()) for name, value in headers.items()])
    bus.flush()
    return len(records)
