"""Plane geometry on lon/lat points, exact enough over a city: distances, boxes, polygons, hulls."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

Point = tuple[float, float]  # (longitude, latitude), WGS84 degrees
EARTH_RADIUS_M = 6371000


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance on the ground between two points, equirectangular (exact enough over a few kilometres)."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return EARTH_RADIUS_M * math.hypot(x, math.radians(lat2 - lat1))


def line_length(points: Sequence[Point]) -> float:
    """Metres along a polyline."""
    return sum(metres(*a, *b) for a, b in zip(points, points[1:]))


def bbox(points: Iterable[Point]) -> tuple[float, float, float, float]:
    """(west, south, east, north) of the points."""
    lons, lats = zip(*points)
    return min(lons), min(lats), max(lons), max(lats)


def widen(box: tuple[float, float, float, float], margin_m: float) -> tuple[float, float, float, float]:
    """The box grown by ``margin_m`` metres on every side, rounded to 6 decimals (about 0.1 m)."""
    west, south, east, north = box
    dlat = math.degrees(margin_m / EARTH_RADIUS_M)
    dlon = dlat / max(math.cos(math.radians((south + north) / 2)), 1e-6)
    return round(west - dlon, 6), round(south - dlat, 6), round(east + dlon, 6), round(north + dlat, 6)


def rectangle(west: float, south: float, east: float, north: float) -> list[Point]:
    """The box as a closed ring, counter-clockwise from the south-west corner."""
    return [(west, south), (east, south), (east, north), (west, north), (west, south)]


def inside(point: Point, ring: Sequence[Point]) -> bool:
    """Whether ``point`` lies in the polygon ``ring`` (even-odd rule; points on an edge may fall either way)."""
    x, y = point
    found = False
    for (x1, y1), (x2, y2) in zip(ring, [*ring[1:], ring[0]]):
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            found = not found
    return found


def centroid(ring: Sequence[Point]) -> Point:
    """Mean of the ring's distinct corners (enough to say which zone a point is nearest to)."""
    corners = list(ring[:-1]) if len(ring) > 1 and ring[0] == ring[-1] else list(ring)
    return sum(p[0] for p in corners) / len(corners), sum(p[1] for p in corners) / len(corners)
