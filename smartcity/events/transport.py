"""public-transport: a bus's position on its GTFS trip, with its delay (GTFS-realtime VehiclePosition semantics).

Ids are the GTFS feed's (``tripId``, ``routeId``, ``stopId`` of ``trips.txt``, ``routes.txt``, ``stops.txt``);
the NGSI entity is FIWARE's ``Vehicle`` (``vehicleType``, ``speed`` in km/h, ``heading`` in degrees).
``speed``, ``heading`` and ``occupancyStatus`` are optional (null when absent): real GTFS-realtime feeds very often
leave them out of their VehiclePositions, which are still worth their position and delay.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from smartcity.events.common import CityEvent, Location, Zone, measure, optional_measure

Occupancy = Literal["EMPTY", "MANY_SEATS_AVAILABLE", "FEW_SEATS_AVAILABLE", "STANDING_ROOM_ONLY", "FULL"]


class PublicTransportVehicle(CityEvent):
    """Where one public-transport vehicle is, which trip it runs, how late it is."""

    type: Literal["Vehicle"] = "Vehicle"
    vehicleId: str = Field(min_length=1, description="The vehicle's fleet id (GTFS-realtime vehicle.id)")
    vehicleType: Literal["bus", "tram"] = Field(description="GTFS route type of the vehicle")
    routeId: str = Field(min_length=1, description="GTFS route_id")
    tripId: str = Field(min_length=1, description="GTFS trip_id")
    stopId: str = Field(min_length=1, description="GTFS stop_id of the current or next stop")
    stopSequence: int = Field(ge=0, description="GTFS stop_sequence of stopId on the trip")
    currentStatus: Literal["INCOMING_AT", "STOPPED_AT", "IN_TRANSIT_TO"] = Field(
        description="GTFS-realtime VehicleStopStatus relative to stopId")
    delay: int = measure("Delay against the timetable, positive when late", "s", ge=-3600, le=6 * 3600)
    location: Location
    zone: Zone
    speed: float | None = optional_measure("Instantaneous speed", "km/h", ge=0, le=150)
    heading: float | None = optional_measure("Direction of travel, clockwise from north", "degrees", ge=0, lt=360)
    occupancyStatus: Occupancy | None = Field(None, description="GTFS-realtime OccupancyStatus")
