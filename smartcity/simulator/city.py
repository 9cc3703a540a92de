"""The simulated city: the configured city (:mod:`smartcity.city`, ``SMARTCITY_CITY_FILE``) as the sources see it.

A thin adapter: road segments by id, and the sites as :class:`Place` lists. The Cologne district's city file is
derived from its SUMO network by ``python -m smartcity.simulator.build_city``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

from smartcity.city import CityDefinition, RoadSegment, configured_city_file, load_city_file, metres
from smartcity.city import Site as Place
from smartcity.city.files import DATA_DIR as CITY_DATA_DIR

GTFS_FILE = CITY_DATA_DIR / "gtfs-cologne-nippes.zip"  # the bundled Cologne district's feed

__all__ = ["GTFS_FILE", "CityModel", "Place", "RoadSegment", "load_city", "metres"]


@dataclass(frozen=True)
class CityModel:
    """The city as the simulator sources see it."""

    extent: CityDefinition
    segments: dict[str, RoadSegment]
    car_parks: list[Place]
    bike_stations: list[Place]
    weather_stations: list[Place]
    air_stations: list[Place]

    @property
    def timezone(self) -> ZoneInfo:
        return self.extent.zoneinfo

    @property
    def has_network(self) -> bool:
        """Whether the city has road segments (traffic needs them)."""
        return bool(self.segments)

    def segments_in(self, zone: str) -> list[str]:
        return [segment.id for segment in self.segments.values() if segment.zone == zone]


def load_city() -> CityModel:
    """The configured city (built once per city file)."""
    return _model_of(str(configured_city_file()))


@lru_cache(maxsize=8)
def _model_of(path: str) -> CityModel:
    city, sites = load_city_file(path), load_city_file(path).sites
    return CityModel(
        extent=city, segments={segment.id: segment for segment in city.segments},
        car_parks=list(sites.car_parks), bike_stations=list(sites.bike_stations),
        weather_stations=list(sites.weather_stations), air_stations=list(sites.air_quality_stations))
