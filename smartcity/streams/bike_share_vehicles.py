"""The bike-share-vehicles stream: free-floating shared vehicles (GBFS 2.3 free_bike_status, 3.0 vehicle_status).

A shared bike's id names no person, but its trace does: from one parking spot to the next is a rider's trip, and
the id is printed on the vehicle (GBFS asks systems to rotate it after each trip; not every system does). So the
entity id and the position are personal fields: ingest pseudonymizes the id's local part (keyed, so one vehicle
stays one entity) and rounds the position to ``SMARTCITY_GPS_PRECISION_DECIMALS``, as for taxis
(:mod:`smartcity.privacy`). The record key is the pseudonymized id.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from smartcity.events.common import CityEvent, Location, Zone, optional_measure, personal
from smartcity.streams import Stream

FormFactor = Literal["bicycle", "cargo_bicycle", "car", "moped", "scooter", "scooter_standing", "scooter_seating",
                     "other"]
Propulsion = Literal["human", "electric_assist", "electric", "combustion", "combustion_diesel", "hybrid",
                     "plug_in_hybrid", "hydrogen_fuel_cell"]


class BikeShareVehicle(CityEvent):
    """One shared vehicle available (or reserved, or disabled) in the public space or at a station."""

    type: Literal["BikeShareVehicle"] = "BikeShareVehicle"
    id: str = personal("NGSI-LD entity id: urn:ngsi-ld:BikeShareVehicle:<GBFS bike_id / vehicle_id>, pseudonymized")
    location: Location = personal("Where the vehicle is (GBFS lat, lon), coarsened at ingest")
    zone: Zone
    vehicleType: str | None = Field(None, min_length=1, description="GBFS vehicle_type_id")
    formFactor: FormFactor | None = Field(None, description="GBFS vehicle_types form_factor")
    propulsionType: Propulsion | None = Field(None, description="GBFS vehicle_types propulsion_type")
    currentRangeMeters: float | None = optional_measure("Distance the vehicle can go on its charge or fuel", "m", ge=0)
    currentFuelPercent: float | None = optional_measure("Charge or fuel left, 0 to 1", "1", ge=0, le=1)
    isReserved: bool = Field(description="GBFS is_reserved: reserved by a rider")
    isDisabled: bool = Field(description="GBFS is_disabled: cannot be rented")
    stationId: str | None = Field(None, min_length=1, description="GBFS station_id: the station it is docked at")
    dateLastReported: AwareDatetime | None = Field(None, description="GBFS last_reported")


STREAM = Stream(
    topic="bike-share-vehicles",
    ce_type="city.bikeshare.vehicle.status.v1",
    model=BikeShareVehicle,
    key_field="id",
    description="Free-floating shared vehicles (GBFS free_bike_status / vehicle_status)",
    api_group="mobility",
    example={"vehicleType": "ebike", "formFactor": "bicycle", "propulsionType": "electric_assist",
             "currentRangeMeters": 12500.0, "currentFuelPercent": 0.6, "isReserved": False, "isDisabled": False},
)
