"""Typed contracts of the eight data streams: their pydantic models, topics, CloudEvent types and record keys.

``STREAMS`` maps each topic (the names of ``smartcity.settings.TOPICS``) to a :class:`Stream`: its CloudEvent
``type`` (``city.<stream>.<what>.v<N>``, the version bumps on any incompatible change), its model and the field
whose value is the Kafka record key. ``smartcity schemas export`` writes each model's JSON Schema to
``<ce_type>.schema.json``; the committed copies are in ``smartcity/events/schemas/``.
"""

from __future__ import annotations

from dataclasses import dataclass

from smartcity.events.air_quality import AirQualityObserved
from smartcity.events.bikeshare import BikeHireDockingStation
from smartcity.events.common import CityEvent, Location, city, errors_by_field, ngsi_id, personal_fields
from smartcity.events.incidents import Alert
from smartcity.events.parking import OffStreetParking
from smartcity.events.taxi import TaxiTrip
from smartcity.events.traffic import TrafficFlowObserved
from smartcity.events.transport import PublicTransportVehicle
from smartcity.events.weather import WeatherObserved


class UnknownStreamError(KeyError):
    """A topic or CloudEvent type that no stream has; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class Stream:
    """One data stream: where it flows, how its events are typed, and how they are keyed."""

    topic: str
    ce_type: str
    model: type[CityEvent]
    key_field: str
    description: str

    @property
    def schema_file(self) -> str:
        return f"{self.ce_type}.schema.json"

    def key_of(self, event: CityEvent) -> str:
        """The Kafka record key of ``event``: the value of :attr:`key_field`."""
        return str(getattr(event, self.key_field))

    @property
    def personal_fields(self) -> list[str]:
        return personal_fields(self.model)


STREAMS: dict[str, Stream] = {
    stream.topic: stream
    for stream in (
        Stream("traffic-sensors", "city.traffic.flow.observed.v1", TrafficFlowObserved, "id",
               "Per-lane induction-loop flow, occupancy and speed every interval"),
        Stream("public-transport", "city.transport.vehicle.position.v1", PublicTransportVehicle, "vehicleId",
               "Bus positions on their GTFS trips, with delays"),
        Stream("taxi-vtc", "city.taxi.trip.updated.v1", TaxiTrip, "id",
               "Taxi and VTC trips' GPS fixes (personal data: vehicleId, driverId, location)"),
        Stream("parking", "city.parking.occupancy.observed.v1", OffStreetParking, "id",
               "Off-street car park occupancy"),
        Stream("bike-share", "city.bikeshare.station.status.v1", BikeHireDockingStation, "id",
               "Bike-share docking station status (GBFS semantics)"),
        Stream("incidents", "city.incident.reported.v1", Alert, "id",
               "Road incidents reported and cleared"),
        Stream("weather", "city.weather.observed.v1", WeatherObserved, "id",
               "Weather station observations"),
        Stream("air-quality", "city.airquality.observed.v1", AirQualityObserved, "id",
               "Air quality station observations"),
    )
}
_BY_TYPE = {stream.ce_type: stream for stream in STREAMS.values()}


def stream_for_topic(topic: str) -> Stream:
    """The stream published on ``topic``; :class:`UnknownStreamError` lists the known topics."""
    try:
        return STREAMS[topic]
    except KeyError:
        raise UnknownStreamError(f"unknown topic {topic!r}; known topics: {', '.join(STREAMS)}") from None


def stream_for_type(ce_type: str) -> Stream:
    """The stream whose CloudEvent type is ``ce_type``; :class:`UnknownStreamError` lists the known types."""
    try:
        return _BY_TYPE[ce_type]
    except KeyError:
        raise UnknownStreamError(f"unknown CloudEvent type {ce_type!r}; known types: {', '.join(_BY_TYPE)}") from None


def model_for_type(ce_type: str) -> type[CityEvent]:
    """The pydantic model of CloudEvent type ``ce_type``."""
    return stream_for_type(ce_type).model


__all__ = [
    "STREAMS", "AirQualityObserved", "Alert", "BikeHireDockingStation", "CityEvent", "Location",
    "OffStreetParking", "PublicTransportVehicle", "Stream", "TaxiTrip", "TrafficFlowObserved",
    "UnknownStreamError", "WeatherObserved", "city", "errors_by_field", "model_for_type", "ngsi_id",
    "personal_fields", "stream_for_topic", "stream_for_type",
]
