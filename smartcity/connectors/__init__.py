"""Connectors: small event sources that poll a standard feed and publish through the ingest functions.

One module per kind of feed (:data:`KINDS`): GTFS-realtime (``gtfs_realtime``), GBFS (``gbfs``), any JSON or
CSV open-data API with a mapping file (``http_poller``). :mod:`smartcity.connectors.polling` is the loop they
share (interval, conditional requests, backoff, change detection, dead letters); ``smartcity connect`` runs one.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import httpx

from smartcity.backends.bus import EventBus
from smartcity.connectors.dead_letters import DeadLetters
from smartcity.connectors.polling import Backoff, FeedSource, Fetcher, Poller
from smartcity.errors import ConfigurationError
from smartcity.ingest_client import IngestClient

KINDS = {"gtfs-rt": "gtfs_realtime", "gbfs": "gbfs", "http": "http_poller"}
USER_AGENT = "smartcity-connector/0.1"


def feed_source(kind: str, url: str, mapping: Path | None = None) -> FeedSource:
    """The source of ``kind`` reading ``url``; :class:`ConfigurationError` for an unknown kind or a missing mapping."""
    if kind not in KINDS:
        raise ConfigurationError("kind", f"unknown connector {kind!r}; known: {', '.join(KINDS)}")
    if (kind == "http") != (mapping is not None):
        raise ConfigurationError("--mapping", "the http connector needs a mapping file, and only it takes one")
    module = importlib.import_module(f"smartcity.connectors.{KINDS[kind]}")
    if kind == "gtfs-rt":
        return module.GtfsRealtimeSource(url)
    if kind == "gbfs":
        return module.GbfsSource(url)
    return module.HttpSource(url, module.load_mapping(mapping))


def http_client(timeout_s: float = 30.0) -> httpx.Client:
    return httpx.Client(timeout=timeout_s, headers={"user-agent": USER_AGENT}, follow_redirects=True)


def poller(source: FeedSource, gateway: str, bus: EventBus, partitions: int, interval_s: float, backoff: Backoff,
           client: httpx.Client | None = None, ingest_client: httpx.Client | None = None,
           key: str | None = None) -> Poller:
    """A :class:`Poller` of ``source`` posting to the ingest functions at ``gateway``, dead letters on ``bus``."""
    feed_client = client or http_client()
    return Poller(source, Fetcher(feed_client), IngestClient(gateway, ingest_client or feed_client, key),
                  DeadLetters(lambda: bus, partitions), interval_s, backoff)
