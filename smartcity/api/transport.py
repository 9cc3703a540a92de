"""Public transport for ``/v1/transport``: the models of its answers and the reads behind them.

Lines and stops are the GTFS reference tables ``routes`` and ``stops``; a stop's lines are those whose vehicles
served it in the last day. Vehicles' positions are their latest states in the cache
(``latest:public-transport:<vehicle id>``). Delays come from the ``transport_positions`` table over a time range.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any, Literal

from pydantic import BaseModel, Field

from smartcity.api.latest_routes import Filters, stream_entities
from smartcity.api.timeseries import TimeRange, city_time, sql_time
from smartcity.backends.database import Database
from smartcity.events.common import Zone

STREAM = "public-transport"
SERVED_WINDOW = timedelta(days=1)
# The usual punctuality window of public transport: at most 1 minute early, at most 5 minutes late.
ON_TIME_EARLIEST_S, ON_TIME_LATEST_S = -60, 300
ON_TIME_SQL = f"CASE WHEN delay BETWEEN {ON_TIME_EARLIEST_S} AND {ON_TIME_LATEST_S} THEN 1.0 ELSE 0.0 END"
DELAY_COLUMNS = f"""COUNT(*) AS positions, COUNT(DISTINCT vehicle_id) AS vehicles,
    AVG(delay) AS average_delay_s, MAX(delay) AS max_delay_s, AVG({ON_TIME_SQL}) AS on_time_share"""


class Line(BaseModel):
    """A GTFS route."""

    line_id: str = Field(description="GTFS route_id")
    short_name: str
    long_name: str | None
    route_type: str


class Stop(BaseModel):
    stop_id: str = Field(description="GTFS stop_id")
    name: str
    zone: str
    lon: float
    lat: float
    lines: list[str] = Field(description="Lines whose vehicles served the stop in the last day")


class VehiclePosition(BaseModel):
    vehicle_id: str
    vehicle_type: str
    line_id: str
    trip_id: str
    stop_id: str = Field(description="The current or next stop")
    current_status: Literal["INCOMING_AT", "STOPPED_AT", "IN_TRANSIT_TO"]
    delay_s: int = Field(description="Seconds behind the timetable; negative when early")
    lon: float
    lat: float
    zone: str
    # Null when the vehicle's feed leaves them out, as many GTFS-realtime feeds do.
    speed_kmh: float | None
    heading: float | None
    occupancy_status: str | None
    observed_at: datetime


class Delay(BaseModel):
    """Delays of the positions reported over the range (one per vehicle every few seconds)."""

    positions: int
    vehicles: int
    average_delay_s: float
    max_delay_s: int
    on_time_share: float = Field(description=f"Share of positions between {ON_TIME_EARLIEST_S} s and {ON_TIME_LATEST_S} s of delay")


class LineDelay(Delay):
    line_id: str


class StopDelay(Delay):
    stop_id: str
    line_id: str


class Delays(BaseModel):
    start: datetime
    end: datetime
    items: list[Any]


class LineDelays(Delays):
    items: list[LineDelay]


class StopDelays(Delays):
    items: list[StopDelay]


def vehicle_position(state: dict[str, Any]) -> VehiclePosition:
    data = state["data"]
    lon, lat = data["location"]["coordinates"]
    return VehiclePosition(
        vehicle_id=data["vehicleId"], vehicle_type=data["vehicleType"], line_id=data["routeId"],
        trip_id=data["tripId"], stop_id=data["stopId"], current_status=data["currentStatus"], delay_s=data["delay"],
        lon=lon, lat=lat, zone=data["zone"], speed_kmh=data.get("speed"), heading=data.get("heading"),
        occupancy_status=data.get("occupancyStatus"), observed_at=city_time(data["dateObserved"]),
    )


def vehicle_filters(line_id: str | None = None, zone: Zone | None = None) -> Filters:
    return Filters({"line_id": line_id, "zone": zone})


VEHICLES = stream_entities(STREAM, VehiclePosition, vehicle_position, lambda vehicle: vehicle.vehicle_id,
                           "vehicle {}")


def lines(database: Database) -> list[Line]:
    rows = database.query("SELECT route_id, short_name, long_name, route_type FROM routes")
    return [Line(line_id=row.pop("route_id"), **row) for row in rows]


def stops(database: Database, zone: str | None, line_id: str | None) -> list[Stop]:
    """The stops (of ``zone``; served by ``line_id`` in the last day), each with the lines that served it."""
    since = sql_time(datetime.now(timezone.utc) - SERVED_WINDOW)
    served: dict[str, set[str]] = {}
    for row in database.query(
        "SELECT DISTINCT stop_id, route_id FROM transport_positions WHERE observed_at >= :since", {"since": since}
    ):
        served.setdefault(row["stop_id"], set()).add(row["route_id"])
    return [
        Stop(stop_id=row["stop_id"], name=row["name"], zone=row["zone_id"], lon=row["lon"], lat=row["lat"],
             lines=sorted(served.get(row["stop_id"], ())))
        for row in database.query("SELECT stop_id, name, zone_id, lon, lat FROM stops")
        if (zone is None or row["zone_id"] == zone) and (line_id is None or line_id in served.get(row["stop_id"], ()))
    ]


def delays_by_line(database: Database, period: TimeRange) -> LineDelays:
    rows = database.query(
        f"""SELECT route_id AS line_id, {DELAY_COLUMNS} FROM transport_positions
            WHERE observed_at >= :start AND observed_at < :end GROUP BY route_id ORDER BY route_id""",
        {"start": sql_time(period.start), "end": sql_time(period.end)},
    )
    return LineDelays(start=period.start, end=period.end, items=[LineDelay(**row) for row in rows])


def delays_by_stop(database: Database, period: TimeRange, line_id: str | None) -> StopDelays:
    line_condition = " AND route_id = :line_id" if line_id is not None else ""
    rows = database.query(
        f"""SELECT stop_id, route_id AS line_id, {DELAY_COLUMNS} FROM transport_positions
            WHERE observed_at >= :start AND observed_at < :end{line_condition}
            GROUP BY stop_id, route_id ORDER BY stop_id, route_id""",
        {"start": sql_time(period.start), "end": sql_time(period.end), "line_id": line_id},
    )
    return StopDelays(start=period.start, end=period.end, items=[StopDelay(**row) for row in rows])
