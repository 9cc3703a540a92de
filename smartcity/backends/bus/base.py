"""The event bus contract: topics of keyed records with headers, consumer groups, committed offsets.

Kafka semantics are the reference: a topic has partitions, a record's partition follows from its key, order is
kept per partition, a consumer group's committed offsets say where it resumes. Delivery is at-least-once: a
consumer commits only what it has handled.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, Sequence


@dataclass(frozen=True)
class Record:
    """One record as a consumer sees it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes]] = field(default_factory=list)
    timestamp_ms: int = 0


class Consumer(Protocol):
    """A member of a consumer group, subscribed to some topics."""

    def poll(self, timeout_s: float = 1.0, max_records: int = 500) -> list[Record]:
        """Records after the group's position, in partition order; empty when none came within the timeout."""

    def commit(self, records: Sequence[Record]) -> None:
        """Commit, per partition, the offset after the highest of these records. The group resumes there."""

    def close(self) -> None:
        """Leave the group. Uncommitted records will be delivered again to the next member."""


class EventBus(Protocol):
    """Publishes records and opens consumers. Opened by ``smartcity.backends.bus.open_bus(url)``."""

    def create_topics(self, topics: Sequence[str], partitions: int) -> None:
        """Create the topics that do not exist yet; existing ones are left as they are."""

    def publish(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        """Queue one record; it is durable after :meth:`flush`."""

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every queued record is durably written; raise if some could not be."""

    def consumer(self, group: str, topics: Sequence[str], from_beginning: bool = True) -> Consumer:
        """A consumer in ``group``. With no committed offset it starts at the beginning (or the end)."""

    def close(self) -> None:
        """Flush and release connections."""
