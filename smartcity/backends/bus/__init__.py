"""Event bus backends: ``kafka://`` (Apache Kafka, confluent-kafka) and ``file://`` (embedded append-only log)."""

from smartcity.backends import load_backend
from smartcity.backends.bus.base import Consumer, EventBus, Record

SCHEMES = {
    "kafka": "smartcity.backends.bus.kafka:KafkaBus",
    "file": "smartcity.backends.bus.filelog:FileLogBus",
}


def open_bus(url: str, setting: str = "SMARTCITY_BUS_URL", **options) -> EventBus:
    """Open the backend that the URL's scheme names; ``options`` go to its ``from_url`` (e.g. ``settings=``)."""
    return load_backend(setting, url, SCHEMES, **options)


__all__ = ["Consumer", "EventBus", "Record", "SCHEMES", "open_bus"]
