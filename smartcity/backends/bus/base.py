"""The event bus contract: topics of keyed records with headers, consumer groups, committed offsets.

Kafka semantics are the reference: a topic has partitions, a record's partition follows from its key, order is
kept per partition, a consumer group's committed offsets say where it resumes. Delivery is at-least-once: a
consumer commits only what it has handled.

Rules both backends enforce the same way (so code tried on the embedded bus behaves alike on Kafka):
topic and group names are ``[A-Za-z0-9][A-Za-z0-9._-]*`` (at most 249 characters); header names are unique
within a record and header values are UTF-8 text (CloudEvents' binary Kafka binding needs nothing else).
Publishing to a topic that was never created is an error: at once on the file log, at :meth:`EventBus.flush`
on Kafka (unless the broker creates topics on first use).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Protocol, Sequence

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,248}")


class DeliveryError(Exception):
    """Some published records could not be written; :meth:`EventBus.flush` raises it, naming the first cause."""


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

    def delete_topics(self, topics: Sequence[str]) -> None:
        """Delete topics and their records (tests and resets); absent ones are ignored."""

    def publish(
        self, topic: str, value: bytes, key: bytes | None = None, headers: Sequence[tuple[str, bytes]] = ()
    ) -> None:
        """Queue one record; it is durable after :meth:`flush`."""

    def flush(self, timeout_s: float = 30.0) -> None:
        """Block until every queued record is durably written; raise :class:`DeliveryError` if some could not be."""

    def consumer(self, group: str, topics: Sequence[str], from_beginning: bool = True) -> Consumer:
        """A consumer in ``group``. With no committed offset it starts at the beginning (or the end)."""

    def close(self) -> None:
        """Flush and release connections."""


def check_name(kind: str, name: str) -> str:
    """A topic or group name, or ValueError saying what is wrong with it."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{kind} name {name!r} is invalid: expected [A-Za-z0-9][A-Za-z0-9._-]*, at most 249 characters")
    return name


def check_headers(headers: Sequence[tuple[str, bytes]]) -> list[tuple[str, bytes]]:
    """Headers as a list, or ValueError naming the header that breaks the rules."""
    seen: set[str] = set()
    for name, value in headers:
        if not isinstance(name, str) or not name:
            raise ValueError(f"header name {name!r} is invalid: expected a non-empty string")
        if name in seen:
            raise ValueError(f"header {name!r} appears twice: header names must be unique")
        seen.add(name)
        try:
            bytes(value).decode("utf-8")
        except (TypeError, UnicodeDecodeError):
            raise ValueError(f"header {name!r}: the value must be UTF-8 bytes") from None
    return [(name, bytes(value)) for name, value in headers]


def offsets_to_commit(records: Sequence[Record]) -> dict[tuple[str, int], int]:
    """Per (topic, partition), the offset after the highest of these records: where the group resumes."""
    offsets: dict[tuple[str, int], int] = {}
    for record in records:
        partition = (record.topic, record.partition)
        offsets[partition] = max(offsets.get(partition, 0), record.offset + 1)
    return offsets
