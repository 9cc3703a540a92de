"""Bounding boxes in API queries: ``bbox=west,south,east,north`` in WGS84 degrees (the GeoJSON/OGC order)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query
from pydantic import BaseModel, Field

from smartcity.api.problems import bad_request


class BoundingBox(BaseModel):
    west: float = Field(ge=-180, le=180)
    south: float = Field(ge=-90, le=90)
    east: float = Field(ge=-180, le=180)
    north: float = Field(ge=-90, le=90)

    def contains(self, lon: float, lat: float) -> bool:
        return self.west <= lon <= self.east and self.south <= lat <= self.north


def bounding_box(
    bbox: Annotated[
        str,
        Query(
            max_length=200,
            description="west,south,east,north in WGS84 degrees, e.g. `6.948,50.961,6.967,50.978`.",
            examples=["6.948,50.961,6.967,50.978"],
        ),
    ],
) -> BoundingBox:
    """The query's ``bbox`` (a FastAPI dependency); 400 naming ``query.bbox`` and the reason when it is not one."""
    parts = bbox.split(",")
    if len(parts) != 4:
        raise bad_request("query.bbox", "must be four numbers: west,south,east,north")
    try:
        west, south, east, north = (float(part) for part in parts)
    except ValueError:
        raise bad_request("query.bbox", "must be four numbers: west,south,east,north") from None
    if not (-180 <= west < east <= 180):
        raise bad_request("query.bbox", "needs -180 <= west < east <= 180")
    if not (-90 <= south < north <= 90):
        raise bad_request("query.bbox", "needs -90 <= south < north <= 90")
    return BoundingBox(west=west, south=south, east=east, north=north)
