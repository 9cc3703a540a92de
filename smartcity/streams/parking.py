"""The parking stream: off-street car park occupancy."""

from smartcity.events.parking import OffStreetParking
from smartcity.streams import Stream

STREAM = Stream(
    topic="parking",
    ce_type="city.parking.occupancy.observed.v1",
    model=OffStreetParking,
    key_field="id",
    description="Off-street car park occupancy",
    table="parking_occupancy",
)
