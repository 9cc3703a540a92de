"""Publishing the events a handler returns: to the topic its function declares, or the topic of their type.

Records are CloudEvents in Kafka binary mode (``ce_`` headers), keyed by the event's ``partitionkey``, so order
holds per key. Topics are created on first use with ``settings.topic_partitions`` partitions.
"""

from __future__ import annotations

import threading
from typing import Callable, Sequence

from cloudevents.core.v1.event import CloudEvent

from smartcity.backends.bus import EventBus
from smartcity.events import UnknownStreamError, stream_for_type
from smartcity.runtime.readings import publish_event


class UnroutableEvent(LookupError):
    """A returned event has no topic: the function declares none and its type belongs to no stream."""


class Publisher:
    def __init__(self, bus: Callable[[], EventBus], output_topic: str | None, partitions: int) -> None:
        self._bus = bus
        self._output_topic = output_topic
        self._partitions = partitions
        self._created: set[str] = set()
        self._lock = threading.Lock()
        self._unflushed = False

    def topic_of(self, event: CloudEvent) -> str:
        if self._output_topic:
            return self._output_topic
        try:
            return stream_for_type(event.get_type()).topic
        except UnknownStreamError as error:
            raise UnroutableEvent(
                f"{error}; or declare the function's topic with the annotation smartcity.io/output-topic"
            ) from None

    def ensure_topics(self, topics: Sequence[str]) -> None:
        with self._lock:
            missing = [topic for topic in topics if topic not in self._created]
            if missing:
                self._bus().create_topics(missing, self._partitions)
                self._created.update(missing)

    def publish(self, events: Sequence[CloudEvent], flush: bool = True) -> None:
        """Publish every event and (unless ``flush`` is False) wait until all are durable; raise if any is not."""
        if not events:
            return
        routed = [(self.topic_of(event), event) for event in events]
        self.ensure_topics(sorted({topic for topic, _ in routed}))
        bus = self._bus()
        for topic, event in routed:
            publish_event(bus, topic, event)
        self._unflushed = True
        if flush:
            self.flush()

    def flush(self) -> None:
        """Wait until everything published so far is durable; raise if some of it could not be written."""
        if self._unflushed:
            self._bus().flush()
            self._unflushed = False
