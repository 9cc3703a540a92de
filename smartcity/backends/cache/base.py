"""The cache contract: bytes under string keys, with an optional time to live.

It holds the latest state per sensor, vehicle, station and parking, and cached API reads. Keys expire after
their TTL; an expired key reads as absent. A TTL is a positive number of seconds (ValueError otherwise); a counter
is stored as its decimal text (``b"3"``), as Redis does, and :meth:`Cache.incr` on a non-integer value raises
ValueError.

An *index* is a set of member names kept in byte order under its own key (a Redis sorted set read by lex range):
the writers of the latest state add each entity to its group's index, so a listing pages through the index
instead of scanning every key. An index has no TTL: a member whose state expired stays until a reader removes it.
"""

from __future__ import annotations

from typing import Mapping, Protocol, Sequence


class Cache(Protocol):
    def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""

    def get_many(self, keys: Sequence[str]) -> list[bytes | None]:
        """Values in the order of the keys."""

    async def get_many_async(self, keys: Sequence[str]) -> list[bytes | None]:
        """:meth:`get_many` for a coroutine: it must not block the event loop while the server answers (the
        cached API reads are served so)."""

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None:
        """Store a value; with a TTL it expires after ``ttl_s`` seconds."""

    def set_many(self, items: Mapping[str, bytes], ttl_s: float | None = None) -> None:
        """Store several values in one round trip."""

    def delete(self, *keys: str) -> int:
        """Delete keys; return how many existed."""

    def keys(self, prefix: str) -> list[str]:
        """Keys starting with ``prefix`` (for listings and tests, not hot paths)."""

    def index_add(self, index: str, members: Sequence[str]) -> None:
        """Add ``members`` to the index ``index`` (created when absent); members already there are kept once."""

    def index_range(self, index: str, after: str | None, limit: int) -> list[str]:
        """Up to ``limit`` members of ``index`` in byte order, those after ``after`` (from the first when None)."""

    def index_remove(self, index: str, *members: str) -> int:
        """Remove ``members`` from ``index``; return how many were there."""

    def incr(self, key: str, amount: int = 1) -> int:
        """Add to an integer counter (created at 0) and return its new value."""

    def close(self) -> None:
        """Release connections."""


def check_ttl(ttl_s: float | None) -> float | None:
    if ttl_s is not None and not ttl_s > 0:
        raise ValueError(f"ttl_s must be a positive number of seconds, not {ttl_s!r}")
    return ttl_s
