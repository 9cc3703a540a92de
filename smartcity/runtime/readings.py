"""The one recipe from a city reading to the bus: reading -> CloudEvent -> Kafka binary-mode record.

Ingest, the simulator's bus sink, the streaming jobs' alerts and the test samples all publish readings so:
:func:`reading_event` makes the CloudEvent (the stream's type, the entity as subject, ``dateObserved`` as time,
the stream's key field as the record key, and an id derived from the stream, the entity and ``dateObserved``, so
the same reading sent twice is the same event and every store keeps it once); :func:`publish_event` writes any
CloudEvent as one record (``ce_`` headers, JSON value, keyed by its ``partitionkey``). :func:`window_closed_event`
announces a closed 5-minute window of a sensor (the streaming job's ``traffic-windows``, and the demo's forecasts
after a promotion).
"""

from __future__ import annotations

import uuid

from cloudevents.core.v1.event import CloudEvent

from smartcity.backends.bus import EventBus
from smartcity.events import CityEvent, Stream
from smartcity.events.derived import TRAFFIC_WINDOWS, TrafficWindow
from smartcity.runtime.bindings import record_of
from smartcity.runtime.events import new_event
from smartcity.storage.envelope import iso_utc

EVENT_ID_NAMESPACE = uuid.UUID("6f1c2d34-5b1e-4c8e-9a55-3c1d0f7e2a90")


def event_id(stream: Stream, reading: CityEvent) -> str:
    """The CloudEvent id of an observation: the same reading sent twice is the same event."""
    return str(uuid.uuid5(EVENT_ID_NAMESPACE, f"{stream.ce_type}|{reading.id}|{iso_utc(reading.dateObserved)}"))


def reading_event(stream: Stream, reading: CityEvent, source: str, *, id: str | None = None) -> CloudEvent:
    """The CloudEvent carrying ``reading`` of ``stream``, from ``source``; ``id`` defaults to :func:`event_id`."""
    return new_event(stream.ce_type, source, reading, id=id or event_id(stream, reading), subject=reading.id,
                     time=reading.dateObserved, partitionkey=stream.key_of(reading))


def window_closed_event(window: TrafficWindow, source: str) -> CloudEvent:
    """The ``traffic-windows`` CloudEvent saying that a sensor's 5-minute ``window`` is closed, from ``source``: its
    id the sensor and window start (the same window announced twice is the same event), its time the window's end,
    keyed by its road segment."""
    return new_event(TRAFFIC_WINDOWS.ce_type, source, window,
                     id=f"{window.sensor_id}|{window.window_start.isoformat()}", time=window.window_end,
                     partitionkey=window.segment_id)


def publish_event(bus: EventBus, topic: str, event: CloudEvent) -> None:
    """Publish ``event`` on ``topic`` in Kafka binary mode (not flushed: the caller flushes a batch at once)."""
    key, value, headers = record_of(event)
    bus.publish(topic, value, key=key, headers=headers)
