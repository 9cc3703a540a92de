"""The air-quality stream: air quality station observations."""

from smartcity.events.air_quality import AirQualityObserved
from smartcity.streams import Stream

STREAM = Stream(
    topic="air-quality",
    ce_type="city.airquality.observed.v1",
    model=AirQualityObserved,
    key_field="id",
    description="Air quality station observations",
    table="air_quality_observations",
)
