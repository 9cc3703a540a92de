"""taxi-vtc: one GPS fix of a taxi or ride-hailing (VTC) trip.

``vehicleId``, ``driverId`` and ``location`` are personal data (``"personal": true``): the ingest step pseudonymizes
them. The Kafka record key is the trip id, never a personal field, because record keys are not rewritten.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from smartcity.events.common import CityEvent, Location, Zone, measure, optional_measure, personal


class TaxiTrip(CityEvent):
    """A trip's state at one GPS fix: approaching the pickup, carrying the passenger, or completed."""

    type: Literal["TaxiTrip"] = "TaxiTrip"
    serviceType: Literal["taxi", "vtc"] = Field(description="Licensed taxi or ride-hailing (VTC) vehicle")
    vehicleId: str = personal("Vehicle plate or fleet id", min_length=1)
    driverId: str = personal("Driver's licence or account id", min_length=1)
    tripStatus: Literal["toPickup", "onTrip", "completed"] = Field(description="Phase of the trip at this fix")
    location: Location = personal("GPS fix of the vehicle")
    zone: Zone
    speed: float = measure("Instantaneous speed", "km/h", ge=0, le=200)
    heading: float = measure("Direction of travel, clockwise from north", "degrees", ge=0, lt=360)
    pickupZone: Zone = Field(description="Zone where the passenger is picked up")
    dropoffZone: Zone = Field(description="Zone where the passenger is dropped off")
    passengerCount: int = Field(ge=1, le=8, description="Passengers on the trip")
    distanceTravelled: float = measure("Distance driven since the pickup (0 before it)", "m", ge=0)
    fare: float | None = optional_measure("Fare charged, set when the trip is completed", "EUR", ge=0)
