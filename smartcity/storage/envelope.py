"""What the storage writers take: one validated event with its CloudEvent id, independent of any transport."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from typing import Annotated, Any, Union

from pydantic import Field, RootModel

from smartcity.events import STREAMS, CityEvent, stream_for_type


def iso_utc(moment: datetime) -> str:
    """A fixed-width UTC ISO 8601 text, so texts sort as the moments do."""
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


# Whose latest state the cache keeps (each descriptor's ``latest_field``): a taxi's, not a trip's.
LATEST_STATE_FIELD = {topic: stream.latest_field for topic, stream in STREAMS.items()}


@dataclass(frozen=True)
class StoredEvent:
    """An event as the store functions hand it to the writers.

    ``event_id`` is the CloudEvent ``id``, the idempotence key of every store. The event's time is its model's
    ``dateObserved``, which ingest makes part of the id, so it never changes for one id.
    """

    stream: str
    event_id: str
    source: str
    event: CityEvent

    @property
    def time(self) -> datetime:
        return self.event.dateObserved

    @property
    def type(self) -> str:
        return STREAMS[self.stream].ce_type

    @property
    def entity_id(self) -> str:
        """The entity whose latest state this event is (sensor, vehicle, station, parking, incident)."""
        field = STREAMS[self.stream].latest_field
        return str(getattr(self.event, field))

    @cached_property
    def data(self) -> dict[str, Any]:
        """The event as JSON-ready values."""
        return self.event.model_dump(mode="json")


class AnyStreamEvent(RootModel):
    """The data of an event of any stream, validated into its stream's model (told apart by its NGSI ``type``).

    The store functions take every stream's topic; with this as their data model the runtime validates each event
    and dead-letters, naming the field, any whose data fits no stream.
    """

    root: Annotated[Union[tuple(stream.model for stream in STREAMS.values())], Field(discriminator="type")]


def stored_events(events: Sequence[Any]) -> list[StoredEvent]:
    """The runtime's events (``Event[AnyStreamEvent]``) as writers take them; ValueError when type and data differ."""
    result = []
    for event in events:
        stream = stream_for_type(event.type)
        data = event.data.root if isinstance(event.data, AnyStreamEvent) else event.data
        if not isinstance(data, stream.model):
            raise ValueError(f"event {event.id}: type {event.type} carries {type(data).__name__} data, "
                             f"not {stream.model.__name__}")
        result.append(StoredEvent(stream.topic, event.id, event.source, data))
    return result
