"""The city the platform serves, as configuration: one JSON file (``SMARTCITY_CITY_FILE``) of pydantic models.

The bottom layer: it imports nothing of the simulator, the API or storage; they all read the city from here.
``smartcity city build`` makes a city file from a SUMO network, a GTFS feed alone, or GeoJSON zones and segments.
"""

from smartcity.city.files import (
    DEFAULT_CITY_FILE,
    CityFileError,
    configured_city,
    configured_city_file,
    load_city_file,
    read_city,
    save_city,
)
from smartcity.city.geometry import metres
from smartcity.city.model import CityDefinition, RoadSegment, Site, Zone, road_class

__all__ = [
    "DEFAULT_CITY_FILE", "CityDefinition", "CityFileError", "RoadSegment", "Site", "Zone", "configured_city",
    "configured_city_file", "load_city_file", "metres", "read_city", "road_class", "save_city",
]
