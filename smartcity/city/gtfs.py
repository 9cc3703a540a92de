"""A GTFS (static) feed read from any zip: agency time zone, stops, routes, trips with stop times and shapes, calendars.

Only what the simulator needs is kept. Times past midnight (``25:10:00``) are seconds after the service day's
midnight, as GTFS means them. A malformed feed raises :class:`GtfsError` naming the file, row and column.
"""

from __future__ import annotations

import csv
import io
import zipfile
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from smartcity.city.geometry import metres

REQUIRED = ("stops.txt", "routes.txt", "trips.txt", "stop_times.txt")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
ROUTE_TYPES = {"0": "tram", "900": "tram", "3": "bus", "700": "bus"}


class GtfsError(ValueError):
    """The feed is not valid GTFS; the message names the file, the row and what is wrong."""


@dataclass(frozen=True)
class Stop:
    id: str
    name: str
    lon: float
    lat: float


@dataclass(frozen=True)
class Route:
    id: str
    short_name: str
    long_name: str | None
    type: str  # the GTFS route_type code


@dataclass(frozen=True)
class StopTime:
    stop: str
    sequence: int
    arrival_s: int
    departure_s: int
    distance: float | None


@dataclass
class Trip:
    id: str
    route: str
    service: str
    shape: str | None
    block: str | None
    stop_times: list[StopTime] = field(default_factory=list)

    @property
    def start_s(self) -> int:
        return self.stop_times[0].departure_s

    @property
    def end_s(self) -> int:
        return self.stop_times[-1].arrival_s


@dataclass(frozen=True)
class Calendar:
    days: tuple[bool, ...]
    start: date
    end: date


@dataclass
class Feed:
    stops: dict[str, Stop]
    route_types: dict[str, str]
    trips: dict[str, Trip]
    shapes: dict[str, list[tuple[float, float, float]]]  # shape id -> (lon, lat, distance) in order
    calendars: dict[str, Calendar]
    exceptions: dict[tuple[str, date], bool]  # calendar_dates: (service, day) -> running
    routes: dict[str, Route] = field(default_factory=dict)
    timezone: str | None = None  # agency.txt's agency_timezone (of its first agency)

    def runs_on(self, service: str, day: date) -> bool:
        if (service, day) in self.exceptions:
            return self.exceptions[(service, day)]
        calendar = self.calendars.get(service)
        return bool(calendar and calendar.start <= day <= calendar.end and calendar.days[day.weekday()])

    def trips_on(self, day: date) -> list[Trip]:
        """Trips of the service day ``day``, by start time."""
        return sorted((t for t in self.trips.values() if self.runs_on(t.service, day)), key=lambda t: t.start_s)


def load_feed(path: Path) -> Feed:
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as error:
        raise GtfsError(f"{path}: not a readable zip ({error})") from None
    with archive:
        names = set(archive.namelist())
        missing = [name for name in REQUIRED if name not in names]
        if missing:
            raise GtfsError(f"{path}: missing {', '.join(missing)}")
        if "calendar.txt" not in names and "calendar_dates.txt" not in names:
            raise GtfsError(f"{path}: needs calendar.txt or calendar_dates.txt")

        def table(name: str) -> list[dict[str, str]]:
            if name not in names:
                return []
            return list(csv.DictReader(io.TextIOWrapper(archive.open(name), encoding="utf-8-sig")))

        return _parse(path, table)


def _parse(path: Path, table) -> Feed:
    try:
        stops = {r["stop_id"]: Stop(r["stop_id"], r.get("stop_name", ""), float(r["stop_lon"]), float(r["stop_lat"]))
                 for r in table("stops.txt") if r.get("stop_lat")}
        routes = {r["route_id"]: Route(r["route_id"], r.get("route_short_name") or r["route_id"],
                                       r.get("route_long_name") or None, r["route_type"]) for r in table("routes.txt")}
        route_types = {rid: ROUTE_TYPES.get(route.type, "bus") for rid, route in routes.items()}
        agencies = table("agency.txt")
        trips = {r["trip_id"]: Trip(r["trip_id"], r["route_id"], r["service_id"], r.get("shape_id") or None,
                                    r.get("block_id") or None) for r in table("trips.txt")}
        for r in table("stop_times.txt"):
            distance = r.get("shape_dist_traveled")
            trips[r["trip_id"]].stop_times.append(StopTime(
                r["stop_id"], int(r["stop_sequence"]), _seconds(r["arrival_time"]), _seconds(r["departure_time"]),
                float(distance) if distance else None))
        shapes: dict[str, list[tuple[int, float, float, float]]] = {}
        for r in table("shapes.txt"):
            distance = r.get("shape_dist_traveled")
            shapes.setdefault(r["shape_id"], []).append((int(r["shape_pt_sequence"]), float(r["shape_pt_lon"]),
                                                         float(r["shape_pt_lat"]), float(distance) if distance else -1))
        calendars = {r["service_id"]: Calendar(tuple(r[d] == "1" for d in WEEKDAYS), _date(r["start_date"]),
                                               _date(r["end_date"])) for r in table("calendar.txt")}
        exceptions = {(r["service_id"], _date(r["date"])): r["exception_type"] == "1"
                      for r in table("calendar_dates.txt")}
    except KeyError as error:
        raise GtfsError(f"{path}: a row lacks the column {error} (or names an unknown id)") from None
    except ValueError as error:
        raise GtfsError(f"{path}: {error}") from None
    for trip in trips.values():
        trip.stop_times.sort(key=lambda st: st.sequence)
    trips = {tid: trip for tid, trip in trips.items() if len(trip.stop_times) >= 2}
    return Feed(stops, route_types, trips, {sid: _measured(sorted(points)) for sid, points in shapes.items()},
                calendars, exceptions, routes, (agencies[0].get("agency_timezone") or None) if agencies else None)


def _measured(points: list[tuple[int, float, float, float]]) -> list[tuple[float, float, float]]:
    """Shape points as (lon, lat, metres from the start), measuring the distances when the feed has none."""
    if all(distance >= 0 for *_, distance in points):
        return [(lon, lat, distance) for _, lon, lat, distance in points]
    measured, travelled = [], 0.0
    for index, (_, lon, lat, _) in enumerate(points):
        if index:
            travelled += metres(points[index - 1][1], points[index - 1][2], lon, lat)
        measured.append((lon, lat, travelled))
    return measured


def _seconds(hms: str) -> int:
    hours, minutes, seconds = (int(part) for part in hms.strip().split(":"))
    return hours * 3600 + minutes * 60 + seconds


def _date(yyyymmdd: str) -> date:
    return date(int(yyyymmdd[:4]), int(yyyymmdd[4:6]), int(yyyymmdd[6:8]))
