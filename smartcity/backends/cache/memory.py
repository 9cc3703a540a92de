"""The in-process cache (``memory://[name]``): a dict with expiry, safe between threads.

Every ``memory://`` store with the same name is the same store within one process (as every client of one Redis
sees the same keys), so the parts of the demo running in one process share it; nothing is shared between
processes. Expired keys read as absent and are swept out every few thousand writes. An index is a sorted list
(Python orders strings by code point, which is the byte order of their UTF-8, as Redis orders a lex range).
"""

from __future__ import annotations

import bisect
import threading
import time
from typing import Mapping, Sequence
from urllib.parse import urlsplit

from smartcity.backends.cache.base import check_ttl
from smartcity.settings import Settings

SWEEP_EVERY_WRITES = 4096


class _Store:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[bytes, float | None]] = {}  # key -> (value, monotonic expiry or None)
        self.writes = 0
        self.indexes: dict[str, list[str]] = {}  # index name -> its members, sorted


_STORES: dict[str, _Store] = {}
_STORES_LOCK = threading.Lock()


class MemoryCache:
    def __init__(self, name: str = "") -> None:
        with _STORES_LOCK:
            self._store = _STORES.setdefault(name, _Store())

    @classmethod
    def from_url(cls, url: str, setting: str, settings: Settings | None = None) -> MemoryCache:
        parts = urlsplit(url)
        return cls(parts.netloc + parts.path)

    def _live(self, key: str, now: float) -> bytes | None:
        entry = self._store.entries.get(key)
        if entry is None:
            return None
        if entry[1] is not None and entry[1] <= now:
            del self._store.entries[key]
            return None
        return entry[0]

    def _put(self, key: str, value: bytes, ttl_s: float | None, now: float) -> None:
        self._store.entries[key] = (bytes(value), None if ttl_s is None else now + ttl_s)
        self._store.writes += 1
        if self._store.writes % SWEEP_EVERY_WRITES == 0:
            for stale in [k for k, (_, expiry) in self._store.entries.items() if expiry is not None and expiry <= now]:
                del self._store.entries[stale]

    def get(self, key: str) -> bytes | None:
        with self._store.lock:
            return self._live(key, time.monotonic())

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        with self._store.lock:
            now = time.monotonic()
            return [self._live(key, now) for key in keys]

    async def get_many_async(self, keys: Sequence[str]) -> list[bytes | None]:
        return self.get_many(keys)  # a dict read: nothing to wait for

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        self.set_many({key: value}, ttl_s)

    def set_many(self, items: Mapping[str, bytes], ttl_s: float | None = None) -> None:
        check_ttl(ttl_s)
        with self._store.lock:
            now = time.monotonic()
            for key, value in items.items():
                self._put(key, value, ttl_s, now)

    def delete(self, *keys: str) -> int:
        with self._store.lock:
            now = time.monotonic()
            existing = [key for key in keys if self._live(key, now) is not None]
            for key in existing:
                del self._store.entries[key]
            indexes = [key for key in keys if self._store.indexes.pop(key, None)]
            return len(existing) + len(indexes)

    def keys(self, prefix: str) -> list[str]:
        with self._store.lock:
            now = time.monotonic()
            live = [key for key in list(self._store.entries)
                    if key.startswith(prefix) and self._live(key, now) is not None]
            indexes = [name for name, members in self._store.indexes.items() if name.startswith(prefix) and members]
            return sorted(live + indexes)

    def index_add(self, index: str, members: Sequence[str]) -> None:
        with self._store.lock:
            listed = self._store.indexes.setdefault(index, [])
            for member in members:
                at = bisect.bisect_left(listed, member)
                if at == len(listed) or listed[at] != member:
                    listed.insert(at, member)

    def index_range(self, index: str, after: str | None, limit: int) -> list[str]:
        with self._store.lock:
            listed = self._store.indexes.get(index, [])
            start = 0 if after is None else bisect.bisect_right(listed, after)
            return listed[start:start + limit]

    def index_remove(self, index: str, *members: str) -> int:
        with self._store.lock:
            listed = self._store.indexes.get(index, [])
            removed = 0
            for member in members:
                at = bisect.bisect_left(listed, member)
                if at < len(listed) and listed[at] == member:
                    del listed[at]
                    removed += 1
            if not listed:
                self._store.indexes.pop(index, None)
            return removed

    def incr(self, key: str, amount: int = 1) -> int:
        with self._store.lock:
            now = time.monotonic()
            current = self._live(key, now)
            try:
                value = int(b"0" if current is None else current) + amount  # an empty value is not 0, as in Redis
            except ValueError:
                raise ValueError(f"the value of {key!r} is not an integer") from None
            expiry = self._store.entries[key][1] if current is not None else None  # incr keeps the TTL, as in Redis
            self._store.entries[key] = (str(value).encode(), expiry)
            return value

    def close(self) -> None:
        """Nothing to release: the store lives as long as the process, for the other users of its name."""
