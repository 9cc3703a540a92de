"""Where the simulator's events go: the event bus, or the HTTP ingest functions.

- :class:`BusSink` publishes CloudEvents in Kafka binary mode (``ce_`` headers, JSON data, keyed by the stream's
  key field) to the stream's topic, on Kafka or the embedded log (``smartcity.backends.bus.open_bus``). It plays
  the ingest step's part, so it pseudonymizes personal fields first, with the same key: no topic ever holds a
  raw plate, driver id or precise GPS fix. Event ids are the ingest's (same reading, same id).
- :class:`HttpSink` POSTs each tick's readings of a stream to that stream's ingest function, as a JSON array or
  CSV, through :mod:`smartcity.ingest_client` (the connectors' client too); the ingest function pseudonymizes.
"""

from __future__ import annotations

from typing import Callable, Protocol, Sequence

import httpx
from cloudevents.core.v1.event import CloudEvent

from smartcity.backends.bus import EventBus
from smartcity.events import TOPICS, CityEvent, Stream
from smartcity.ingest_client import IngestClient, IngestUnavailable
from smartcity.privacy import Pseudonymizer
from smartcity.runtime.readings import publish_event, reading_event

SOURCE = "/smartcity/simulator"


class SinkError(RuntimeError):
    """The destination refused or lost events; the message says which and why."""


class Sink(Protocol):
    def send(self, stream: Stream, events: Sequence[CityEvent]) -> None:
        """Hand over one tick's events of one stream."""

    def flush(self) -> None:
        """Block until everything sent is delivered; raise :class:`SinkError` if some was not."""

    def close(self) -> None:
        """Flush and release connections."""


def cloud_event(stream: Stream, event: CityEvent) -> CloudEvent:
    """The CloudEvent carrying one reading, as the ingest step makes it (same recipe, same id, subject and key)."""
    return reading_event(stream, event, f"{SOURCE}/{stream.topic}")


class BusSink:
    """Publishes to each stream's topic, ``topic_prefix`` first (tests and benchmarks use their own topics)."""

    def __init__(self, bus: EventBus, partitions: int, pseudonymizer: Callable[[], Pseudonymizer],
                 topic_prefix: str = "") -> None:
        self.bus = bus
        self._pseudonymizer = pseudonymizer
        self.topic_prefix = topic_prefix
        bus.create_topics([topic_prefix + topic for topic in TOPICS], partitions)

    def send(self, stream: Stream, events: Sequence[CityEvent]) -> None:
        personal = bool(stream.personal_fields)
        for event in events:
            if personal:
                event = self._pseudonymizer().apply(event)
            publish_event(self.bus, self.topic_prefix + stream.topic, cloud_event(stream, event))

    def flush(self) -> None:
        self.bus.flush()

    def close(self) -> None:
        self.bus.close()


class HttpSink:
    """POSTs each tick's readings of a stream to its ingest function through the platform's one ingest client
    (:class:`smartcity.ingest_client.IngestClient`: ``{topic}`` in ``url`` is the stream's topic, batches,
    retries with backoff, the ``api_key`` in ``X-API-Key``); a refused reading or an unavailable function is a
    :class:`SinkError` naming them."""

    def __init__(self, url: str, body_format: str = "json", client: httpx.Client | None = None,
                 api_key: str | None = None) -> None:
        self.ingest = IngestClient(url, client, api_key, body_format)

    def send(self, stream: Stream, events: Sequence[CityEvent]) -> None:
        if not events:
            return
        try:
            refused = self.ingest.send(stream.topic, [event.model_dump(mode="json") for event in events])
        except IngestUnavailable as error:
            raise SinkError(str(error)) from None
        if refused:
            reasons = "; ".join(f"[{index}] {reasons}" for index, reasons in list(refused.items())[:5])
            raise SinkError(f"POST {self.ingest.url_of(stream.topic)}: {len(refused)} of {len(events)} "
                            f"{stream.topic} readings refused: {reasons}")

    def flush(self) -> None:
        """Every POST has been answered when :meth:`send` returns."""

    def close(self) -> None:
        self.ingest.close()
