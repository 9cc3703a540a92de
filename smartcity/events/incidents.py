"""incidents: a road incident reported or cleared (FIWARE Alert, category ``traffic``)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, Field

from smartcity.events.common import CityEvent, Location, RoadSegmentRef, Zone


class Alert(CityEvent):
    """An accident, a closed lane or road works on a road segment, from ``validFrom`` until ``validTo``."""

    type: Literal["Alert"] = "Alert"
    category: Literal["traffic"] = Field(description="FIWARE Alert category")
    subCategory: Literal["carAccident", "roadClosed", "roadWorks", "trafficJam"] = Field(
        description="FIWARE Alert subCategory")
    severity: Literal["informational", "low", "medium", "high", "critical"] = Field(description="FIWARE severity")
    status: Literal["active", "cleared"] = Field(description="Whether the incident is ongoing or over")
    description: str = Field(min_length=1, description="What happened, for people")
    location: Location
    zone: Zone
    refRoadSegment: RoadSegmentRef
    laneId: int | None = Field(None, ge=0, description="Blocked lane (0 is the rightmost); null when all are")
    dateIssued: AwareDatetime = Field(description="When the incident was first reported")
    validFrom: AwareDatetime = Field(description="When the incident started")
    validTo: AwareDatetime | None = Field(None, description="When it ended or is expected to; null if unknown")
    alertSource: str = Field(min_length=1, description="Who reported it")
