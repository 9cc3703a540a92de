"""Event bus backends: ``kafka://`` (Apache Kafka, confluent-kafka) and ``file://`` (embedded append-only log)."""

from smartcity.backends import load_backend
from smartcity.backends.bus.base import Consumer, EventBus, Record

SCHEMES = {
    "kafka": "smartcity.backends.bus.kafka:KafkaBus",
    "file": "smartcity.backends.bus.filelog:FileLogBus",
}


def open_bus(url: str, setting: str = "SMARTCITY_BUS_URL") -> EventBus:
    return load_backend(setting, url, SCHEMES)


__all__ = ["Consumer", "EventBus", "Record", "SCHEMES", "open_bus"]
