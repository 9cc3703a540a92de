"""GBFS 2.3 and 3.0 bike share: docking stations' information and status, found from the system's ``gbfs.json``.

The connector reads ``gbfs.json`` (auto-discovery: ``data.<language>.feeds`` in 2.x, ``data.feeds`` in 3.0),
then ``station_information`` and ``station_status``, each with its own conditional GET; when neither changed
(304), nothing is read further. Each station becomes a ``bike-share`` reading (FIWARE
BikeHireDockingStation): ``num_bikes_available`` (2.3) or ``num_vehicles_available`` (3.0) bikes,
``num_docks_available`` free docks, ``num_docks_disabled`` docks out of service (0 when absent),
``capacity`` docks (when absent: every dock and docked bike the status counts), ``is_installed`` /
``is_renting`` / ``is_returning``, ``last_reported`` (POSIX seconds in 2.3, RFC 3339 in 3.0). The status
follows the simulator's rule: out of service when not installed or not renting, else empty, full, almost
empty or almost full (two or fewer), working. ``name`` is 2.3's string or 3.0's first localized text.

A station field the feed lacks is left out, so ingest refuses the reading naming it and it is dead-lettered;
a document that is not GBFS JSON (no ``data.stations`` list, no ``station_status`` feed) is a malformed feed.
Free-floating vehicles (``free_bike_status`` / ``vehicle_status``) have no stream of the platform yet: the
connector reports whether the system publishes them and leaves them alone.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from smartcity.connectors.polling import Fetcher, MalformedFeed, Reading

STATION_FEEDS = ("station_information", "station_status")
VEHICLE_FEEDS = ("free_bike_status", "vehicle_status")
ALMOST = 2


def load_json(url: str, body: bytes) -> dict[str, Any]:
    """A JSON object, or :class:`MalformedFeed` naming the body."""
    try:
        document = json.loads(body)
    except ValueError as error:
        raise MalformedFeed(url, "body", f"not JSON: {error}", body) from None
    if not isinstance(document, dict):
        raise MalformedFeed(url, "body", "not a JSON object", body)
    return document


def feed_urls(url: str, body: bytes) -> dict[str, str]:
    """Feed name -> URL from a 2.x or 3.0 ``gbfs.json``."""
    data = load_json(url, body).get("data")
    if isinstance(data, dict) and isinstance(data.get("feeds"), list):
        feeds = data["feeds"]  # 3.0
    elif isinstance(data, dict) and data and all(isinstance(v, dict) for v in data.values()):
        feeds = next(iter(data.values())).get("feeds")  # 2.x: one list per language, the first one taken
    else:
        feeds = None
    if not isinstance(feeds, list) or not all(isinstance(f, dict) and "name" in f and "url" in f for f in feeds):
        raise MalformedFeed(url, "data.feeds", "no list of {name, url} feeds (2.x: data.<language>.feeds)", body)
    return {feed["name"]: feed["url"] for feed in feeds}


def stations(url: str, body: bytes) -> tuple[dict[str, dict[str, Any]], Any]:
    """The stations of a station_information or station_status document by id, and its ``last_updated``."""
    document = load_json(url, body)
    listed = (document.get("data") or {}).get("stations") if isinstance(document.get("data"), dict) else None
    if not isinstance(listed, list) or not all(isinstance(s, dict) and "station_id" in s for s in listed):
        raise MalformedFeed(url, "data.stations", "not a list of stations with a station_id", body)
    return {str(s["station_id"]): s for s in listed}, document.get("last_updated")


def timestamp(value: Any) -> str | None:
    """GBFS time (2.3: POSIX seconds, 3.0: RFC 3339) as ISO 8601 with a timezone; None when absent."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, timezone.utc).isoformat()
    return value if isinstance(value, str) else None


def name_of(information: dict[str, Any]) -> str | None:
    name = information.get("name")
    if isinstance(name, list):  # 3.0: localized strings
        return next((item.get("text") for item in name if isinstance(item, dict)), None)
    return name


def status_of(bikes: int | None, docks: int | None, installed: Any, renting: Any) -> str | None:
    if installed is False or renting is False:
        return "outOfService"
    if bikes is None or docks is None:
        return None
    return ("empty" if bikes == 0 else "full" if docks == 0 else "almostEmpty" if bikes <= ALMOST
            else "almostFull" if docks <= ALMOST else "working")


def station_reading(station_id: str, information: dict[str, Any], status: dict[str, Any],
                    last_updated: Any) -> Reading:
    bikes = status.get("num_vehicles_available", status.get("num_bikes_available"))
    docks, disabled = status.get("num_docks_available"), status.get("num_docks_disabled", 0)
    capacity = information.get("capacity")
    if capacity is None and None not in (bikes, docks):
        capacity = bikes + docks + disabled + status.get("num_vehicles_disabled", status.get("num_bikes_disabled", 0))
    location = None
    if information.get("lon") is not None and information.get("lat") is not None:
        location = {"type": "Point", "coordinates": [information["lon"], information["lat"]]}
    data = {"id": station_id, "dateObserved": timestamp(last_updated), "name": name_of(information),
            "location": location, "totalSlotNumber": capacity, "availableBikeNumber": bikes, "freeSlotNumber": docks,
            "outOfServiceSlotNumber": disabled, "isInstalled": status.get("is_installed"),
            "isRenting": status.get("is_renting"), "isReturning": status.get("is_returning"),
            "status": status_of(bikes, docks, status.get("is_installed"), status.get("is_renting")),
            "dateLastReported": timestamp(status.get("last_reported"))}
    return Reading("bike-share", station_id, {name: value for name, value in data.items() if value is not None})


class GbfsSource:
    """Reads a GBFS system from its auto-discovery URL; see the module docstring."""

    kind = "gbfs"
    volatile = ("dateObserved", "dateLastReported")

    def __init__(self, url: str) -> None:
        self.url = url
        self.vehicle_feeds: list[str] = []

    def read(self, fetcher: Fetcher) -> list[Reading] | None:
        body, _ = fetcher.latest(self.url)
        urls = feed_urls(self.url, body)
        self.vehicle_feeds = [name for name in VEHICLE_FEEDS if name in urls]
        if "station_status" not in urls:
            raise MalformedFeed(self.url, "data.feeds", "no station_status feed: not a docking-station system", body)
        documents = {name: fetcher.latest(urls[name]) if name in urls else (b'{"data": {"stations": []}}', False)
                     for name in STATION_FEEDS}
        if not any(changed for _, changed in documents.values()):
            return None
        information, _ = stations(urls.get("station_information", self.url), documents["station_information"][0])
        status, last_updated = stations(urls["station_status"], documents["station_status"][0])
        return [station_reading(station_id, information.get(station_id, {}), station, last_updated)
                for station_id, station in status.items()]
