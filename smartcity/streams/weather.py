"""The weather stream: weather station observations."""

from smartcity.events.weather import WeatherObserved
from smartcity.streams import Stream

STREAM = Stream(
    topic="weather",
    ce_type="city.weather.observed.v1",
    model=WeatherObserved,
    key_field="id",
    description="Weather station observations",
    table="weather_observations",
)
