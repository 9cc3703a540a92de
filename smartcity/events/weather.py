"""weather: one weather station's observation (FIWARE WeatherObserved).

``relativeHumidity`` is a fraction 0..1 as in FIWARE; ``precipitation`` is over the hour before ``dateObserved``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from smartcity.events.common import CityEvent, Location, Zone, measure


class WeatherObserved(CityEvent):
    """Temperature, humidity, pressure, rain and wind at one station."""

    type: Literal["WeatherObserved"] = "WeatherObserved"
    name: str = Field(min_length=1, description="Station name")
    location: Location
    zone: Zone
    temperature: float = measure("Air temperature", "°C", ge=-60, le=60)
    relativeHumidity: float = measure("Relative humidity", "ratio 0..1", ge=0, le=1)
    atmosphericPressure: float = measure("Air pressure at station level", "hPa", ge=850, le=1100)
    precipitation: float = measure("Rain over the past hour", "mm", ge=0, le=300)
    windSpeed: float = measure("Mean wind speed", "m/s", ge=0, le=80)
    windDirection: float = measure("Direction the wind comes from, clockwise from north", "degrees", ge=0, lt=360)
    weatherType: Literal["clearSky", "cloudy", "rain", "drizzle", "snow", "fog", "thunder"] = Field(
        description="FIWARE weatherType")
