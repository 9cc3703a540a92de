"""Typed contracts of the data streams: their pydantic models, topics, CloudEvent types and record keys.

``STREAMS`` maps each topic to its :class:`Stream` descriptor (one module per stream: the platform's eight in
``smartcity/streams/``, a city's own in ``SMARTCITY_STREAMS_DIR``; see :mod:`smartcity.streams`): its CloudEvent
``type`` (``city.<stream>.<what>.v<N>``, the version bumps on any incompatible change), its model and the field
whose value is the Kafka record key. ``smartcity schemas export`` writes each model's JSON Schema to
``<ce_type>.schema.json``; the committed copies are in ``smartcity/events/schemas/``.
"""

from __future__ import annotations

from smartcity.events.air_quality import AirQualityObserved
from smartcity.events.bikeshare import BikeHireDockingStation
from smartcity.events.common import CityEvent, Location, city, errors_by_field, ngsi_id, personal_fields
from smartcity.events.incidents import Alert
from smartcity.events.parking import OffStreetParking
from smartcity.events.taxi import TaxiTrip
from smartcity.events.traffic import TrafficFlowObserved
from smartcity.events.transport import PublicTransportVehicle
from smartcity.events.weather import WeatherObserved
from smartcity.settings import DEAD_LETTER_TOPIC, DERIVED_TOPICS
from smartcity.streams import Stream, UnknownStreamError
from smartcity.streams._registry import TOPICS, Registry

STREAMS: Registry = Registry()
# The topics every installation creates: the first eight streams', the derived ones, the dead letters.
PLATFORM_TOPICS = (*TOPICS, *DERIVED_TOPICS, DEAD_LETTER_TOPIC)


def stream_for_topic(topic: str) -> Stream:
    """The stream published on ``topic``; :class:`UnknownStreamError` lists the known topics."""
    try:
        return STREAMS[topic]
    except KeyError:
        raise UnknownStreamError(f"unknown topic {topic!r}; known topics: {', '.join(STREAMS)}") from None


def stream_for_type(ce_type: str) -> Stream:
    """The stream whose CloudEvent type is ``ce_type``; :class:`UnknownStreamError` lists the known types."""
    try:
        return STREAMS.by_type()[ce_type]
    except KeyError:
        known = ", ".join(STREAMS.by_type())
        raise UnknownStreamError(f"unknown CloudEvent type {ce_type!r}; known types: {known}") from None


def platform_topics() -> tuple[str, ...]:
    """Every topic the platform creates: :data:`PLATFORM_TOPICS`, then any other stream's."""
    return tuple(dict.fromkeys((*PLATFORM_TOPICS, *STREAMS)))


def model_for_type(ce_type: str) -> type[CityEvent]:
    """The pydantic model of CloudEvent type ``ce_type``."""
    return stream_for_type(ce_type).model


__all__ = [
    "PLATFORM_TOPICS", "STREAMS", "TOPICS", "AirQualityObserved", "Alert", "BikeHireDockingStation", "CityEvent", "Location",
    "OffStreetParking", "PublicTransportVehicle", "Stream", "TaxiTrip", "TrafficFlowObserved",
    "UnknownStreamError", "WeatherObserved", "city", "errors_by_field", "model_for_type", "ngsi_id",
    "personal_fields", "platform_topics", "stream_for_topic", "stream_for_type",
]
