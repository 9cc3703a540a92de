"""bike-share: one docking station's status (FIWARE BikeHireDockingStation, GBFS station_status semantics).

FIWARE names carry the GBFS fields: ``availableBikeNumber`` is ``num_bikes_available``, ``freeSlotNumber`` is
``num_docks_available``, ``isRenting``/``isReturning``/``isInstalled`` and ``dateLastReported`` (``last_reported``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, ValidationInfo, field_validator

from smartcity.events.common import CityEvent, Location, Zone, measure


class BikeHireDockingStation(CityEvent):
    """Bikes and free docks at one station; bikes + free docks + broken docks never exceed the docks."""

    type: Literal["BikeHireDockingStation"] = "BikeHireDockingStation"
    name: str = Field(min_length=1, description="Station name")
    location: Location
    zone: Zone
    totalSlotNumber: int = measure("Docks at the station", "docks", gt=0)
    availableBikeNumber: int = measure("Bikes ready to rent (GBFS num_bikes_available)", "bikes", ge=0)
    freeSlotNumber: int = measure("Empty working docks (GBFS num_docks_available)", "docks", ge=0)
    outOfServiceSlotNumber: int = measure("Docks out of service (GBFS num_docks_disabled)", "docks", ge=0)
    isInstalled: bool = Field(description="GBFS is_installed")
    isRenting: bool = Field(description="GBFS is_renting")
    isReturning: bool = Field(description="GBFS is_returning")
    status: Literal["working", "outOfService", "full", "almostFull", "almostEmpty", "empty"] = Field(
        description="FIWARE BikeHireDockingStation status")
    dateLastReported: AwareDatetime = Field(description="GBFS last_reported: when the station last reported")

    @field_validator("outOfServiceSlotNumber")
    @classmethod
    def _docks_add_up(cls, value: int, info: ValidationInfo) -> int:
        total = info.data.get("totalSlotNumber")
        used = [info.data.get("availableBikeNumber"), info.data.get("freeSlotNumber"), value]
        if total is not None and None not in used and sum(used) > total:
            raise ValueError(f"availableBikeNumber + freeSlotNumber + outOfServiceSlotNumber ({sum(used)}) "
                             f"exceeds totalSlotNumber ({total})")
        return value
