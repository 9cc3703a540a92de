"""air-quality: one station's pollutant concentrations (FIWARE AirQualityObserved).

Concentrations are in µg/m³ except ``co`` in mg/m³. ``airQualityIndex`` is the European CAQI (hourly, 0..100+),
``airQualityLevel`` its band.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from smartcity.events.common import CityEvent, Location, Zone, measure


class AirQualityObserved(CityEvent):
    """NO2, PM10, PM2.5, O3 and CO at one station, with the CAQI they give."""

    type: Literal["AirQualityObserved"] = "AirQualityObserved"
    name: str = Field(min_length=1, description="Station name")
    location: Location
    zone: Zone
    no2: float = measure("Nitrogen dioxide", "µg/m³", ge=0, le=2000)
    pm10: float = measure("Particulate matter under 10 µm", "µg/m³", ge=0, le=2000)
    pm25: float = measure("Particulate matter under 2.5 µm", "µg/m³", ge=0, le=2000)
    o3: float = measure("Ozone", "µg/m³", ge=0, le=1000)
    co: float = measure("Carbon monoxide", "mg/m³", ge=0, le=100)
    airQualityIndex: int = measure("European Common Air Quality Index (CAQI)", "index", ge=0, le=500)
    airQualityLevel: Literal["veryLow", "low", "medium", "high", "veryHigh"] = Field(description="CAQI band")
