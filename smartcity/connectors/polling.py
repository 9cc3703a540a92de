"""The loop every connector shares: poll a feed every interval, with conditional GETs, backoff and change detection.

- :class:`Fetcher` sends ``If-None-Match`` / ``If-Modified-Since`` with the validators of the URL's last answer;
  a 304 means "not modified" and nothing is read again. A status of 400 or more, or no answer, is a
  :class:`FeedUnavailable`. A poll that fails (feed or ingest) forgets the validators it was given, so that
  readings it could not deliver are not hidden behind a 304 next time.
- :class:`Backoff`: after ``n`` failures in a row the next poll waits ``initial * 2**(n-1)`` seconds, at most
  ``maximum``, less up to half of it at random (jitter, so many connectors do not retry in step): below the cap,
  never less than after ``n - 1`` failures. The first success brings the interval back.
- :class:`ChangeTracker` remembers a fingerprint of each entity's last published reading (without its
  observation time): an entity whose reading did not change is not published again; one no longer in the feed
  is forgotten.
- :class:`Poller` runs a :class:`FeedSource`: its readings go to the ingest functions
  (:class:`smartcity.ingest_client.IngestClient`), so validation, pseudonymization and the stream's
  topic are ingest's; a malformed feed (:class:`MalformedFeed`) and every reading ingest refuses are
  dead-lettered with the reason, and polling goes on.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from smartcity.connectors.dead_letters import DeadLetters
from smartcity.ingest_client import IngestClient, IngestUnavailable

logger = logging.getLogger(__name__)


class FeedUnavailable(RuntimeError):
    """The feed did not answer, or answered with an error status: a transient failure, retried with backoff."""


class MalformedFeed(ValueError):
    """The feed answered, but its content cannot be read: ``field`` names what is wrong (``body``, a JSON path)."""

    def __init__(self, url: str, field: str, reason: str, body: bytes = b"") -> None:
        self.url, self.field, self.reason, self.body = url, field, reason, body
        super().__init__(f"{url}: {field}: {reason}")


@dataclass(frozen=True)
class Reading:
    """One entity's reading for one stream, in the key-value form ingest takes; ``key`` identifies the entity."""

    topic: str
    key: str
    data: dict[str, Any]


class FeedSource(Protocol):
    """A kind of feed (GTFS-realtime, GBFS, a mapped open-data API)."""

    kind: str

    def read(self, fetcher: Fetcher) -> list[Reading] | None:
        """Fetch the feed through ``fetcher`` and map it; None when none of its documents changed (304).
        Raises :class:`FeedUnavailable` (retried with backoff) or :class:`MalformedFeed` (dead-lettered)."""


@dataclass
class Fetcher:
    """Conditional GETs: the last ETag and Last-Modified of each URL go back as If-None-Match / If-Modified-Since."""

    client: httpx.Client
    validators: dict[str, dict[str, str]] = field(default_factory=dict)
    bodies: dict[str, bytes] = field(default_factory=dict)

    def get(self, url: str) -> bytes | None:
        """The body of ``url``, or None when the server says it is not modified since the last answer."""
        try:
            response = self.client.get(url, headers=self.validators.get(url, {}))
        except httpx.HTTPError as error:
            raise FeedUnavailable(f"GET {url}: {type(error).__name__}: {error}") from None
        if response.status_code == 304:
            return None
        if response.status_code >= 400:
            raise FeedUnavailable(f"GET {url}: {response.status_code} {response.reason_phrase}")
        validators = {"If-None-Match": response.headers.get("etag"),
                      "If-Modified-Since": response.headers.get("last-modified")}
        self.validators[url] = {name: value for name, value in validators.items() if value}
        self.bodies[url] = response.content
        return response.content

    def latest(self, url: str) -> tuple[bytes, bool]:
        """The body of ``url`` (the last one read when the server answers 304) and whether it is new."""
        body = self.get(url)
        if body is not None:
            return body, True
        if url not in self.bodies:
            raise FeedUnavailable(f"GET {url}: 304 Not Modified to a request that had no validators")
        return self.bodies[url], False


@dataclass(frozen=True)
class Backoff:
    """Capped exponential backoff with jitter: see the module docstring."""

    initial_s: float = 1.0
    maximum_s: float = 300.0
    rng: random.Random = field(default_factory=random.Random)

    def delay(self, failures: int) -> float:
        ceiling = min(self.maximum_s, self.initial_s * 2 ** max(0, failures - 1))
        return ceiling * (0.5 + 0.5 * self.rng.random())


class ChangeTracker:
    """Which entities changed since they were last published (fingerprints without the volatile fields)."""

    def __init__(self, volatile: Iterable[str] = ("dateObserved",)) -> None:
        self.volatile = frozenset(volatile)
        self._seen: dict[tuple[str, str], str] = {}

    def fingerprint(self, reading: Reading) -> str:
        stable = {name: value for name, value in reading.data.items() if name not in self.volatile}
        return hashlib.sha256(json.dumps(stable, sort_keys=True, default=str).encode()).hexdigest()

    def changed(self, readings: Iterable[Reading]) -> list[Reading]:
        return [r for r in readings if self._seen.get((r.topic, r.key)) != self.fingerprint(r)]

    def remember(self, readings: Iterable[Reading]) -> None:
        for reading in readings:
            self._seen[(reading.topic, reading.key)] = self.fingerprint(reading)

    def forget_absent(self, readings: Iterable[Reading]) -> None:
        """Keep only the entities of ``readings``, a whole feed as read: GBFS gives a vehicle a new id after each
        trip, so a long-running connector must not remember every id it ever saw. One that comes back is new."""
        present = {(reading.topic, reading.key) for reading in readings}
        self._seen = {entity: seen for entity, seen in self._seen.items() if entity in present}


@dataclass
class PollReport:
    """What one poll did."""

    not_modified: bool = False
    read: int = 0
    published: int = 0
    refused: int = 0
    malformed: str | None = None


class Poller:
    """Polls one :class:`FeedSource` every ``interval_s`` and publishes what changed through ingest."""

    def __init__(self, source: FeedSource, fetcher: Fetcher, ingest: IngestClient, dead_letters: DeadLetters,
                 interval_s: float, backoff: Backoff, tracker: ChangeTracker | None = None) -> None:
        self.source, self.fetcher, self.ingest, self.dead_letters = source, fetcher, ingest, dead_letters
        self.interval_s, self.backoff = interval_s, backoff
        self.tracker = tracker or ChangeTracker(getattr(source, "volatile", ("dateObserved",)))
        self.failures = 0

    def poll(self) -> PollReport:
        """One poll. Raises :class:`FeedUnavailable` or :class:`IngestUnavailable` (transient: back off); then the
        validators of this poll's answers are forgotten, so that the next poll reads the documents again instead of
        being told 304 about readings that were never delivered."""
        validators = dict(self.fetcher.validators)
        try:
            return self._poll()
        except Exception:
            self.fetcher.validators = validators
            raise

    def _poll(self) -> PollReport:
        try:
            readings = self.source.read(self.fetcher)
        except MalformedFeed as error:  # its validators are kept: the same bad body is not dead-lettered twice
            self.dead_letters.malformed_feed(self.source.kind, error)
            logger.warning("%s: malformed feed dead-lettered: %s", self.source.kind, error)
            return PollReport(malformed=str(error))
        if readings is None:
            return PollReport(not_modified=True)
        self.tracker.forget_absent(readings)
        changed = self.tracker.changed(readings)
        report = PollReport(read=len(readings))
        for topic in sorted({reading.topic for reading in changed}):
            batch = [reading for reading in changed if reading.topic == topic]
            refusals = self.ingest.send(topic, [reading.data for reading in batch])
            for index, reasons in refusals.items():
                self.dead_letters.refused_reading(self.source.kind, self.ingest.url_of(topic), batch[index], reasons)
            self.tracker.remember(batch)  # a refused reading is dead-lettered once, until it changes
            report.published += len(batch) - len(refusals)
            report.refused += len(refusals)
        return report

    def next_wait(self, error: Exception | None) -> float:
        """Seconds until the next poll after a poll that failed with ``error`` (None: it succeeded)."""
        if error is None:
            self.failures = 0
            return self.interval_s
        self.failures += 1
        return self.backoff.delay(self.failures)

    def run(self, stop: threading.Event, wait: Callable[[float], bool] | None = None,
            on_poll: Callable[[PollReport | Exception], None] | None = None) -> None:
        """Poll until ``stop`` is set; ``wait(seconds)`` sleeps between polls and returns True to stop."""
        wait = wait or stop.wait
        while not stop.is_set():
            outcome: PollReport | Exception
            try:
                outcome = self.poll()
            except (FeedUnavailable, IngestUnavailable) as error:
                logger.warning("%s: %s (failure %d in a row)", self.source.kind, error, self.failures + 1)
                outcome = error
            except Exception as error:  # a bug or an unforeseen answer must not end a long-running source
                logger.exception("%s: poll failed (failure %d in a row)", self.source.kind, self.failures + 1)
                outcome = error
            if on_poll:
                on_poll(outcome)
            if wait(self.next_wait(outcome if isinstance(outcome, Exception) else None)):
                return
