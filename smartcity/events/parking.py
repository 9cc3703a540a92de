"""parking: occupancy of one off-street car park (FIWARE OffStreetParking)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from smartcity.events.common import CityEvent, Location, RoadSegmentRef, Zone, measure


class OffStreetParking(CityEvent):
    """Spots taken and free in one car park; ``occupiedSpotNumber + availableSpotNumber == totalSpotNumber``."""

    type: Literal["OffStreetParking"] = "OffStreetParking"
    name: str = Field(min_length=1, description="Name of the car park")
    location: Location
    zone: Zone
    refRoadSegment: RoadSegmentRef
    totalSpotNumber: int = measure("Spots in the car park", "spots", gt=0)
    occupiedSpotNumber: int = measure("Spots taken", "spots", ge=0)
    availableSpotNumber: int = measure("Spots free", "spots", ge=0)
    occupancy: float = measure("Fraction of the spots taken", "ratio 0..1", ge=0, le=1)
    status: Literal["open", "almostFull", "full", "closed"] = Field(description="FIWARE OffStreetParking status")

    @field_validator("availableSpotNumber")
    @classmethod
    def _spots_add_up(cls, value: int, info: ValidationInfo) -> int:
        total, occupied = info.data.get("totalSpotNumber"), info.data.get("occupiedSpotNumber")
        if total is not None and occupied is not None and occupied + value != total:
            raise ValueError(f"occupiedSpotNumber ({occupied}) + availableSpotNumber ({value}) "
                             f"must equal totalSpotNumber ({total})")
        return value
