"""The city definition: what the platform knows of the city it serves, as pydantic models saved as JSON.

A city has a name, a time zone, a boundary (a box, optionally a polygon inside it), zones (each a polygon; a grid
of ``Z<row><col>`` when the city is cut into one), road segments (geometry, road class, neighbours), the SUMO
network they come from, sensor sites (traffic loops, car parks, bike stations, weather and air-quality stations)
and public transport (stops, lines, and the GTFS feed they come from). Zone ids are ``Z`` and two digits: the events' ``zone`` field carries them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from smartcity.city.geometry import Point, centroid, inside, metres

ZoneId = Annotated[str, Field(pattern=r"^Z[0-9][0-9]$", description="Z and two digits (Z<row><col> in a grid)")]
ROAD_CLASSES = ("highway", "arterial", "collector", "local")


def road_class(priority: int, lanes: int, speed: float) -> str:
    """The class of a road segment from SUMO's edge ``priority`` (the higher, the more important), ``lanes`` and
    ``speed`` (limit, m/s):

    - ``highway``: a limit of 70 km/h or more;
    - ``arterial``: two lanes or more, or a priority of 7 or more (main roads);
    - ``collector``: a limit of 40 km/h or more (50 km/h streets);
    - ``local``: below (30 km/h zones, living streets).

    Segments of one class share a cold-start model: their flows, speeds and daily shapes are alike."""
    kmh = speed * 3.6
    if kmh >= 70:
        return "highway"
    if lanes >= 2 or priority >= 7:
        return "arterial"
    return "collector" if kmh >= 40 else "local"


def known_timezone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Boundary(_Strict):
    """The city's extent: a box (west, south, east, north), and optionally the polygon it bounds."""

    west: float = Field(ge=-180, le=180)
    south: float = Field(ge=-90, le=90)
    east: float = Field(ge=-180, le=180)
    north: float = Field(ge=-90, le=90)
    polygon: list[Point] | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Boundary:
        if not (self.west < self.east and self.south < self.north):
            raise ValueError("west must be below east and south below north")
        return self

    def contains(self, lon: float, lat: float) -> bool:
        in_box = self.west <= lon <= self.east and self.south <= lat <= self.north
        return in_box and (self.polygon is None or inside((lon, lat), self.polygon))


class ZoneGrid(_Strict):
    """The boundary's box cut into ``rows`` x ``cols`` zones ``Z<row><col>``: row 1 southmost, column 1 westmost."""

    rows: int = Field(ge=1, le=9)
    cols: int = Field(ge=1, le=9)


class Zone(_Strict):
    id: ZoneId
    name: str
    polygon: list[Point] = Field(min_length=4, description="A closed ring of (lon, lat)")


class RoadSegment(_Strict):
    """A road segment (a SUMO edge open to cars): its line, middle point, zone, length (m), limit (m/s), lanes."""

    id: str = Field(min_length=1)
    geometry: list[Point] = Field(min_length=1, description="The segment's line (lon, lat), in driving direction")
    lon: float
    lat: float
    zone: ZoneId
    road_class: str
    length: float = Field(ge=0)
    speed: float = Field(gt=0)
    lanes: int = Field(ge=1)
    priority: int = 0
    upstream: list[str] = []
    downstream: list[str] = []

    @property
    def neighbours(self) -> list[str]:
        return [*self.upstream, *self.downstream]


class Site(_Strict):
    """A car park, a bike station or a measuring station; ``edge`` the road segment it is on (if any)."""

    id: str = Field(min_length=1)
    name: str
    lon: float
    lat: float
    zone: ZoneId
    edge: str = ""
    capacity: int = Field(0, ge=0)
    kind: str = ""


class TrafficLoop(_Strict):
    """An induction loop (a traffic sensor site): mid-lane on a car lane of a road segment, ``id`` ``loop.<lane>``.

    ``position`` is metres from the lane's start; ``lon``/``lat`` the point it reports."""

    id: str = Field(min_length=1)
    lane: str = Field(min_length=1)
    edge: str = Field(min_length=1)
    lane_index: int = Field(ge=0)
    position: float = Field(ge=0)
    lon: float
    lat: float
    zone: ZoneId


class Sites(_Strict):
    """The city's sensor sites; ``traffic_loops`` in the live simulation's order (main roads first)."""

    traffic_loops: list[TrafficLoop] = []
    car_parks: list[Site] = []
    bike_stations: list[Site] = []
    weather_stations: list[Site] = []
    air_quality_stations: list[Site] = []


class TransitStop(_Strict):
    id: str
    name: str
    lon: float
    lat: float
    zone: ZoneId


class TransitLine(_Strict):
    """A GTFS route and the stops of its longest trip, in order."""

    id: str
    short_name: str
    long_name: str | None = None
    route_type: str
    stops: list[str]


class Transit(_Strict):
    """Public transport: ``gtfs`` is the feed's file, relative to the city file (or absolute)."""

    gtfs: str | None = None
    stops: list[TransitStop] = []
    lines: list[TransitLine] = []


class CityDefinition(_Strict):
    """One city. :meth:`zone_of` and :meth:`contains` are what the event validators and the simulator ask."""

    name: str = Field(min_length=1)
    timezone: str = Field(description="IANA time zone, e.g. Europe/Berlin")
    network: str | None = Field(None, description="The road network it was derived from (a SUMO net file)")
    boundary: Boundary
    grid: ZoneGrid | None = None
    zones: list[Zone] = Field(min_length=1)
    segments: list[RoadSegment] = []
    sites: Sites = Sites()
    transit: Transit = Transit()
    _file: Path | None = PrivateAttr(None)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        if not known_timezone(value):
            raise ValueError(f"unknown time zone {value!r} (an IANA name such as America/Toronto)")
        return value

    @model_validator(mode="after")
    def _unique_zones(self) -> CityDefinition:
        ids = [zone.id for zone in self.zones]
        if len(set(ids)) != len(ids):
            raise ValueError(f"zone ids must be unique: {sorted(i for i in set(ids) if ids.count(i) > 1)}")
        return self

    @property
    def zoneinfo(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def west(self) -> float:
        return self.boundary.west

    @property
    def south(self) -> float:
        return self.boundary.south

    @property
    def east(self) -> float:
        return self.boundary.east

    @property
    def north(self) -> float:
        return self.boundary.north

    @property
    def zone_ids(self) -> list[str]:
        return [zone.id for zone in self.zones]

    @property
    def gtfs_file(self) -> Path | None:
        """The transit feed's path, resolved against the city file's folder."""
        return self._resolved(self.transit.gtfs)

    @property
    def network_file(self) -> Path | None:
        """The road network's path, resolved against the city file's folder (the simulator knows the names of
        the SUMO scenarios it ships, such as ``sumo_rl/nets/...``)."""
        return self._resolved(self.network)

    def _resolved(self, name: str | None) -> Path | None:
        if not name:
            return None
        path = Path(name)
        return path if path.is_absolute() or self._file is None else self._file.parent / path

    def contains(self, lon: float, lat: float) -> bool:
        return self.boundary.contains(lon, lat)

    def zone(self, zone_id: str) -> Zone:
        """The zone ``zone_id``; KeyError naming the known ones when the city has none of that id."""
        for zone in self.zones:
            if zone.id == zone_id:
                return zone
        raise KeyError(f"no zone {zone_id!r} in {self.name} (zones: {', '.join(self.zone_ids)})")

    def zone_of(self, lon: float, lat: float) -> str:
        """The zone of a point inside the city: the grid's cell, else the zone whose polygon holds it (the nearest
        zone when none does)."""
        if self.grid is not None:
            rows, cols = self.grid.rows, self.grid.cols
            row = min(max(int((lat - self.south) / (self.north - self.south) * rows), 0), rows - 1)
            col = min(max(int((lon - self.west) / (self.east - self.west) * cols), 0), cols - 1)
            return f"Z{row + 1}{col + 1}"
        for zone in self.zones:
            if inside((lon, lat), zone.polygon):
                return zone.id
        return min(self.zones, key=lambda zone: metres(lon, lat, *centroid(zone.polygon))).id
