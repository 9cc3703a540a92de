"""A city's public transport from its GTFS feed: stops (with their zones) and lines (the stops of each route's
longest trip)."""

from __future__ import annotations

from collections.abc import Callable

from smartcity.city.gtfs import Feed
from smartcity.city.model import Transit, TransitLine, TransitStop

ROUTE_TYPE_NAMES = {"0": "tram", "900": "tram", "1": "metro", "2": "rail", "3": "bus", "700": "bus", "4": "ferry"}


def transit_of(feed: Feed, zone_of: Callable[[float, float], str], gtfs: str | None = None) -> Transit:
    """The feed's stops and lines; ``gtfs`` the feed's path as the city file names it."""
    longest: dict[str, list[str]] = {}
    for trip in sorted(feed.trips.values(), key=lambda t: t.id):
        stops = [stop_time.stop for stop_time in trip.stop_times]
        if len(stops) > len(longest.get(trip.route, ())):
            longest[trip.route] = stops
    return Transit(
        gtfs=gtfs,
        stops=[TransitStop(id=s.id, name=s.name, lon=s.lon, lat=s.lat, zone=zone_of(s.lon, s.lat))
               for s in sorted(feed.stops.values(), key=lambda s: s.id)],
        lines=[TransitLine(id=r.id, short_name=r.short_name, long_name=r.long_name,
                           route_type=ROUTE_TYPE_NAMES.get(r.type, r.type), stops=longest.get(r.id, []))
               for r in sorted(feed.routes.values(), key=lambda r: r.id)],
    )
