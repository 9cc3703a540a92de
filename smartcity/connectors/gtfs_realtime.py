"""GTFS-realtime: VehiclePositions, TripUpdates and ServiceAlerts of a feed, matched to the city's static GTFS.

One URL is polled; its ``FeedMessage`` (protobuf, read with ``gtfs-realtime-bindings``) may hold any of the
three entity kinds, as most agencies' combined feeds do.

- A **VehiclePosition** becomes a ``public-transport`` reading. The static GTFS of the configured city
  (:func:`static_gtfs_path`: the transit feed of ``SMARTCITY_CITY_FILE``'s city) gives the
  route's vehicle type and, where the feed leaves them out, the route of the trip and the stop of the current
  stop sequence (or the other way round). ``speed`` comes in m/s (ingest converts it to km/h), ``bearing`` is the
  heading; a feed without speed, bearing or occupancy status (most leave them out) gives a reading without them,
  stored and served as null. The **delay** is the trip's TripUpdate for that stop (or the last stop before it with one); without
  one it is estimated from the timetable: how far the fix's time lies outside the scheduled window at the stop
  (between arrival and departure when stopped at it, between leaving the previous stop and reaching it when on
  the way), in the configured city's time zone. What the feed does not give and cannot be derived is left out, so ingest
  refuses the reading naming the field and the connector dead-letters it.
- A **ServiceAlert** becomes an ``incidents`` Alert where it fits one: its cause or effect is an accident
  (``carAccident``), construction or maintenance (``roadWorks``), a detour (``roadClosed``) or significant
  delays (``trafficJam``), and it names a stop of the static GTFS (the alert is placed there; ingest finds the
  road segment nearest to it). Other alerts (a strike, a lift out of order, a route-wide notice) are skipped.
  Severity ``INFO``/``WARNING``/``SEVERE`` becomes ``informational``/``medium``/``high``; GTFS-realtime's
  default ``UNKNOWN_SEVERITY`` is ``informational``.
- A body that is not a ``FeedMessage`` is a malformed feed (dead-lettered with the parser's reason).
"""

from __future__ import annotations

from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from smartcity.city.files import configured_city
from smartcity.city.gtfs import Feed, Trip, load_feed
from smartcity.connectors.polling import Fetcher, MalformedFeed, Reading
from smartcity.errors import ConfigurationError
from smartcity.extras import MissingExtra

try:
    from google.protobuf.message import DecodeError
    from google.transit import gtfs_realtime_pb2 as rt
except ImportError:  # pragma: no cover - the extra's absence is reported, not hidden
    raise MissingExtra("connectors", ["gtfs_realtime_bindings"]) from None

CAUSES = {"ACCIDENT": "carAccident", "CONSTRUCTION": "roadWorks", "MAINTENANCE": "roadWorks"}
EFFECTS = {"DETOUR": "roadClosed", "SIGNIFICANT_DELAYS": "trafficJam"}
SEVERITIES = {"INFO": "informational", "WARNING": "medium", "SEVERE": "high", "UNKNOWN_SEVERITY": "informational"}


def static_gtfs_path() -> Path:
    """The static GTFS of the configured city (``SMARTCITY_CITY_FILE``; by default the Cologne district's feed)."""
    path = configured_city().gtfs_file
    if path is None:
        raise ConfigurationError("SMARTCITY_CITY_FILE", "the configured city has no GTFS feed: the gtfs-rt "
                                                        "connector matches the vehicles to its trips and stops")
    return path


def static_gtfs(path: Path | None = None) -> Feed:
    """The static GTFS at ``path`` (default :func:`static_gtfs_path`), read once per file."""
    return _feed(path or static_gtfs_path())


@lru_cache(maxsize=4)
def _feed(path: Path) -> Feed:
    return load_feed(path)


def iso(seconds: int) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).isoformat()


class GtfsRealtimeSource:
    """Reads one GTFS-realtime URL; see the module docstring for the mapping."""

    kind = "gtfs-rt"

    def __init__(self, url: str, feed: Feed | None = None, tz: str | None = None) -> None:
        self.url = url
        self.static = feed or static_gtfs()
        self.tz = ZoneInfo(tz or configured_city().timezone)

    def read(self, fetcher: Fetcher) -> list[Reading] | None:
        body = fetcher.get(self.url)
        if body is None:
            return None
        message = parse(self.url, body)
        updates = {e.trip_update.trip.trip_id: e.trip_update for e in message.entity if e.HasField("trip_update")}
        readings = [self.vehicle(e.id, e.vehicle, message.header.timestamp, updates)
                    for e in message.entity if e.HasField("vehicle")]
        alerts = (self.alert(e.id, e.alert, message.header.timestamp) for e in message.entity if e.HasField("alert"))
        return readings + [alert for alert in alerts if alert is not None]

    # --- vehicle positions --------------------------------------------------------------------------------

    def vehicle(self, entity_id: str, vp: Any, header_time: int, updates: dict[str, Any]) -> Reading:
        vehicle_id = vp.vehicle.id or vp.vehicle.label or entity_id
        trip = self.static.trips.get(vp.trip.trip_id)
        observed = vp.timestamp or header_time
        data: dict[str, Any] = {"id": vehicle_id, "vehicleId": vehicle_id, "dateObserved": iso(observed),
                                "currentStatus": rt.VehiclePosition.VehicleStopStatus.Name(vp.current_status)}
        route = vp.trip.route_id or (trip.route if trip else "")
        optional = {"tripId": vp.trip.trip_id, "routeId": route, "vehicleType": self.static.route_types.get(route)}
        if vp.HasField("position"):
            position = vp.position
            optional["location"] = {"type": "Point", "coordinates": [round(position.longitude, 7),
                                                                     round(position.latitude, 7)]}
            optional["speed[m/s]"] = position.speed if position.HasField("speed") else None
            optional["heading"] = position.bearing % 360 if position.HasField("bearing") else None
        if vp.HasField("occupancy_status"):
            optional["occupancyStatus"] = rt.VehiclePosition.OccupancyStatus.Name(vp.occupancy_status)
        stop_time = self.stop_time(trip, vp)
        if stop_time is not None:
            optional.update(stopId=stop_time.stop, stopSequence=stop_time.sequence)
            optional["delay"] = self.delay(trip, stop_time, vp, observed, updates.get(vp.trip.trip_id))
        data.update({name: value for name, value in optional.items() if value not in (None, "")})
        return Reading("public-transport", vehicle_id, data)

    @staticmethod
    def stop_time(trip: Trip | None, vp: Any):
        """The trip's stop time the vehicle is at or heading to: by stop sequence, else by stop id."""
        if trip is None:
            return None
        for stop_time in trip.stop_times:
            if vp.HasField("current_stop_sequence") and stop_time.sequence == vp.current_stop_sequence:
                return stop_time
            if not vp.HasField("current_stop_sequence") and vp.stop_id and stop_time.stop == vp.stop_id:
                return stop_time
        return None

    def delay(self, trip: Trip, stop_time: Any, vp: Any, observed: int, update: Any | None) -> int:
        reported = reported_delay(update, stop_time) if update is not None else None
        if reported is not None:
            return reported
        day = date(int(vp.trip.start_date[:4]), int(vp.trip.start_date[4:6]), int(vp.trip.start_date[6:])) \
            if len(vp.trip.start_date) == 8 else datetime.fromtimestamp(observed, self.tz).date()
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.tz)
        now_s = round(observed - midnight.timestamp())
        index = trip.stop_times.index(stop_time)
        if vp.current_status == rt.VehiclePosition.STOPPED_AT or index == 0:
            window = (stop_time.arrival_s, stop_time.departure_s)
        else:
            window = (trip.stop_times[index - 1].departure_s, stop_time.arrival_s)
        return now_s - min(max(now_s, window[0]), window[1])

    # --- service alerts -----------------------------------------------------------------------------------

    def alert(self, entity_id: str, alert: Any, header_time: int) -> Reading | None:
        cause = rt.Alert.Cause.Name(alert.cause) if alert.HasField("cause") else ""
        effect = rt.Alert.Effect.Name(alert.effect) if alert.HasField("effect") else ""
        kind = CAUSES.get(cause) or EFFECTS.get(effect)
        stops = [self.static.stops[e.stop_id] for e in alert.informed_entity if e.stop_id in self.static.stops]
        if kind is None or not stops:
            return None
        periods = [(p.start or header_time, p.end or None) for p in alert.active_period] or [(header_time, None)]
        start, end = min(p[0] for p in periods), max((p[1] for p in periods), default=None)
        ended = None not in (p[1] for p in periods) and end is not None and end <= header_time
        text = translated(alert.header_text) or translated(alert.description_text) or f"{cause or effect} at {stops[0].name}"
        severity = rt.Alert.SeverityLevel.Name(alert.severity_level)
        data = {"id": f"gtfs-rt-{entity_id}", "dateObserved": iso(header_time), "category": "traffic",
                "subCategory": kind, "severity": SEVERITIES[severity], "status": "cleared" if ended else "active",
                "description": text, "location": {"type": "Point", "coordinates": [stops[0].lon, stops[0].lat]},
                "dateIssued": iso(start), "validFrom": iso(start), "validTo": iso(end) if end else None,
                "alertSource": f"GTFS-realtime {urlsplit(self.url).hostname}"}
        return Reading("incidents", data["id"], data)


def parse(url: str, body: bytes) -> Any:
    """The ``FeedMessage`` of ``body``, or :class:`MalformedFeed` saying why it is not one."""
    message = rt.FeedMessage()
    try:
        message.ParseFromString(body)
    except (DecodeError, RuntimeError, ValueError) as error:
        raise MalformedFeed(url, "body", f"not a GTFS-realtime FeedMessage: {error}", body) from None
    if not message.header.gtfs_realtime_version:
        raise MalformedFeed(url, "header.gtfs_realtime_version", "missing: not a GTFS-realtime feed", body)
    if not message.header.timestamp and any(not e.vehicle.timestamp for e in message.entity):
        raise MalformedFeed(url, "header.timestamp", "missing, and an entity has no timestamp of its own", body)
    return message


def reported_delay(update: Any, stop_time: Any) -> int | None:
    """The delay a TripUpdate gives at ``stop_time``: its update for that stop, or the last one before it."""
    best = None
    for stu in update.stop_time_update:
        if stu.HasField("stop_sequence") and stu.stop_sequence > stop_time.sequence:
            break
        event = stu.arrival if stu.HasField("arrival") and stu.arrival.HasField("delay") else stu.departure
        if event.HasField("delay"):
            best = event.delay
        if stu.stop_id == stop_time.stop:
            break
    if best is None and update.HasField("delay"):
        return update.delay
    return best


def translated(text: Any) -> str:
    """The first translation of a ``TranslatedString`` (empty when it has none)."""
    return text.translation[0].text.strip() if text.translation else ""
