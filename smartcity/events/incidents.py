"""incidents: a road incident reported or cleared (FIWARE Alert, category ``traffic``).

An incident that a detector found (the streaming job's robust z-score, the ``detect-anomalies`` function's
models) is an Alert too; the models' alerts also say how unusual the window was (``anomalyScore``), which model
version judged it (``detectedBy``) and the features that weighed most (``contributions``). Those three fields are
optional, so every v1 producer and consumer stays valid."""

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
    anomalyScore: float | None = Field(
        None, ge=0, le=1, description="For a detected anomaly: its calibrated score, 0 usual .. 1 never seen")
    detectedBy: str | None = Field(
        None, min_length=1, description="For a detected anomaly: the model that flagged it, <name>@<version>")
    contributions: dict[str, float] | None = Field(
        None, description="For a detected anomaly: the features that weighed most, {feature: weight}, weights "
                          "summing to 1")
