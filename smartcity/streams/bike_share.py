"""The bike-share stream: bike-share docking station status (GBFS semantics)."""

from smartcity.events.bikeshare import BikeHireDockingStation
from smartcity.streams import Stream

STREAM = Stream(
    topic="bike-share",
    ce_type="city.bikeshare.station.status.v1",
    model=BikeHireDockingStation,
    key_field="id",
    description="Bike-share docking station status (GBFS semantics)",
    table="bike_station_status",
)
