"""weather: one station's hourly-shaped observations from a real measured daily series.

The day's measurements (precipitation, minimum and maximum temperature, mean wind, weather kind) are real: the
Seattle daily series 2012–2015 that the ``vega-datasets`` package ships (Seattle and Cologne share a temperate
oceanic climate; no package ships a Cologne series). The city date maps to the same day of year in
``2012 + seed % 4``. Within the day the values are modelled: temperature follows a diurnal curve between the
day's minimum (05:00) and maximum (15:00), the day's rain falls in a block of hours, humidity and pressure
follow temperature and rain. The source also updates the shared weather that bikes and air quality read.
"""

from __future__ import annotations

import csv
import importlib.util
import math
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from pathlib import Path

from smartcity.extras import MissingExtra
from smartcity.events import WeatherObserved
from smartcity.events.common import Location
from smartcity.simulator.source import Source, SourceContext
from smartcity.simulator.state import WeatherNow

WEATHER_TYPES = {"sun": "clearSky", "rain": "rain", "drizzle": "drizzle", "snow": "snow", "fog": "fog"}


@dataclass(frozen=True)
class Day:
    """One measured day: rain (mm), temperatures (°C), mean wind (m/s) and the kind of weather."""

    precipitation: float
    temp_max: float
    temp_min: float
    wind: float
    kind: str


@lru_cache(maxsize=1)
def measured_days() -> dict[date, Day]:
    """The Seattle daily series of the ``vega-datasets`` package."""
    spec = importlib.util.find_spec("vega_datasets")
    if spec is None or spec.origin is None:
        raise MissingExtra("simulator", ["vega_datasets"])
    path = Path(spec.origin).parent / "_data" / "seattle-weather.csv"
    with path.open(newline="") as handle:
        return {
            date.fromisoformat(row["date"].replace("/", "-")): Day(
                float(row["precipitation"]), float(row["temp_max"]), float(row["temp_min"]), float(row["wind"]),
                row["weather"])
            for row in csv.DictReader(handle)
        }


def measured_day(day: date, seed: int) -> Day:
    """The measured day standing for ``day``: same month and day in the series year chosen by the seed."""
    year = 2012 + seed % 4
    try:
        return measured_days()[day.replace(year=year)]
    except ValueError:  # 29 February in a year without one
        return measured_days()[date(year, 2, 28)]


def diurnal(hour: float) -> float:
    """0 at 05:00 (coolest) .. 1 at 15:00 (warmest), cosine-shaped."""
    if 5 <= hour <= 15:
        return 0.5 - 0.5 * math.cos(math.pi * (hour - 5) / 10)
    since_peak = (hour - 15) % 24
    return 0.5 + 0.5 * math.cos(math.pi * since_peak / 14)


class WeatherSource(Source):
    topic = "weather"
    every_s = 600

    def __init__(self, context: SourceContext) -> None:
        super().__init__(context)
        self._rain_hours: dict[date, range] = {}

    def observe(self, now: datetime) -> list[WeatherObserved]:
        local = now.astimezone(self.city.timezone)
        weather = self.weather_at(local)
        self.state.weather = weather
        kind = self._kind(local, weather)
        return [
            WeatherObserved(
                id=WeatherObserved.make_id(station.id), dateObserved=now, name=station.name,
                location=Location.at(station.lon, station.lat), zone=station.zone,
                temperature=round(weather.temperature + self.rng.gauss(0, 0.2), 1),
                relativeHumidity=round(weather.relative_humidity, 3),
                atmosphericPressure=round(self._pressure(local, weather), 1),
                precipitation=round(weather.precipitation, 2), windSpeed=round(weather.wind_speed, 1),
                windDirection=round((225 + self.rng.gauss(0, 35)) % 360, 0), weatherType=kind,
            )
            for station in self.city.weather_stations
        ]

    def weather_at(self, local: datetime) -> WeatherNow:
        today = measured_day(local.date(), self.context.seed)
        hour = local.hour + local.minute / 60
        other = measured_day((local + timedelta(days=1 if hour > 15 else -1)).date(), self.context.seed)
        low = today.temp_min if 5 <= hour <= 15 else (other.temp_min if hour > 15 else today.temp_min)
        high = today.temp_max if hour >= 5 else other.temp_max
        shape = diurnal(hour)
        raining = local.hour in self._rain_block(local.date(), today)
        rain = today.precipitation / len(self._rain_block(local.date(), today)) if raining else 0.0
        humidity = min(1.0, max(0.3, 0.93 - 0.35 * shape + (0.07 if raining else 0.0)))
        wind = max(0.0, today.wind * (0.7 + 0.6 * shape) + self.rng.gauss(0, 0.3))
        return WeatherNow(low + (high - low) * shape, humidity, rain, wind)

    def _rain_block(self, day: date, measured: Day) -> range:
        """The hours in which the day's measured rain falls (about 1.5 mm/h, chosen once per day)."""
        if day not in self._rain_hours:
            hours = min(16, max(1, math.ceil(measured.precipitation / 1.5))) if measured.precipitation else 0
            first = self.context.random(f"rain:{day}").randrange(0, 24 - hours + 1)
            self._rain_hours[day] = range(first, first + hours)
        return self._rain_hours[day]

    def _kind(self, local: datetime, weather: WeatherNow) -> str:
        kind = WEATHER_TYPES.get(measured_day(local.date(), self.context.seed).kind, "cloudy")
        if kind in ("rain", "drizzle", "snow") and not weather.precipitation:
            return "cloudy"
        if kind == "fog" and not 4 <= local.hour <= 11:
            return "cloudy"
        return kind

    def _pressure(self, local: datetime, weather: WeatherNow) -> float:
        day_of_year = local.timetuple().tm_yday + local.hour / 24
        return 1013 + 9 * math.sin(2 * math.pi * day_of_year / 6.5) - (6 if weather.precipitation else 0)
