"""Where the simulator's events go: the event bus, or the HTTP ingest functions.

- :class:`BusSink` publishes CloudEvents in Kafka binary mode (``ce_`` headers, JSON data, keyed by the stream's
  key field) to the stream's topic, on Kafka or the embedded log (``smartcity.backends.bus.open_bus``). It plays
  the ingest step's part, so it pseudonymizes personal fields first, with the same key: no topic ever holds a
  raw plate, driver id or precise GPS fix. Event ids are the ingest's (same reading, same id).
- :class:`HttpSink` POSTs each tick's readings of a stream to that stream's ingest function, as a JSON array or
  CSV (``lon``/``lat`` columns), the two bodies ``smartcity.ingest`` takes; the ingest function pseudonymizes.
"""

from __future__ import annotations

import csv
import io
import json
import time
from typing import Callable, Protocol, Sequence

import httpx
from cloudevents.core.v1.event import CloudEvent

from smartcity.backends.bus import EventBus
from smartcity.events import TOPICS, CityEvent, Stream
from smartcity.privacy import Pseudonymizer
from smartcity.runtime.readings import publish_event, reading_event
from smartcity.settings import Settings

SOURCE = "/smartcity/simulator"
CLIENT_API_KEY_SECRET = "ingest-api-key"  # the plain key a client holds (the functions hold only digests)
# Over the gateway's rate a POST is answered 429 with Retry-After: wait that long (at most MAX_WAIT_S), a few times.
RETRIES_WHEN_LIMITED = 5
MAX_WAIT_S = 10.0


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
    """POSTs to ``url`` with ``{topic}`` replaced by the stream's topic (one URL for all if it has none), with the
    source's ``api_key`` (``X-API-Key``) when given: the ingest functions take no anonymous readings."""

    def __init__(self, url: str, body_format: str = "json", client: httpx.Client | None = None,
                 api_key: str | None = None) -> None:
        if body_format not in ("json", "csv"):
            raise ValueError(f"format must be json or csv, not {body_format!r}")
        self.url = url
        self.body_format = body_format
        self.client = client or httpx.Client(timeout=30.0)
        self.headers = {"x-api-key": api_key} if api_key else {}

    def send(self, stream: Stream, events: Sequence[CityEvent]) -> None:
        if not events:
            return
        rows = [event.model_dump(mode="json") for event in events]
        if self.body_format == "csv":
            body, content_type = csv_body(rows).encode("utf-8"), "text/csv"
        else:
            body, content_type = json.dumps(rows).encode("utf-8"), "application/json"
        url = self.url.replace("{topic}", stream.topic)
        response = self._post(url, body, content_type)
        if response.status_code >= 300:
            raise SinkError(f"POST {url}: {response.status_code} {response.text[:500]}")

    def _post(self, url: str, body: bytes, content_type: str) -> httpx.Response:
        """POST, waiting out the gateway's rate limit (429, ``Retry-After``) a few times."""
        response = self._post_once(url, body, content_type)
        for _ in range(RETRIES_WHEN_LIMITED):
            if response.status_code != 429:
                break
            time.sleep(min(MAX_WAIT_S, float(response.headers.get("retry-after", "1"))))
            response = self._post_once(url, body, content_type)
        return response

    def _post_once(self, url: str, body: bytes, content_type: str) -> httpx.Response:
        try:
            return self.client.post(url, content=body, headers={**self.headers, "content-type": content_type})
        except httpx.HTTPError as error:
            raise SinkError(f"POST {url}: {error}") from None

    def flush(self) -> None:
        """Every POST has been answered when :meth:`send` returns."""

    def close(self) -> None:
        self.client.close()


def client_api_key(settings: Settings) -> str | None:
    """The ingest API key this client holds, from the secret file ``ingest-api-key``; None without one."""
    path = settings.secrets_dir / CLIENT_API_KEY_SECRET
    return (path.read_text().strip() or None) if path.is_file() else None


def csv_body(rows: Sequence[dict]) -> str:
    """Readings as CSV: one column per field, the location as ``lon`` and ``lat``, null as an empty cell."""
    flat = []
    for row in rows:
        row = dict(row)
        location = row.pop("location", None)
        if location is not None:
            row["lon"], row["lat"] = location["coordinates"]
        flat.append({name: "" if value is None else _cell(value) for name, value in row.items()})
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(flat[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    return text.getvalue()


def _cell(value: object) -> object:
    return ("true" if value else "false") if isinstance(value, bool) else value
