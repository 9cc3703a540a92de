"""traffic-sensors: one induction loop's counts over one interval (FIWARE TrafficFlowObserved).

One event per sensor (one lane at one point of a road segment) per interval, 5 s of city time by default.
``occupancy`` is a fraction 0..1 of the interval during which the loop was covered, as in FIWARE.
"""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field, ValidationInfo, field_validator

from smartcity.events.common import CityEvent, Location, RoadSegmentRef, Zone, measure, optional_measure


class TrafficFlowObserved(CityEvent):
    """Flow, occupancy and mean speed seen by one lane's sensor between ``dateObservedFrom`` and ``dateObservedTo``."""

    type: Literal["TrafficFlowObserved"] = "TrafficFlowObserved"
    dateObservedFrom: AwareDatetime = Field(description="Start of the observation interval")
    dateObservedTo: AwareDatetime = Field(description="End of the observation interval (equals dateObserved)")
    location: Location
    refRoadSegment: RoadSegmentRef
    laneId: int = Field(ge=0, description="Lane number on the road segment, 0 is the rightmost lane")
    zone: Zone
    intensity: int = measure("Vehicles that passed the sensor during the interval", "vehicles", ge=0)
    intensityPerHour: float = measure("The interval's intensity as an hourly rate", "vehicles/h", ge=0)
    occupancy: float = measure("Fraction of the interval during which a vehicle covered the sensor", "ratio 0..1",
                                ge=0, le=1)
    averageVehicleSpeed: float | None = optional_measure(
        "Mean speed of the vehicles that passed; null when none passed", "km/h", ge=0, le=300)
    congested: bool = Field(description="True when the lane is congested (high occupancy and low speed)")

    @field_validator("dateObservedTo")
    @classmethod
    def _interval_forward(cls, value: AwareDatetime, info: ValidationInfo) -> AwareDatetime:
        start = info.data.get("dateObservedFrom")
        if start is not None and value <= start:
            raise ValueError("must be after dateObservedFrom")
        return value
