"""Kafka topics get the partitions and replication factor of the settings (SMARTCITY_TOPIC_PARTITIONS,
SMARTCITY_KAFKA_REPLICATION_FACTOR: 1 locally, 3 in the chart's production values). The local broker is alone,
so a factor of 3 is refused, naming the setting."""

from __future__ import annotations

import uuid

import pytest

from smartcity.backends.bus import open_bus
from smartcity.errors import ConfigurationError
from tests.contract.conftest import real_settings

pytestmark = pytest.mark.real


def test_topics_are_made_with_the_partitions_and_replicas_of_the_settings(request):
    settings = real_settings(request).model_copy(update={"topic_partitions": 2, "kafka_replication_factor": 1})
    name = f"replication-{uuid.uuid4().hex[:12]}"
    bus = open_bus(settings.bus_url, settings=settings)
    try:
        bus.create_topics([name], settings.topic_partitions)
        partitions = bus.admin.list_topics(name, timeout=30).topics[name].partitions
        assert len(partitions) == 2 and [len(p.replicas) for p in partitions.values()] == [1, 1]
    finally:
        bus.delete_topics([name])
        bus.close()

    three = open_bus(settings.bus_url, settings=settings.model_copy(update={"kafka_replication_factor": 3}))
    try:
        with pytest.raises(ConfigurationError, match="SMARTCITY_KAFKA_REPLICATION_FACTOR.*3 replicas refused"):
            three.create_topics([name], 1)
        assert name not in three.admin.list_topics(timeout=30).topics
    finally:
        three.close()
