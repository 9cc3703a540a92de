"""The taxi-vtc stream: taxi and VTC trips' GPS fixes (personal data: vehicleId, driverId, location)."""

from smartcity.events.taxi import TaxiTrip
from smartcity.streams import Stream

STREAM = Stream(
    topic="taxi-vtc",
    ce_type="city.taxi.trip.updated.v1",
    model=TaxiTrip,
    key_field="id",
    description="Taxi and VTC trips' GPS fixes (personal data: vehicleId, driverId, location)",
    table="taxi_trips",
    latest_field="vehicleId",  # a taxi's latest state, not a trip's
)
