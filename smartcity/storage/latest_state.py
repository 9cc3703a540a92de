"""The latest state per entity (sensor, vehicle, station, parking ...) in the cache, for real-time reads.

Key scheme: ``latest:<stream>:<entity id>``, the entity id being the event's NGSI-LD ``id`` (a sensor, station,
parking, incident), the ``vehicleId`` of a bus, or the pseudonymized ``vehicleId`` of a taxi. The
value is JSON::

    {"stream", "entity_id", "event_id", "time", "stored_at", "data": {...the event...}}

``time`` is the event's observation time, ``stored_at`` when this writer stored it (both ISO 8601, UTC). Every
key lives ``SMARTCITY_LATEST_STATE_TTL_S`` seconds after its last write, so an entity that stopped reporting
disappears. Newer wins: a state replaces the stored one only if its time is later (an equal time wins only with a
greater event id, so the choice does not depend on arrival order); a redelivered or late event changes nothing.
The read-compare-write is safe because a stream's records are keyed by entity, so one consumer owns an entity
(taxis are keyed by trip: two consumers meet on one taxi only when its consecutive trips are handled within the
same milliseconds, and even then the later trip's fixes overwrite the earlier's at the next fix).

Each stream's entities are also members of the index ``latest-index:<stream>`` (see :mod:`smartcity.backends.cache`),
added with every write: a listing pages through it in entity id order (:meth:`LatestState.iter_states`) and never
scans the cache's keys. A member whose state has expired is removed from the index by the reader that meets it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import datetime, timezone
from typing import Any

import orjson

from smartcity.backends.cache import Cache
from smartcity.storage.envelope import StoredEvent, iso_utc

PREFIX = "latest"
INDEX_PREFIX = "latest-index"
INDEX_CHUNK = 500  # entities read per index range and MGET while paging


def index_key(stream: str) -> str:
    return f"{INDEX_PREFIX}:{stream}"


def latest_key(stream: str, entity_id: str) -> str:
    return f"{PREFIX}:{stream}:{entity_id}"


class LatestState:
    def __init__(self, cache: Cache, ttl_s: float) -> None:
        self.cache = cache
        self.ttl_s = ttl_s

    def write(self, events: Sequence[StoredEvent]) -> int:
        """Store each event that is newer than its entity's stored state; return how many were stored."""
        newest: dict[str, StoredEvent] = {}
        for event in events:
            key = latest_key(event.stream, event.entity_id)
            if key not in newest or _rank(event) > _rank(newest[key]):
                newest[key] = event
        if not newest:
            return 0
        keys = list(newest)
        stored = self.cache.get_many(keys)
        stored_at = iso_utc(datetime.now(timezone.utc))
        updates = {}
        for key, current in zip(keys, stored):
            event = newest[key]
            if current is None or (iso_utc(event.time), event.event_id) > _stored_rank(current):
                updates[key] = orjson.dumps(_state(event, stored_at))
        if updates:
            self.cache.set_many(updates, ttl_s=self.ttl_s)
            by_stream: dict[str, list[str]] = {}
            for key in updates:
                event = newest[key]
                by_stream.setdefault(event.stream, []).append(event.entity_id)
            for stream, entity_ids in by_stream.items():
                self.cache.index_add(index_key(stream), entity_ids)
        return len(updates)

    def read(self, stream: str, entity_id: str) -> dict[str, Any] | None:
        value = self.cache.get(latest_key(stream, entity_id))
        return orjson.loads(value) if value is not None else None

    def iter_states(self, stream: str, after: str | None = None, chunk: int = INDEX_CHUNK) -> Iterator[dict[str, Any]]:
        """The live states of a stream in entity id order, those after ``after``, read ``chunk`` at a time from
        the stream's index (expired entities met on the way are dropped from it)."""
        index = index_key(stream)
        while True:
            entity_ids = self.cache.index_range(index, after, chunk)
            if not entity_ids:
                return
            values = self.cache.get_many([latest_key(stream, entity_id) for entity_id in entity_ids])
            expired = [entity_id for entity_id, value in zip(entity_ids, values) if value is None]
            if expired:
                self.cache.index_remove(index, *expired)
            yield from (orjson.loads(value) for value in values if value is not None)
            after = entity_ids[-1]

    def read_all(self, stream: str) -> list[dict[str, Any]]:
        """Every live state of a stream, in entity id order."""
        return list(self.iter_states(stream))


def _rank(event: StoredEvent) -> tuple[datetime, str]:
    return event.time, event.event_id


def _stored_rank(value: bytes) -> tuple[str, str]:
    state = orjson.loads(value)
    return state["time"], state["event_id"]


def _state(event: StoredEvent, stored_at: str) -> dict[str, Any]:
    return {
        "stream": event.stream,
        "entity_id": event.entity_id,
        "event_id": event.event_id,
        "time": iso_utc(event.time),
        "stored_at": stored_at,
        "data": event.data,
    }
