"""Spatial hotspots: DBSCAN over recent anomalies and reported incidents, close in space and in time.

Two points are neighbours when they lie within ``radius_m`` metres of each other (haversine distance on the
sphere, scikit-learn's ``BallTree`` on radians) and within ``window_s`` seconds. DBSCAN runs on that
neighbourhood as a sparse precomputed distance: for each pair found by the radius query, the larger of the
distance in radii and the time apart in windows, so that ``eps = 1`` joins exactly the pairs close in both. A
point with at least ``min_points`` neighbours (itself included) is a core point; noise belongs to no hotspot.

Each :class:`Hotspot` carries its members' ids (oldest first), the centroid (mean of the members' coordinates:
a city's hotspots span at most a few kilometres), the extent (the members' convex hull as a GeoJSON Polygon, or
their bounding box widened by :data:`MIN_HALF_SIDE_M` when they are fewer than three distinct, non-collinear
places), ``since`` (the first member's start), ``last_seen`` and ``size``. Its id is fixed by its oldest
member: the same members give the same id, and a hotspot keeps its id while it grows or loses newer members.

Pure functions on lists of :class:`HotspotPoint`: reading points from the stores and writing hotspots is
:mod:`models.anomaly.hotspot_service`'s.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np

EARTH_RADIUS_M = 6_371_008.8
DEFAULT_RADIUS_M = 400.0
DEFAULT_WINDOW_S = 1800.0
DEFAULT_MIN_POINTS = 3
MIN_HALF_SIDE_M = 25.0  # half the side of the smallest extent drawn around a hotspot

Kind = Literal["anomaly", "incident"]


@dataclass(frozen=True)
class HotspotPoint:
    """An anomaly or incident at a place: ``at`` is the moment clustered on (an anomaly's window, the last moment
    an incident was known active), ``since`` when it began (``at`` when not given)."""

    id: str
    kind: Kind
    lon: float
    lat: float
    at: datetime
    since: datetime | None = None

    @property
    def start(self) -> datetime:
        return self.since if self.since is not None else self.at


@dataclass(frozen=True)
class Hotspot:
    id: str
    lon: float
    lat: float
    extent: dict[str, Any] = field(compare=False)
    members: tuple[str, ...]
    kinds: tuple[Kind, ...]
    since: datetime
    last_seen: datetime

    @property
    def size(self) -> int:
        return len(self.members)

    @property
    def anomalies(self) -> int:
        return self.kinds.count("anomaly")

    @property
    def incidents(self) -> int:
        return self.kinds.count("incident")


def find_hotspots(points: Sequence[HotspotPoint], radius_m: float = DEFAULT_RADIUS_M,
                  window_s: float = DEFAULT_WINDOW_S, min_points: int = DEFAULT_MIN_POINTS) -> list[Hotspot]:
    """The hotspots among ``points`` (one point per id: the first of duplicates counts), largest first."""
    if radius_m <= 0 or window_s <= 0 or min_points < 1:
        raise ValueError("radius_m and window_s must be positive and min_points at least 1")
    unique = list({point.id: point for point in reversed(points)}.values())[::-1]
    labels = cluster_labels(unique, radius_m, window_s, min_points)
    groups: dict[int, list[HotspotPoint]] = {}
    for point, label in zip(unique, labels):
        if label >= 0:
            groups.setdefault(int(label), []).append(point)
    hotspots = [hotspot_of(members) for members in groups.values()]
    return sorted(hotspots, key=lambda hotspot: (-hotspot.size, hotspot.since, hotspot.id))


def cluster_labels(points: Sequence[HotspotPoint], radius_m: float, window_s: float, min_points: int) -> np.ndarray:
    """DBSCAN's label of each point (-1: noise) under the space-and-time neighbourhood."""
    from scipy.sparse import csr_matrix
    from sklearn.cluster import DBSCAN
    from sklearn.neighbors import BallTree

    if not points:
        return np.empty(0, dtype=int)
    radians = np.radians([[point.lat, point.lon] for point in points])
    seconds = np.array([point.at.timestamp() for point in points])
    neighbours, distances = BallTree(radians, metric="haversine").query_radius(
        radians, r=radius_m / EARTH_RADIUS_M, return_distance=True)
    rows, columns, values = [], [], []
    for row, (found, distance) in enumerate(zip(neighbours, distances)):
        apart_s = np.abs(seconds[found] - seconds[row])
        close = apart_s <= window_s
        rows.append(np.full(int(close.sum()), row))
        columns.append(found[close])
        values.append(np.maximum(distance[close] * EARTH_RADIUS_M / radius_m, apart_s[close] / window_s))
    graph = csr_matrix((np.concatenate(values), (np.concatenate(rows), np.concatenate(columns))),
                       shape=(len(points), len(points)))
    return DBSCAN(eps=1.0, min_samples=min_points, metric="precomputed").fit(graph).labels_


def hotspot_of(members: Sequence[HotspotPoint]) -> Hotspot:
    """The hotspot made of ``members``: ordered by start (then id), located, timed and named by the oldest."""
    ordered = sorted(members, key=lambda point: (point.start, point.id))
    lon = float(np.mean([point.lon for point in ordered]))
    lat = float(np.mean([point.lat for point in ordered]))
    return Hotspot(id=hotspot_id(ordered[0].id), lon=round(lon, 7), lat=round(lat, 7),
                   extent=extent([(point.lon, point.lat) for point in ordered]),
                   members=tuple(point.id for point in ordered), kinds=tuple(point.kind for point in ordered),
                   since=ordered[0].start, last_seen=max(point.at for point in ordered))


def hotspot_id(oldest_member: str) -> str:
    return f"hotspot-{hashlib.sha256(oldest_member.encode()).hexdigest()[:16]}"


def extent(places: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """A GeoJSON Polygon around ``places`` (lon, lat): their convex hull, or a small box when it is flat."""
    hull = convex_hull(places)
    if len(hull) < 3:
        hull = _box(places)
    ring = [[round(lon, 7), round(lat, 7)] for lon, lat in hull]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def convex_hull(places: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The hull's corners counter-clockwise (Andrew's monotone chain); fewer than 3 when the places are flat."""
    unique = sorted(set(places))
    if len(unique) < 3:
        return unique

    def half(sequence: list[tuple[float, float]]) -> list[tuple[float, float]]:
        chain: list[tuple[float, float]] = []
        for place in sequence:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], place) <= 0:
                chain.pop()
            chain.append(place)
        return chain[:-1]

    return half(unique) + half(unique[::-1])


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def _box(places: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """The bounding box of ``places``, widened to at least :data:`MIN_HALF_SIDE_M` each side of its middle."""
    lons, lats = [p[0] for p in places], [p[1] for p in places]
    middle_lon, middle_lat = (min(lons) + max(lons)) / 2, (min(lats) + max(lats)) / 2
    half_lat = math.degrees(MIN_HALF_SIDE_M / EARTH_RADIUS_M)
    half_lon = half_lat / max(math.cos(math.radians(middle_lat)), 1e-6)
    west, east = min(min(lons), middle_lon - half_lon), max(max(lons), middle_lon + half_lon)
    south, north = min(min(lats), middle_lat - half_lat), max(max(lats), middle_lat + half_lat)
    return [(west, south), (east, south), (east, north), (west, north)]


def haversine_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """The great-circle distance in metres."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = (math.sin((phi2 - phi1) / 2) ** 2
         + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2) ** 2)
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))
