"""GBFS 2.3 and 3.0 bike share: docking stations and free-floating vehicles, found from the system's ``gbfs.json``.

The connector reads ``gbfs.json`` (auto-discovery: ``data.<language>.feeds`` in 2.x, ``data.feeds`` in 3.0),
then, each with its own conditional GET, ``station_information`` and ``station_status`` and the vehicles' feed
(2.3 ``free_bike_status``, 3.0 ``vehicle_status``) with ``vehicle_types``, those the system lists; when none of
them changed (304), nothing is read further. Each station becomes a ``bike-share`` reading (FIWARE
BikeHireDockingStation): ``num_bikes_available`` (2.3) or ``num_vehicles_available`` (3.0) bikes,
``num_docks_available`` free docks, ``num_docks_disabled`` docks out of service (0 when absent),
``capacity`` docks (when absent: every dock and docked bike the status counts), ``is_installed`` /
``is_renting`` / ``is_returning``, ``last_reported`` (POSIX seconds in 2.3, RFC 3339 in 3.0). The status
follows the simulator's rule: out of service when not installed or not renting, else empty, full, almost
empty or almost full (two or fewer), working. ``name`` is 2.3's string or 3.0's first localized text. Each
vehicle becomes a ``bike-share-vehicles`` reading (:mod:`smartcity.connectors.gbfs_vehicles`).

A field the feed lacks is left out, so ingest refuses the reading naming it and it is dead-lettered; a document
that is not GBFS JSON (no ``data.stations`` or vehicles list; neither a ``station_status`` nor a vehicles feed) is
a malformed feed.
"""

from __future__ import annotations

from typing import Any

from smartcity.connectors.gbfs_common import load_json, point, timestamp
from smartcity.connectors.gbfs_vehicles import vehicle_reading, vehicle_types, vehicles
from smartcity.connectors.polling import Fetcher, MalformedFeed, Reading

STATION_FEEDS = ("station_information", "station_status")
VEHICLE_FEEDS = ("free_bike_status", "vehicle_status")
ALMOST = 2


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
    data = {"id": station_id, "dateObserved": timestamp(last_updated), "name": name_of(information),
            "location": point(information), "totalSlotNumber": capacity, "availableBikeNumber": bikes, "freeSlotNumber": docks,
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

    def read(self, fetcher: Fetcher) -> list[Reading] | None:
        body, _ = fetcher.latest(self.url)
        urls = feed_urls(self.url, body)
        vehicle_feed = next((name for name in VEHICLE_FEEDS if name in urls), None)
        if "station_status" not in urls and vehicle_feed is None:
            raise MalformedFeed(self.url, "data.feeds", "no station_status, free_bike_status or vehicle_status feed",
                                body)
        wanted = [*STATION_FEEDS, *((vehicle_feed, "vehicle_types") if vehicle_feed else ())]
        documents = {name: fetcher.latest(urls[name]) for name in wanted if name in urls}
        if not any(changed for _, changed in documents.values()):
            return None
        bodies = {name: document for name, (document, _) in documents.items()}
        information = stations(urls["station_information"], bodies["station_information"])[0] \
            if "station_information" in bodies else {}
        readings = []
        if "station_status" in bodies:
            status, last_updated = stations(urls["station_status"], bodies["station_status"])
            readings += [station_reading(station_id, information.get(station_id, {}), station, last_updated)
                         for station_id, station in status.items()]
        if vehicle_feed:
            types = vehicle_types(urls["vehicle_types"], bodies["vehicle_types"]) if "vehicle_types" in bodies else {}
            listed, last_updated = vehicles(urls[vehicle_feed], bodies[vehicle_feed])
            readings += [vehicle_reading(vehicle, types, information, last_updated) for vehicle in listed]
        return readings
