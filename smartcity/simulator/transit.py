"""public-transport: vehicles running the trips of a GTFS feed, late or early as the traffic makes them.

The source reads any GTFS zip through :mod:`smartcity.city.gtfs` (by default the configured city's own feed,
its ``transit.gtfs``); the feed's stops must lie in the city. Each running trip has a
delay that starts at its terminus (a few seconds to a couple of minutes), grows while the bus is in a congested
zone (the traffic source's loop occupancy), wanders a little, and shrinks when the driver can make up time; a
bus never leaves a stop early. Positions are interpolated along the trip's shape (or between stops when the
feed has no shape) at the delayed schedule. Each running vehicle reports every 15 s of city time.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from smartcity.errors import ConfigurationError
from smartcity.events import PublicTransportVehicle
from smartcity.events.common import Location
from smartcity.city.gtfs import Trip, load_feed
from smartcity.simulator.city import metres
from smartcity.simulator.profiles import daily_profile
from smartcity.simulator.source import Source, SourceContext

INCOMING_S = 30
CONGESTION_DELAY_PER_S = 0.25  # seconds lost per second driven in a fully congested zone
MAX_DELAY_S = 1800
OCCUPANCY = ("EMPTY", "MANY_SEATS_AVAILABLE", "FEW_SEATS_AVAILABLE", "STANDING_ROOM_ONLY", "FULL")


@dataclass
class Position:
    lon: float
    lat: float
    heading: float
    speed_kmh: float
    stop_index: int
    status: str


class TransitSource(Source):
    topic = "public-transport"
    every_s = 15

    def __init__(self, context: SourceContext, gtfs: Path | None = None) -> None:
        super().__init__(context)
        gtfs = gtfs or self.city.extent.gtfs_file
        if gtfs is None:
            raise ConfigurationError("--gtfs", f"the city {self.city.extent.name} has no transit feed (transit.gtfs "
                                               "in its city file): name one")
        self.feed = load_feed(gtfs)
        outside = [s.id for s in self.feed.stops.values() if not self.city.extent.contains(s.lon, s.lat)]
        if outside:
            raise ConfigurationError(
                "--gtfs", f"{len(outside)} of {len(self.feed.stops)} stops lie outside the city "
                          f"{self.city.extent.name} (first: {outside[0]}); use a feed of the city, or make the feed's "
                          "city the configured one (smartcity city build --from-gtfs, SMARTCITY_CITY_FILE)")
        self._days: dict[date, list[Trip]] = {}
        self._delays: dict[tuple[date, str], float] = {}
        self._finished: set[tuple[date, str]] = set()

    def observe(self, now: datetime) -> list[PublicTransportVehicle]:
        local = now.astimezone(self.city.timezone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        events = []
        for service_day in (local.date() - timedelta(days=1), local.date()):
            seconds = (local - midnight).total_seconds() + (86400 if service_day < local.date() else 0)
            for trip in self._trips(service_day):
                if trip.start_s > seconds:
                    break
                key = (service_day, trip.id)
                if key in self._finished or seconds > trip.end_s + MAX_DELAY_S:
                    continue
                delay = self._delay(key, trip, seconds)
                position = self._position(trip, seconds - delay)
                if position is None:
                    if key in self._delays and seconds - self._delays[key] > trip.end_s:
                        del self._delays[key]
                        self._finished.add(key)
                    continue
                events.append(self._event(trip, service_day, position, round(delay), now))
        return events

    def _trips(self, day: date) -> list[Trip]:
        if day not in self._days:
            self._days = {d: trips for d, trips in self._days.items() if d >= day - timedelta(days=1)}
            self._finished = {key for key in self._finished if key[0] >= day - timedelta(days=1)}
            self._days[day] = self.feed.trips_on(day)
        return self._days[day]

    def _delay(self, key: tuple[date, str], trip: Trip, seconds: float) -> float:
        """The trip's delay now, advanced by one reporting interval."""
        if key not in self._delays:
            self._delays[key] = max(0.0, self.rng.gauss(40, 50))
            return self._delays[key]
        position = self._position(trip, seconds - self._delays[key])
        zone = self.city.extent.zone_of(position.lon, position.lat) if position else None
        congestion = self.state.congestion(zone) if zone else 0.0
        change = self.every_s * (CONGESTION_DELAY_PER_S * congestion - 0.03) + self.rng.gauss(0, 3)
        self._delays[key] = min(MAX_DELAY_S, max(0.0, self._delays[key] + change))
        return self._delays[key]

    def _position(self, trip: Trip, scheduled_s: float) -> Position | None:
        """Where the trip's timetable puts the vehicle at ``scheduled_s``; None before its start or after its end."""
        times = trip.stop_times
        if scheduled_s < times[0].departure_s - 60 or scheduled_s > times[-1].arrival_s:
            return None
        for index, stop_time in enumerate(times):
            if scheduled_s <= stop_time.departure_s:
                if scheduled_s >= stop_time.arrival_s or index == 0:
                    stop = self.feed.stops[stop_time.stop]
                    return Position(stop.lon, stop.lat, self._heading(trip, index), 0.0, index, "STOPPED_AT")
                previous = times[index - 1]
                share = (scheduled_s - previous.departure_s) / max(1, stop_time.arrival_s - previous.departure_s)
                lon, lat, heading, metres_ = self._between(trip, index - 1, index, share)
                speed = metres_ / max(1, stop_time.arrival_s - previous.departure_s) * 3.6
                status = "INCOMING_AT" if stop_time.arrival_s - scheduled_s <= INCOMING_S else "IN_TRANSIT_TO"
                return Position(lon, lat, heading, speed, index, status)
        return None

    def _between(self, trip: Trip, a: int, b: int, share: float) -> tuple[float, float, float, float]:
        """(lon, lat, heading, metres between the stops) at ``share`` of the way from stop ``a`` to ``b``."""
        first, second = trip.stop_times[a], trip.stop_times[b]
        shape = self.feed.shapes.get(trip.shape or "")
        if shape and first.distance is not None and second.distance is not None:
            along = first.distance + share * (second.distance - first.distance)
            distances = [point[2] for point in shape]
            i = min(max(1, bisect.bisect_left(distances, along)), len(shape) - 1)
            (lon1, lat1, d1), (lon2, lat2, d2) = shape[i - 1], shape[i]
            part = (along - d1) / (d2 - d1) if d2 > d1 else 0.0
            return (lon1 + part * (lon2 - lon1), lat1 + part * (lat2 - lat1), _bearing(lon1, lat1, lon2, lat2),
                    second.distance - first.distance)
        start, end = self.feed.stops[first.stop], self.feed.stops[second.stop]
        return (start.lon + share * (end.lon - start.lon), start.lat + share * (end.lat - start.lat),
                _bearing(start.lon, start.lat, end.lon, end.lat), metres(start.lon, start.lat, end.lon, end.lat))

    def _heading(self, trip: Trip, index: int) -> float:
        times = trip.stop_times
        a, b = (index, index + 1) if index + 1 < len(times) else (index - 1, index)
        return self._between(trip, a, b, 0.5)[2]

    def _event(self, trip: Trip, service_day: date, position: Position, delay: int,
               now: datetime) -> PublicTransportVehicle:
        vehicle = trip.block or f"{trip.id}@{service_day:%Y%m%d}"
        stop_time = trip.stop_times[position.stop_index]
        local = now.astimezone(self.city.timezone)
        crowd = daily_profile(local.hour + local.minute / 60, local.weekday() < 5)
        return PublicTransportVehicle(
            id=PublicTransportVehicle.make_id(vehicle), dateObserved=now, vehicleId=vehicle,
            vehicleType=self.feed.route_types.get(trip.route, "bus"), routeId=trip.route, tripId=trip.id,
            stopId=stop_time.stop, stopSequence=stop_time.sequence, currentStatus=position.status, delay=delay,
            location=Location.at(position.lon, position.lat),
            zone=self.city.extent.zone_of(position.lon, position.lat), speed=round(min(position.speed_kmh, 150), 1),
            heading=round(position.heading, 1) % 360, occupancyStatus=OCCUPANCY[min(4, int(1 + 3.5 * crowd))])


def _bearing(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Compass bearing (degrees clockwise from north) from the first point to the second."""
    y = math.sin(math.radians(lon2 - lon1)) * math.cos(math.radians(lat2))
    x = (math.cos(math.radians(lat1)) * math.sin(math.radians(lat2))
         - math.sin(math.radians(lat1)) * math.cos(math.radians(lat2)) * math.cos(math.radians(lon2 - lon1)))
    return math.degrees(math.atan2(y, x)) % 360
