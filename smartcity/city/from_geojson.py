"""A city from GeoJSON: zones (a FeatureCollection of Polygons or MultiPolygons) and optionally road segments (of
LineStrings). Zones become ``Z01``, ``Z02`` ... in the file's order, named by their ``name`` (or ``id``) property;
the boundary is their box. A segment's ``id`` property (or feature id) names it; ``lanes``, ``speed_kmh`` and
``road_class`` are read when present; segments meet where one ends and the other starts (their neighbours)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from smartcity.city.files import CityFileError
from smartcity.city.geometry import Point, bbox, line_length, metres
from smartcity.city.model import ROAD_CLASSES, Boundary, CityDefinition, RoadSegment, Zone, road_class

DEFAULT_SPEED_KMH = 50.0
MAX_ZONES = 99


def city_from_geojson(zones_file: Path, segments_file: Path | None, name: str | None,
                      timezone: str | None) -> CityDefinition:
    if not timezone:
        raise CityFileError("--timezone: required with --from-geojson (GeoJSON carries no time zone)")
    zones = [_zone(zones_file, index, feature) for index, feature in enumerate(_features(zones_file))]
    if not zones:
        raise CityFileError(f"{zones_file}: features: no zone")
    if len(zones) > MAX_ZONES:
        raise CityFileError(f"{zones_file}: features: {len(zones)} zones, at most {MAX_ZONES}")
    west, south, east, north = bbox(point for zone in zones for point in zone.polygon)
    try:
        city = CityDefinition(name=name or zones_file.stem, timezone=timezone, zones=zones,
                              boundary=Boundary(west=west, south=south, east=east, north=north))
    except ValidationError as error:
        raise CityFileError(f"{zones_file}: {error.errors(include_url=False)[0]['msg']}") from None
    if segments_file is None:
        return city
    segments = _segments(segments_file, city)
    return city.model_copy(update={"segments": segments})


def _features(path: Path) -> list[dict[str, Any]]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CityFileError(f"{path}: cannot read ({error.strerror or error})") from None
    except ValueError as error:
        raise CityFileError(f"{path}: not JSON ({error})") from None
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection" \
            or not isinstance(document.get("features"), list):
        raise CityFileError(f"{path}: type: expected a GeoJSON FeatureCollection with a features list")
    return document["features"]


def _geometry(path: Path, index: int, feature: Any, kinds: tuple[str, str]) -> list[Point]:
    """The feature's outer ring (Polygon / first of a MultiPolygon) or line (LineString / first of a Multi...)."""
    where = f"{path}: features[{index}].geometry"
    geometry = feature.get("geometry") if isinstance(feature, dict) else None
    if not isinstance(geometry, dict) or geometry.get("type") not in kinds:
        raise CityFileError(f"{where}: expected a {' or '.join(kinds)}")
    coordinates = geometry.get("coordinates")
    try:
        if geometry["type"].startswith("Multi"):
            coordinates = coordinates[0]
        if kinds[0] == "Polygon":
            coordinates = coordinates[0]
        points = [(float(p[0]), float(p[1])) for p in coordinates]
    except (TypeError, IndexError, ValueError):
        raise CityFileError(f"{where}.coordinates: expected [longitude, latitude] positions") from None
    if not all(-180 <= lon <= 180 and -90 <= lat <= 90 for lon, lat in points) or len(points) < 2:
        raise CityFileError(f"{where}.coordinates: positions out of range, or too few")
    return points


def _zone(path: Path, index: int, feature: Any) -> Zone:
    ring = _geometry(path, index, feature, ("Polygon", "MultiPolygon"))
    ring = ring if ring[0] == ring[-1] else [*ring, ring[0]]
    properties = feature.get("properties") or {}
    zone_id = f"Z{index + 1:02}"
    try:
        return Zone(id=zone_id, name=str(properties.get("name") or properties.get("id") or zone_id), polygon=ring)
    except ValidationError:
        raise CityFileError(f"{path}: features[{index}].geometry.coordinates: a ring needs 3 corners or more") from None


def _segments(path: Path, city: CityDefinition) -> list[RoadSegment]:
    segments = [_segment(path, index, feature, city) for index, feature in enumerate(_features(path))]
    ids = [segment.id for segment in segments]
    if len(set(ids)) != len(ids):
        raise CityFileError(f"{path}: properties.id: duplicate segment ids {sorted({i for i in ids if ids.count(i) > 1})}")
    starts: dict[Point, list[str]] = {}
    for segment in segments:
        starts.setdefault(_rounded(segment.geometry[0]), []).append(segment.id)
    by_id = {segment.id: segment for segment in segments}
    downstream = {s.id: [t for t in starts.get(_rounded(s.geometry[-1]), [])
                         if t != s.id and _rounded(by_id[t].geometry[-1]) != _rounded(s.geometry[0])]
                  for s in segments}
    upstream: dict[str, list[str]] = {s.id: [] for s in segments}
    for origin, targets in downstream.items():
        for target in targets:
            upstream[target].append(origin)
    return [s.model_copy(update={"upstream": sorted(upstream[s.id]), "downstream": sorted(downstream[s.id])})
            for s in segments]


def _segment(path: Path, index: int, feature: dict, city: CityDefinition) -> RoadSegment:
    line = _geometry(path, index, feature, ("LineString", "MultiLineString"))
    properties = feature.get("properties") or {}
    where = f"{path}: features[{index}].properties"
    segment_id = str(properties.get("id") or feature.get("id") or "")
    if not segment_id:
        raise CityFileError(f"{where}.id: missing (a segment needs an id)")
    lon, lat = _middle(line)
    if not city.contains(lon, lat):
        raise CityFileError(f"{path}: features[{index}].geometry: segment {segment_id} lies outside the zones")
    try:
        lanes, kmh = int(properties.get("lanes") or 1), float(properties.get("speed_kmh") or DEFAULT_SPEED_KMH)
        kind = properties.get("road_class") or road_class(0, lanes, kmh / 3.6)
        if kind not in ROAD_CLASSES:
            raise ValueError(f"road_class: {kind!r} is not one of {', '.join(ROAD_CLASSES)}")
        return RoadSegment(id=segment_id, geometry=line, lon=round(lon, 7), lat=round(lat, 7),
                           zone=city.zone_of(lon, lat), road_class=kind, length=round(line_length(line), 2),
                           speed=round(kmh / 3.6, 2), lanes=lanes)
    except (TypeError, ValueError) as error:
        raise CityFileError(f"{where}: {error}") from None


def _middle(line: list[Point]) -> Point:
    """The point halfway along the line."""
    half, travelled = line_length(line) / 2, 0.0
    for a, b in zip(line, line[1:]):
        step = metres(*a, *b)
        if travelled + step >= half and step > 0:
            share = (half - travelled) / step
            return a[0] + share * (b[0] - a[0]), a[1] + share * (b[1] - a[1])
        travelled += step
    return line[0]


def _rounded(point: Point) -> Point:
    return round(point[0], 6), round(point[1], 6)
