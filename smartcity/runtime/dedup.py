"""Deduplication on (source, id): a redelivered event does not run a handler twice.

At-least-once delivery redelivers whatever was handled but not yet committed when a consumer died. The runtime
marks each event handled (after its results are published) in the cache backend, under
``dedup:<function>:<digest of source and id>`` for ``settings.dedup_ttl_s``, and skips marked events. With
``redis://`` the marks survive a restart of the trigger; with ``memory://`` they last as long as the process.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Sequence

from smartcity.backends.cache import Cache
from smartcity.runtime.events import Event

_HANDLED = b"1"


class Deduplicator:
    def __init__(self, cache: Callable[[], Cache], function: str, ttl_s: float, enabled: bool = True) -> None:
        self._cache = cache  # opened on first use, like every backend of a function
        self.enabled = enabled  # False for an idempotent handler: every event passes, nothing is marked
        self._prefix = f"dedup:{function}:"
        self._ttl_s = ttl_s

    def key(self, event: Event) -> str:
        digest = hashlib.sha1(f"{event.source}\0{event.id}".encode("utf-8")).hexdigest()
        return self._prefix + digest

    def unseen(self, events: Sequence[Event]) -> list[Event]:
        """The events not handled before, in order, each (source, id) once."""
        if not self.enabled:
            return list(events)
        keys = [self.key(event) for event in events]
        marks = self._cache().get_many(keys) if keys else []
        fresh: dict[str, Event] = {}
        for key, mark, event in zip(keys, marks, events):
            if mark is None and key not in fresh:
                fresh[key] = event
        return list(fresh.values())

    def mark(self, events: Sequence[Event]) -> None:
        if events and self.enabled:
            self._cache().set_many({self.key(event): _HANDLED for event in events}, ttl_s=self._ttl_s)
