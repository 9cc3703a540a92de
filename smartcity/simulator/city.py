"""The simulated city: its road segments, zones, car parks, bike stations and measuring stations.

Everything here is derived from the SUMO network by ``python -m smartcity.simulator.build_city`` and kept in
``data/city.json`` (committed), so the event schemas and every source read one description of the city without
starting SUMO. The zone grid and bounding box are the ones :mod:`smartcity.events.common` validates against.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from smartcity.events.common import CITY_FILE, City, city

DATA_DIR = CITY_FILE.parent
GTFS_FILE = DATA_DIR / "gtfs-cologne-nippes.zip"


@dataclass(frozen=True)
class RoadSegment:
    """A SUMO edge open to cars: its middle point, zone, length (m), speed limit (m/s) and lanes."""

    id: str
    lon: float
    lat: float
    zone: str
    length: float
    speed: float
    lanes: int
    priority: int


@dataclass(frozen=True)
class Place:
    """A car park, a bike station or a measuring station, on a road segment; ``capacity`` spots or docks."""

    id: str
    name: str
    lon: float
    lat: float
    zone: str
    edge: str
    capacity: int = 0
    kind: str = ""


@dataclass(frozen=True)
class CityModel:
    """The city as the simulator sources see it."""

    extent: City
    segments: dict[str, RoadSegment]
    car_parks: list[Place]
    bike_stations: list[Place]
    weather_stations: list[Place]
    air_stations: list[Place]

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.extent.timezone)

    def segments_in(self, zone: str) -> list[str]:
        return [segment.id for segment in self.segments.values() if segment.zone == zone]


def metres(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    """Distance on the ground between two points, equirectangular (exact enough over a few kilometres)."""
    x = math.radians(lon2 - lon1) * math.cos(math.radians((lat1 + lat2) / 2))
    return 6371000 * math.hypot(x, math.radians(lat2 - lat1))


def _places(items: list[dict]) -> list[Place]:
    return [Place(**item) for item in items]


@lru_cache(maxsize=1)
def load_city() -> CityModel:
    """The city of ``data/city.json``."""
    data = json.loads(CITY_FILE.read_text())
    return CityModel(
        extent=city(),
        segments={item["id"]: RoadSegment(**item) for item in data["segments"]},
        car_parks=_places(data["carParks"]),
        bike_stations=_places(data["bikeStations"]),
        weather_stations=_places(data["weatherStations"]),
        air_stations=_places(data["airQualityStations"]),
    )
